"""``workflow.builtin``: the management API over the built-in engine and its store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from turnout import (
    TERMINAL_STATUSES,
    AsyncWorkflowClient,
    ComponentContext,
    ComponentError,
    ComponentKind,
    Feature,
    HistoryEvent,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    RuntimeStatus,
    StartRequest,
    TurnoutError,
    WaitTimeout,
    WorkflowComponent,
    WorkflowDefinition,
    WorkflowPage,
    Workflows,
    WorkflowState,
)
from turnout._serialization import coerce, dumps, loads
from turnout._tracing import current_carrier

from ._definitions import Definitions
from ._engine import Engine
from ._events import Event, Kind
from ._metadata import BuiltinMetadata
from ._sidecar._hub import expected_attach
from ._sqlite import SqliteStore
from ._store import InstanceRow, Message, Store
from ._turns import new_execution_id

APPLY_TIMEOUT = 10.0
"""How long pause, resume and terminate wait for the engine to apply them before returning."""
WAIT_POLL_SECONDS = 10.0
"""How often a waiter reads the store though nothing told it to: a safety net only.

This process's commits wake its waiters, other processes' commits reach them by
NOTIFY, and when the listening connection (re)connects every waiter reads again.
"""


class BuiltinWorkflowComponent(WorkflowComponent):
    """The embedded durable engine: runs a :class:`turnout.Workflows` registry on its store."""

    features: ClassVar[frozenset[Feature]] = frozenset(Feature)

    def __init__(
        self,
        store: Store,
        workflows: Workflows | None,
        *,
        owns_store: bool = True,
        metadata: BuiltinMetadata | None = None,
        definitions_dir: Path | None = None,
    ) -> None:
        self.component_type = "workflow.builtin"
        self.store = store
        self.workflows = workflows if workflows is not None else Workflows()
        self._hosts_code = workflows is not None
        self._owns_store = owns_store
        meta = metadata or BuiltinMetadata()
        self.definitions = Definitions(
            self.workflows,
            store,
            patterns=meta.split(meta.definitions),
            base_dir=definitions_dir or Path.cwd(),
            settings=_declarative_settings(meta),
            component=self.name or "workflow.builtin",
            client=AsyncWorkflowClient(self),
        )
        self.engine = Engine(
            store,
            self.workflows,
            max_activities=meta.max_concurrent_activities,
            batch_size=meta.max_concurrent_workflows,
            cache_size=meta.cache_size,
        )
        self.engine.find_workflow = self.definitions.register_version

    @classmethod
    def from_metadata(cls, metadata: BuiltinMetadata, context: ComponentContext) -> BuiltinWorkflowComponent:
        """Build from component metadata: a named state store, or a SQLite file of its own."""
        folder = Path(context.file).parent if context.file else context.working_dir
        if metadata.state_store:
            store = context.resolve(metadata.state_store, ComponentKind.STATE)
            if not isinstance(store, Store):
                raise ComponentError(
                    f"state store '{metadata.state_store}' cannot hold the built-in engine's state "
                    "(use a state.sqlite or state.postgresql component)",
                    file=context.file,
                    component=context.name,
                    field="spec.metadata.stateStore",
                )
            return cls(store, context.workflows, owns_store=False, metadata=metadata, definitions_dir=folder)
        path = context.working_dir / ".turnout" / f"{context.name}.db"
        return cls(
            SqliteStore(str(path)),
            context.workflows,
            owns_store=True,
            metadata=metadata,
            definitions_dir=folder,
        )

    def serve_remote(self, hub: Any) -> None:
        """Send the workflows and activities not registered here to the workers connected to ``hub``."""
        from ._sidecar._dispatch import RemoteDispatch

        self.engine.remote = RemoteDispatch(hub, self.workflows)
        hub.on_connect.append(self.engine.wake)

    async def open(self) -> None:
        attach = expected_attach.get()
        if attach is not None:
            attach(self)  # before the engine starts: no remote workflow is ever run (and failed) here
        if self._owns_store:
            await self.store.open()
        self.definitions.component = self.name or self.definitions.component
        await self.definitions.load()  # before the engine: recovered turns need their workflows
        await self.engine.start()
        await self.definitions.start_schedules()  # once the engine runs: a takeover terminates

    async def close(self) -> None:
        self.definitions.close()
        await self.engine.stop()
        if self._owns_store:
            await self.store.close()

    # -- starting and reading ------------------------------------------------------------

    async def start(self, request: StartRequest) -> str:
        request.workflow_name = await self.definitions.resolve(request.workflow_name)
        remote = self.engine.remote
        if remote is not None and remote.serves_workflow(request.workflow_name):
            registered = None  # run by a connected worker (see serve_remote), which reads its input
        elif not self._hosts_code and not self.workflows.workflow_names:
            raise TurnoutError(
                "the built-in engine runs workflow code, and no Workflows registry was given: "
                "pass workflows=... to turnout.Runtime"
            )
        else:
            # Refused before anything is stored: an unknown name, or an input the code cannot take.
            registered = self.workflows.get_workflow(request.workflow_name)
        if registered is not None and registered.takes_input:
            try:
                coerce(request.input, registered.input_type)
            except ValidationError as exc:
                raise InvalidArgument(
                    "workflow input", request.input, f"{registered.input_type!r} ({_first_error(exc)})"
                ) from None
        now = time.time()
        instance_id = request.instance_id or uuid.uuid4().hex
        start_at = request.start_at.timestamp() if request.start_at is not None else None
        data = dumps(request.input, what="workflow input")
        row = InstanceRow(
            instance_id=instance_id,
            workflow_name=request.workflow_name,
            status=RuntimeStatus.PENDING,
            execution_id=new_execution_id(),
            created_at=now,
            last_updated_at=now,
            input=data,
            scheduled_start_at=start_at,
        )
        trace = current_carrier()  # the caller's trace continues in the instance's turns
        start = Event(
            Kind.WORKFLOW_STARTED,
            now,
            name=request.workflow_name,
            data=data,
            details={"trace": trace} if trace else None,
        )
        if start_at is not None:
            await self.store.create_instance(row, start, start_at, request.replace)
            if request.replace:
                self.engine.forget([instance_id])
            self.engine.expect(start_at)
            self.engine.wake(instance_id)
            return instance_id
        if registered is not None:
            # Code of this process: the first turn runs here and is committed with the row.
            await self.engine.create_started(row, start, request.replace)
            return instance_id
        # Leased to this process, which runs the first turn without claiming it.
        self.engine.starting(instance_id)
        try:
            message_id = await self.store.create_instance(
                row, start, now, request.replace, lease_to=self.engine.owner
            )
        except BaseException:
            self.engine.not_starting(instance_id)
            raise
        if request.replace:
            self.engine.forget([instance_id])
        self.engine.started(row, start, message_id)
        return instance_id

    async def get(self, instance_id: str) -> WorkflowState | None:
        row = await self.store.get_instance(instance_id)
        return row.to_state() if row is not None else None

    async def _row(self, instance_id: str) -> InstanceRow:
        row = await self.store.get_instance(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id, self.name or None)
        return row

    async def list(self, query: ListQuery) -> WorkflowPage:
        rows, token = await self.store.list_instances(query)
        return WorkflowPage(items=[r.to_state() for r in rows], next_page_token=token)

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        await self._row(instance_id)
        events = await self.store.load_history(instance_id)
        return [_public(n, e) for n, e in enumerate(events)]

    async def wait(
        self,
        instance_id: str,
        *,
        until: Collection[RuntimeStatus] = TERMINAL_STATUSES,
        timeout: float | None = None,
    ) -> WorkflowState:
        """Woken by the engine's commits and other processes' notifications (see ``WAIT_POLL_SECONDS``).

        A commit that gives the instance a status outside ``until`` needs no read.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        statuses = self.engine.watch(instance_id)  # before the first read: no change is missed
        try:
            # An instance running here needs no read: this worker wrote its state.
            state = self.engine.known_state(instance_id) or await self.get(instance_id)
            while True:
                if state is None:
                    raise InstanceNotFound(instance_id, self.name or None)
                if state.runtime_status in until:
                    return state
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise WaitTimeout(instance_id, timeout or 0.0, await self.get(instance_id) or state)
                news: RuntimeStatus | WorkflowState | None = None
                try:
                    poll = WAIT_POLL_SECONDS if remaining is None else min(WAIT_POLL_SECONDS, remaining)
                    async with asyncio.timeout(poll):
                        news = await statuses.get()  # not wait_for: see Engine._sleep
                except TimeoutError:
                    news = None  # a poll, for changes no notification told of
                if isinstance(news, WorkflowState):
                    state = news  # the final state, as this process's engine committed it
                    continue
                if news is not None and news not in until:
                    continue
                state = await self.get(instance_id)
        finally:
            self.engine.unwatch(instance_id, statuses)

    # -- management ----------------------------------------------------------------------

    async def _send(self, instance_id: str, event: Event) -> InstanceRow:
        row = await self.store.enqueue(Message(instance_id, event, event.timestamp))
        self.engine.wake(instance_id)
        return row

    async def _applied(self, instance_id: str, statuses: Collection[RuntimeStatus]) -> None:
        # Management calls return once the engine has applied them, so that a get
        # right after pause() shows SUSPENDED; the message is durable either way.
        try:
            await self.wait(instance_id, until=statuses, timeout=APPLY_TIMEOUT)
        except (WaitTimeout, InstanceNotFound):
            return

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        await self._send(instance_id, Event(Kind.EVENT_RAISED, time.time(), name=name, data=dumps(data)))

    async def pause(self, instance_id: str, reason: str | None = None) -> None:
        row = await self._row(instance_id)
        if row.status.is_terminal:
            raise InvalidState(instance_id, row.status.value, "pause", "the instance has already finished")
        await self._send(instance_id, Event(Kind.SUSPENDED, time.time(), details={"reason": reason}))
        await self._applied(instance_id, {RuntimeStatus.SUSPENDED, *TERMINAL_STATUSES})

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        row = await self._row(instance_id)
        if row.status is not RuntimeStatus.SUSPENDED:
            raise InvalidState(
                instance_id, row.status.value, "resume", "only a paused (SUSPENDED) instance resumes"
            )
        await self._send(instance_id, Event(Kind.RESUMED, time.time(), details={"reason": reason}))
        await self._applied(instance_id, {RuntimeStatus.RUNNING, RuntimeStatus.PENDING, *TERMINAL_STATUSES})

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        row = await self._row(instance_id)
        if row.status.is_terminal:
            return  # already finished: terminating is idempotent, as in Dapr
        await self._send(
            instance_id, Event(Kind.TERMINATE_REQUESTED, time.time(), details={"reason": reason})
        )
        await self._applied(instance_id, TERMINAL_STATUSES)

    async def cancel(self, instance_id: str, reason: str | None = None) -> None:
        await self._send(instance_id, Event(Kind.CANCEL_REQUESTED, time.time(), details={"reason": reason}))

    async def purge(self, instance_id: str) -> None:
        purged = await self.store.purge(instance_id)
        self.engine.forget(purged)

    # -- declarative definitions ---------------------------------------------------------

    async def put_definition(self, document: str, *, source: str | None = None) -> WorkflowDefinition:
        return await self.definitions.put(document, source)

    async def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        return await self.definitions.get(name, version)

    async def list_definitions(self) -> list[WorkflowDefinition]:
        return await self.definitions.list()


def _declarative_settings(meta: BuiltinMetadata) -> Any:
    """The outbound settings of declarative workflows, or None when none is set (the defaults)."""
    if not (meta.http_endpoints or meta.event_sinks or meta.http_timeout != 30.0):
        return None
    from ._definitions import _declarative

    return _declarative().Settings(
        endpoints=meta.endpoint_map(), timeout=meta.http_timeout, sinks=meta.split(meta.event_sinks)
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _public(sequence: int, event: Event) -> HistoryEvent:
    from datetime import UTC, datetime

    data: dict[str, Any] = dict(event.details or {})
    if event.data is not None:
        data["payload"] = loads(event.data)
    return HistoryEvent(
        sequence=sequence,
        timestamp=datetime.fromtimestamp(event.timestamp, UTC),
        kind=event.kind.value,
        name=event.name,
        task_id=event.task_id,
        data=data,
    )
