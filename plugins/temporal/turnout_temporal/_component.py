"""``workflow.temporal``: Turnout's management API over a Temporal cluster.

Instance id = Temporal workflow id, workflow name = workflow type. Reads go
through the raw gRPC service (``client.workflow_service``) rather than the
SDK's handles, because the handles' status enum does not know PAUSED (8)
and raises on it; every error is wrapped in Turnout's (see ``_errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import ValidationError
from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType, HistoryEventFilterType
from temporalio.api.history.v1 import HistoryEvent as TemporalEvent
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DescribeNamespaceRequest,
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryReverseRequest,
    PauseWorkflowExecutionRequest,
    RequestCancelWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
    UnpauseWorkflowExecutionRequest,
)
from temporalio.client import Client, TLSConfig, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Interceptor, Worker, WorkflowInterceptorClassInput
from temporalio.workflow import NondeterminismError

from turnout import (
    TERMINAL_STATUSES,
    ComponentContext,
    ComponentError,
    EngineError,
    Feature,
    HistoryEvent,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    RuntimeStatus,
    StartRequest,
    Unsupported,
    WaitTimeout,
    WorkflowComponent,
    WorkflowPage,
    Workflows,
    WorkflowState,
)
from turnout._serialization import coerce

from ._driver import HOST_FUNCTION, ActivityRunner, Host, TurnoutWorkflow
from ._errors import COMPONENT_TYPE, wrapped
from ._listing import Cursor, Lister, filter_clauses, iso, quote
from ._mapping import (
    STATUS_MAP,
    UnknownStatus,
    decode_first,
    encode,
    encode_args,
    history_events,
    state_from_info,
    timestamp,
    visibility_clause,
)
from ._metadata import TemporalMetadata
from ._purge import Purger

log = logging.getLogger("turnout.temporal")

PAUSE_SETTING = "frontend.WorkflowPauseEnabled"
PAUSE_DISABLED = (
    f"the Temporal server has workflow pause turned off; enable it with the dynamic config setting "
    f"{PAUSE_SETTING}=true (temporal server start-dev --dynamic-config-value {PAUSE_SETTING}=true), "
    "then restart this component"
)
NO_DEFINITIONS = (
    "the Temporal component stores no declarative definitions; register them in Python "
    "with turnout.declarative.register on the Workflows a hostWorker component runs (docs/declarative.md)"
)
NO_WORKER = (
    "Turnout's workflow code runs on Temporal only in a component with hostWorker: true "
    "(or in another process hosting a Turnout worker on the task queue)"
)

RPC_TIMEOUT = timedelta(seconds=10)
"""Deadline of one management call to the server."""

LONG_POLL = timedelta(seconds=20)
"""Longest single wait for a run's close event (the server answers sooner when it closes)."""

VISIBILITY_GRACE = 5.0
"""Longest time ``wait`` gives the visibility store to catch up with the state it returns."""

BASE_FEATURES = frozenset(
    {
        Feature.START_AT,
        Feature.LIST,
        Feature.TERMINATE,
        Feature.CANCEL,
        Feature.RAISE_EVENT,
        Feature.PAUSE,
        Feature.PURGE,
        Feature.HISTORY,
        Feature.REPLACE,
    }
)


STEP_PAGE = 32
"""History events read per page while looking for a run's first completed workflow task."""

STEP_SCAN_LIMIT = 1000
"""Events read at most for it (signals can pile up before the first step)."""


@dataclass
class _RunFacts:
    """What the start of a run's history tells, cached per run."""

    input: Any = None
    first_step: int | None = None
    """Event id of the run's first completed workflow task (the code has run), once seen."""

    def stepped(self, history_length: int) -> bool:
        """Whether the code had run when the history was this long (as a describe saw it)."""
        return self.first_step is not None and self.first_step <= history_length


class _HostInterceptor(Interceptor):
    """Hands the worker's workflows their Host through an extern function (no global state)."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> None:
        host = self._host
        input.unsafe_extern_functions[HOST_FUNCTION] = lambda: host
        return None


class TemporalWorkflowComponent(WorkflowComponent):
    """Workflows on Temporal: management calls for any workflow, and with ``hostWorker``, Turnout code."""

    features: ClassVar[frozenset[Feature]] = BASE_FEATURES
    unsupported_reasons: ClassVar[dict[Feature, str]] = {
        Feature.WORKFLOW_CODE: NO_WORKER,
        Feature.DEFINITIONS: NO_DEFINITIONS,
    }

    def __init__(
        self, metadata: TemporalMetadata, workflows: Workflows | None, *, file: str | None = None
    ) -> None:
        self.component_type = COMPONENT_TYPE
        self.metadata = metadata
        self.workflows = workflows
        self._file = file
        self._client: Client | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._runs: OrderedDict[str, _RunFacts] = OrderedDict()  # by run id
        features = set(BASE_FEATURES)
        if metadata.host_worker:
            features.add(Feature.WORKFLOW_CODE)
        self._set_features(features, dict(type(self).unsupported_reasons))

    def _set_features(self, features: set[Feature], reasons: dict[Feature, str]) -> None:
        # Per component: what it offers depends on its metadata and on its server.
        self.features = frozenset(features)  # type: ignore[misc]
        self.unsupported_reasons = reasons  # type: ignore[misc]

    @classmethod
    def from_metadata(
        cls, metadata: TemporalMetadata, context: ComponentContext
    ) -> TemporalWorkflowComponent:
        """Build from component metadata; nothing connects before :meth:`open`."""
        if metadata.host_worker and context.workflows is None:
            raise ComponentError(
                "hostWorker is true, but the runtime was given no turnout.Workflows registry to run: "
                "pass workflows=... to turnout.Runtime, or set hostWorker to false",
                file=context.file,
                component=context.name,
                field="spec.metadata.hostWorker",
            )
        return cls(metadata, context.workflows, file=context.file)

    # -- life cycle ----------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The connected Temporal client (after :meth:`open`)."""
        if self._client is None:
            raise EngineError(COMPONENT_TYPE, "call", "the component is not open", retryable=False)
        return self._client

    @property
    def namespace(self) -> str:
        """The Temporal namespace of this component."""
        return self.metadata.namespace

    async def open(self) -> None:
        """Connect, check the namespace, learn whether the server allows pause, start the worker."""
        meta = self.metadata
        with wrapped("connect"):
            try:
                self._client = await Client.connect(
                    meta.host_port,
                    namespace=meta.namespace,
                    identity=meta.identity or None,
                    tls=self._tls(),
                    api_key=meta.api_key.get_secret_value() if meta.api_key is not None else None,
                )
            except RuntimeError as exc:
                raise EngineError(
                    COMPONENT_TYPE,
                    "connect",
                    f"cannot reach Temporal at {meta.host_port}: {exc}",
                    retryable=True,
                ) from exc
            await self._check_namespace()
            await self._probe_pause()
        if meta.host_worker:
            await self._start_worker()

    def _tls(self) -> bool | TLSConfig:
        meta = self.metadata
        if not meta.use_tls:
            return False

        def read(path: Any, text: str | None) -> bytes | None:
            if text is not None:
                return text.encode()
            return path.read_bytes() if path is not None else None

        try:
            config = TLSConfig(
                server_root_ca_cert=read(meta.ca_cert_path, meta.ca_cert),
                domain=meta.server_name,
                client_cert=read(meta.client_cert_path, meta.client_cert),
                client_private_key=read(
                    meta.client_key_path,
                    meta.client_key.get_secret_value() if meta.client_key is not None else None,
                ),
            )
        except OSError as exc:
            raise ComponentError(
                f"cannot read a TLS file: {exc}",
                file=self._file,
                component=self.name or None,
                field="spec.metadata",
            ) from exc
        if config == TLSConfig():
            return True  # TLS with the system's roots and no client certificate
        return config

    async def _check_namespace(self) -> None:
        try:
            await self.client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=self.namespace), retry=True, timeout=RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise ComponentError(
                    f"the Temporal namespace '{self.namespace}' does not exist at {self.metadata.host_port}: "
                    "create it (temporal operator namespace create) or fix the namespace",
                    file=self._file,
                    component=self.name or None,
                    field="spec.metadata.namespace",
                ) from exc
            if exc.status is not RPCStatusCode.PERMISSION_DENIED:  # Cloud keys may not describe
                raise

    async def _probe_pause(self) -> None:
        """Declare PAUSE only when the server has it on (pausing an unknown id tells without effect)."""
        request = PauseWorkflowExecutionRequest(
            namespace=self.namespace,
            workflow_id=f"turnout-pause-probe-{uuid.uuid4().hex}",
            reason="turnout: does this server allow pause?",
            request_id=str(uuid.uuid4()),
        )
        try:
            await self.client.workflow_service.pause_workflow_execution(request, timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status is RPCStatusCode.UNIMPLEMENTED:
                features = set(self.features) - {Feature.PAUSE}
                self._set_features(features, {**self.unsupported_reasons, Feature.PAUSE: PAUSE_DISABLED})
            # NOT_FOUND (pause is on) or anything else: keep PAUSE; the call itself will tell.

    async def _start_worker(self) -> None:
        assert self.workflows is not None
        executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="turnout-temporal-activity")
        host = Host(self.workflows, self.metadata.activity_timeout, executor)
        try:
            worker = self._new_worker(host)
        except Exception as exc:
            executor.shutdown(wait=False)
            raise ComponentError(
                f"the Temporal worker could not be created: {exc}",
                file=self._file,
                component=self.name or None,
            ) from exc
        self._executor, self._worker = executor, worker
        self._worker_task = asyncio.create_task(self._run_worker(worker), name="turnout-temporal-worker")

    def _new_worker(self, host: Host) -> Worker:
        return Worker(
            self.client,
            task_queue=self.metadata.task_queue,
            workflows=[TurnoutWorkflow],
            activities=[ActivityRunner(host).run],
            interceptors=[_HostInterceptor(host)],
            identity=self.metadata.identity or None,
            # A replay that no longer matches the history fails the instance (as the built-in
            # engine does) instead of retrying its workflow task for ever. Set on the worker:
            # Temporal matches per-workflow settings by type name, which a dynamic workflow lacks.
            workflow_failure_exception_types=[NondeterminismError],
        )

    async def _run_worker(self, worker: Worker) -> None:
        try:
            await worker.run()
        except Exception:  # polling failed for good: say so, the management API keeps working
            log.exception("the Temporal worker of component '%s' stopped", self.name)

    async def close(self) -> None:
        """Stop the worker (running activities are cancelled); the client needs no closing."""
        worker, self._worker = self._worker, None
        task, self._worker_task = self._worker_task, None
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker.shutdown()
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- raw calls -----------------------------------------------------------------------

    def _execution(self, instance_id: str, run_id: str = "") -> WorkflowExecution:
        return WorkflowExecution(workflow_id=instance_id, run_id=run_id)

    async def _describe(self, instance_id: str) -> DescribeWorkflowExecutionResponse | None:
        request = DescribeWorkflowExecutionRequest(
            namespace=self.namespace, execution=self._execution(instance_id)
        )
        try:
            return await self.client.workflow_service.describe_workflow_execution(
                request, retry=True, timeout=RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def _last_event(self, instance_id: str, run_id: str) -> TemporalEvent | None:
        request = GetWorkflowExecutionHistoryReverseRequest(
            namespace=self.namespace, execution=self._execution(instance_id, run_id), maximum_page_size=1
        )
        response = await self.client.workflow_service.get_workflow_execution_history_reverse(
            request, retry=True, timeout=RPC_TIMEOUT
        )
        return response.history.events[0] if response.history.events else None

    async def _facts(self, instance_id: str, run_id: str, *, watch_step: bool) -> _RunFacts:
        """A run's input (it never changes) and, when asked, whether its code has run a step yet.

        Both come from the start of the run's history and are cached per run.
        """
        facts = self._runs.get(run_id)
        if facts is not None:
            self._runs.move_to_end(run_id)
            if facts.first_step is not None or not watch_step:
                return facts
        request = GetWorkflowExecutionHistoryRequest(
            namespace=self.namespace,
            execution=self._execution(instance_id, run_id),
            maximum_page_size=STEP_PAGE if watch_step else 1,
        )
        value = facts.input if facts is not None else None
        known_input = facts is not None
        first_step: int | None = None
        scanned = 0
        while True:
            response = await self.client.workflow_service.get_workflow_execution_history(
                request, retry=True, timeout=RPC_TIMEOUT
            )
            events = response.history.events
            if not known_input and events:
                started = events[0].workflow_execution_started_event_attributes
                value = decode_first(started.input) if started.HasField("input") else None
                known_input = True
            first_step = next(
                (e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
                None,
            )
            scanned += len(events)
            if first_step is not None or not watch_step or not response.next_page_token:
                break
            if scanned >= STEP_SCAN_LIMIT:
                first_step = 0  # thousands of events before the first step: not worth reading on
                break
            request.next_page_token = response.next_page_token
        facts = _RunFacts(value, first_step)
        self._runs[run_id] = facts
        while len(self._runs) > 4096:
            self._runs.popitem(last=False)
        return facts

    async def _state(
        self, instance_id: str
    ) -> tuple[WorkflowState, DescribeWorkflowExecutionResponse] | None:
        described = await self._describe(instance_id)
        if described is None:
            return None
        info = described.workflow_execution_info
        run_id = info.execution.run_id
        # Turnout code counts as RUNNING once its first step ran (PENDING before), as on the
        # built-in engine; Temporal says RUNNING from the start. Other workflows keep Temporal's word.
        watch_step = (
            STATUS_MAP.get(int(info.status)) is RuntimeStatus.RUNNING
            and Feature.WORKFLOW_CODE in self.features
            and self.workflows is not None
            and self.workflows.has_workflow(info.type.name)
        )
        try:
            last, facts = await asyncio.gather(
                self._last_event(instance_id, run_id), self._facts(instance_id, run_id, watch_step=watch_step)
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:  # purged between the calls
                return None
            raise
        extended = described.workflow_extended_info
        paused_at = None
        if extended.HasField("pause_info") and extended.pause_info.HasField("paused_time"):
            paused_at = timestamp(extended.pause_info.paused_time)
        try:
            state = state_from_info(info, last_event=last, input=facts.input, paused_at=paused_at)
        except UnknownStatus as exc:
            raise EngineError(COMPONENT_TYPE, "get", str(exc)) from exc
        # The history was read after describe: only a step that describe's history already held counts.
        stepped = facts.stepped(info.history_length)
        if watch_step and not stepped and state.runtime_status is RuntimeStatus.RUNNING:
            state.runtime_status = RuntimeStatus.PENDING
        if paused_at is not None and extended.pause_info.reason:
            state.properties["temporal.pauseReason"] = extended.pause_info.reason
        return state, described

    async def _require(self, instance_id: str) -> tuple[WorkflowState, DescribeWorkflowExecutionResponse]:
        found = await self._state(instance_id)
        if found is None:
            raise InstanceNotFound(instance_id, self.name or None)
        return found

    # -- start and read ------------------------------------------------------------------

    async def start(self, request: StartRequest) -> str:
        name = request.workflow_name
        if Feature.WORKFLOW_CODE in self.features:
            assert self.workflows is not None
            # Refused before anything reaches the server, as the built-in engine does.
            registered = self.workflows.get_workflow(name)
            if registered.takes_input:
                try:
                    coerce(request.input, registered.input_type)
                except ValidationError as exc:
                    raise InvalidArgument(
                        "workflow input",
                        request.input,
                        f"{registered.input_type!r} ({exc.errors()[0]['msg']})",
                    ) from None
        instance_id = request.instance_id or uuid.uuid4().hex
        delay = None
        if request.start_at is not None:
            ahead = request.start_at - datetime.now(UTC)
            delay = ahead if ahead > timedelta(0) else None
        with wrapped("start"):
            try:
                await self.client.start_workflow(
                    name,
                    args=encode_args(request.input),
                    id=instance_id,
                    task_queue=self.metadata.task_queue,
                    execution_timeout=self.metadata.workflow_execution_timeout,
                    id_reuse_policy=(
                        WorkflowIDReusePolicy.ALLOW_DUPLICATE
                        if request.replace
                        else WorkflowIDReusePolicy.REJECT_DUPLICATE
                    ),
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    start_delay=delay,
                    rpc_timeout=RPC_TIMEOUT,
                )
            except WorkflowAlreadyStartedError as exc:
                found = await self._state(instance_id)
                status = found[0].runtime_status.value if found is not None else None
                raise InstanceExists(instance_id, status, self.name or None) from exc
        return instance_id

    async def get(self, instance_id: str) -> WorkflowState | None:
        with wrapped("get"):
            found = await self._state(instance_id)
        return found[0] if found is not None else None

    async def wait(
        self,
        instance_id: str,
        *,
        until: Collection[RuntimeStatus] = TERMINAL_STATUSES,
        timeout: float | None = None,
    ) -> WorkflowState:
        """Waits with Temporal's long poll on the close event; other statuses are polled.

        It returns once list shows the status too: Temporal's visibility store
        lags its history by a few milliseconds, and a caller that waited for an
        instance expects to find it in ``list`` in the state it waited for.
        """
        if set(until) <= TERMINAL_STATUSES:
            state = await self._wait_for_end(instance_id, until, timeout)
        else:
            state = await super().wait(instance_id, until=until, timeout=timeout)
        with wrapped("wait"):
            await self._until_listed(state)
        return state

    async def _wait_for_end(
        self, instance_id: str, until: Collection[RuntimeStatus], timeout: float | None
    ) -> WorkflowState:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await self.get(instance_id)
            if state is None:
                raise InstanceNotFound(instance_id, self.name or None)
            if state.runtime_status in until:
                return state
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(instance_id, timeout or 0.0, state)
            poll = LONG_POLL if remaining is None else min(LONG_POLL, timedelta(seconds=remaining))
            await self._await_close(instance_id, state.properties.get("temporal.runId", ""), poll)

    async def _until_listed(self, state: WorkflowState) -> None:
        """Give visibility a moment (at most VISIBILITY_GRACE) to show the run in this status."""
        if state.runtime_status is RuntimeStatus.PENDING:
            return  # visibility cannot tell a first step that has not run yet (list says RUNNING)
        query = " AND ".join(
            [
                f"WorkflowId = {quote(state.instance_id)}",
                f"RunId = {quote(state.properties.get('temporal.runId', ''))}",
                visibility_clause(state.runtime_status, iso(datetime.now(UTC))),
            ]
        )
        request = CountWorkflowExecutionsRequest(namespace=self.namespace, query=query)
        deadline = time.monotonic() + VISIBILITY_GRACE
        delay = 0.005
        while True:
            response = await self.client.workflow_service.count_workflow_executions(
                request, retry=True, timeout=RPC_TIMEOUT
            )
            if response.count > 0 or time.monotonic() >= deadline:
                return
            await asyncio.sleep(delay)  # polling a condition, bounded by the deadline above
            delay = min(delay * 2, 0.1)

    async def _await_close(self, instance_id: str, run_id: str, poll: timedelta) -> None:
        request = GetWorkflowExecutionHistoryRequest(
            namespace=self.namespace,
            execution=self._execution(instance_id, run_id),
            wait_new_event=True,
            history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
            skip_archival=True,
        )
        with wrapped("wait"):
            try:
                # One long poll: it answers at the close, or empty when the server's poll ends;
                # either way the caller looks at the state again.
                await self.client.workflow_service.get_workflow_execution_history(request, timeout=poll)
            except RPCError as exc:
                # The client's own deadline shows as DEADLINE_EXCEEDED, or now and then as
                # CANCELLED ("Timeout expired") when it races the poll's end in gRPC.
                if exc.status in (
                    RPCStatusCode.DEADLINE_EXCEEDED,
                    RPCStatusCode.CANCELLED,
                    RPCStatusCode.NOT_FOUND,
                ):
                    return  # the caller looks again (and tells a timeout or a purge)
                raise

    async def list(self, query: ListQuery) -> WorkflowPage:
        """Newest first by creation (see ``_listing``); items are summaries without input or output."""
        cursor = Cursor.parse(query.page_token) if query.page_token else None
        with wrapped("list"):
            infos, following = await Lister(self.client.workflow_service, self.namespace).page(
                filter_clauses(query), query.limit, cursor
            )
            try:
                items = [state_from_info(info) for info in infos]
            except UnknownStatus as exc:
                raise EngineError(COMPONENT_TYPE, "list", str(exc)) from exc
        if query.status:
            # The store's clock and ours split PENDING from RUNNING at slightly different instants.
            items = [item for item in items if item.runtime_status in query.status]
        return WorkflowPage(items=items, next_page_token=following.token() if following else None)

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        request = GetWorkflowExecutionHistoryRequest(
            namespace=self.namespace, execution=self._execution(instance_id)
        )
        events: list[TemporalEvent] = []
        with wrapped("history"):
            try:
                while True:
                    response = await self.client.workflow_service.get_workflow_execution_history(
                        request, retry=True, timeout=RPC_TIMEOUT
                    )
                    events.extend(response.history.events)
                    if not response.next_page_token:
                        break
                    request.next_page_token = response.next_page_token
            except RPCError as exc:
                if exc.status is RPCStatusCode.NOT_FOUND:
                    raise InstanceNotFound(instance_id, self.name or None) from exc
                raise
        return history_events(events)

    # -- management ----------------------------------------------------------------------

    async def _finished_or_missing(self, instance_id: str, operation: str, hint: str | None) -> None:
        """After NOT_FOUND from a write: a missing instance, or (with a hint) a finished one."""
        found = await self._state(instance_id)
        if found is None:
            raise InstanceNotFound(instance_id, self.name or None)
        if hint is not None:
            raise InvalidState(instance_id, found[0].runtime_status.value, operation, hint)

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        request = TerminateWorkflowExecutionRequest(
            namespace=self.namespace,
            workflow_execution=self._execution(instance_id),
            reason=reason or "",
            identity=self.client.identity,
        )
        with wrapped("terminate"):
            try:
                await self.client.workflow_service.terminate_workflow_execution(request, timeout=RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
                await self._finished_or_missing(instance_id, "terminate", None)  # finished: nothing to do

    async def cancel(self, instance_id: str, reason: str | None = None) -> None:
        request = RequestCancelWorkflowExecutionRequest(
            namespace=self.namespace,
            workflow_execution=self._execution(instance_id),
            reason=reason or "",
            identity=self.client.identity,
            request_id=str(uuid.uuid4()),
        )
        with wrapped("cancel"):
            try:
                await self.client.workflow_service.request_cancel_workflow_execution(
                    request, timeout=RPC_TIMEOUT
                )
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
                await self._finished_or_missing(instance_id, "cancel", None)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        request = SignalWorkflowExecutionRequest(
            namespace=self.namespace,
            workflow_execution=self._execution(instance_id),
            signal_name=name,
            input=Payloads(payloads=[encode(data)]) if data is not None else None,
            identity=self.client.identity,
            request_id=str(uuid.uuid4()),
        )
        with wrapped("raise_event"):
            try:
                await self.client.workflow_service.signal_workflow_execution(request, timeout=RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
                await self._finished_or_missing(
                    instance_id,
                    "raise an event to",
                    "the instance has finished; events reach running instances",
                )

    async def pause(self, instance_id: str, reason: str | None = None) -> None:
        request = PauseWorkflowExecutionRequest(
            namespace=self.namespace,
            workflow_id=instance_id,
            reason=reason or "",
            identity=self.client.identity,
            request_id=str(uuid.uuid4()),
        )
        with wrapped("pause"):
            try:
                await self.client.workflow_service.pause_workflow_execution(request, timeout=RPC_TIMEOUT)
            except RPCError as exc:
                await self._pause_refused(exc, instance_id, "pause")

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        with wrapped("resume"):
            found = await self._state(instance_id)
            if found is None:
                raise InstanceNotFound(instance_id, self.name or None)
            status = found[0].runtime_status
            if status is not RuntimeStatus.SUSPENDED:
                raise InvalidState(
                    instance_id, status.value, "resume", "only a paused (SUSPENDED) instance resumes"
                )
            request = UnpauseWorkflowExecutionRequest(
                namespace=self.namespace,
                workflow_id=instance_id,
                reason=reason or "",
                identity=self.client.identity,
                request_id=str(uuid.uuid4()),
            )
            try:
                await self.client.workflow_service.unpause_workflow_execution(request, timeout=RPC_TIMEOUT)
            except RPCError as exc:
                await self._pause_refused(exc, instance_id, "resume")

    async def _pause_refused(self, exc: RPCError, instance_id: str, operation: str) -> None:
        if exc.status is RPCStatusCode.UNIMPLEMENTED:
            raise Unsupported(
                COMPONENT_TYPE, Feature.PAUSE.value, f"{PAUSE_DISABLED} ({exc.message})"
            ) from exc
        if exc.status is RPCStatusCode.NOT_FOUND:
            await self._finished_or_missing(instance_id, operation, "the instance has already finished")
        if exc.status is RPCStatusCode.FAILED_PRECONDITION:
            found = await self._state(instance_id)
            if found is not None and found[0].runtime_status is (
                RuntimeStatus.SUSPENDED if operation == "pause" else RuntimeStatus.RUNNING
            ):
                return  # already paused (or already running): the call is idempotent
            status = found[0].runtime_status.value if found is not None else "unknown"
            raise InvalidState(instance_id, status, operation, exc.message) from exc
        raise exc

    async def purge(self, instance_id: str) -> None:
        """Delete a finished instance, its earlier runs and its children; wait until they are gone.

        Temporal deletes asynchronously: the call is accepted at once and the
        server removes the history later (within about a minute with default
        settings). ``purgeTimeout`` says how long to wait for it (0: not at all).
        """
        with wrapped("purge"):
            state, _ = await self._require(instance_id)
            if not state.runtime_status.is_terminal:
                raise InvalidState(
                    instance_id,
                    state.runtime_status.value,
                    "purge",
                    "only a finished instance can be purged; terminate it first",
                )
            purger = Purger(self.client.workflow_service, self.namespace)
            family = [instance_id, *await purger.descendants(instance_id)]
            for member in family:
                await purger.delete_runs(member)
            timeout = self.metadata.purge_timeout.total_seconds()
            if timeout > 0:
                await purger.until_gone(family, timeout)

    def handle(self, instance_id: str) -> WorkflowHandle[Any, Any]:
        """The SDK's handle of an instance, for calls Turnout does not wrap (queries, updates)."""
        return self.client.get_workflow_handle(instance_id)
