"""The runtime: load components, open them, hand out clients; async and sync.

``AsyncRuntime`` does the work on the caller's event loop. ``Runtime`` is the
synchronous facade: it runs an ``AsyncRuntime`` on an event loop in a
background thread, so plain scripts get the same behaviour (and the built-in
engine keeps working between calls).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Collection, Coroutine
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ._build import build_components
from ._component import WorkflowComponent
from ._errors import ComponentError, ComponentNotFound, InvalidArgument, TurnoutError
from ._models import (
    TERMINAL_STATUSES,
    Feature,
    HistoryEvent,
    ListQuery,
    RuntimeStatus,
    StartRequest,
    WorkflowDefinition,
    WorkflowPage,
    WorkflowState,
    validate_instance_id,
)
from ._plugins import load_registry
from ._registry import ComponentKind, ComponentRegistry
from ._serialization import to_json_value
from ._specs import ComponentSpec, read_specs
from ._tracing import span
from ._workflows import Workflows, name_of

T = TypeVar("T")

DEFAULT_COMPONENT = "dapr"
"""Name of the built-in engine when no resources are given (Dapr's own name for it)."""

StatusFilter = RuntimeStatus | str | Collection[RuntimeStatus | str] | None


def _statuses(status: StatusFilter) -> list[RuntimeStatus] | None:
    if status is None:
        return None
    items = [status] if isinstance(status, (str, RuntimeStatus)) else list(status)
    result = []
    for item in items:
        try:
            result.append(RuntimeStatus(str(item).upper()))
        except ValueError:
            names = ", ".join(s.value for s in RuntimeStatus)
            raise InvalidArgument("status", item, f"one of {names}") from None
    return result


def _required_id(instance_id: str) -> str:
    if not isinstance(instance_id, str) or not instance_id:
        raise InvalidArgument(
            "instance id", instance_id, "a non-empty string", code="ERR_INSTANCE_ID_PROVIDED_MISSING"
        )
    return instance_id


class AsyncWorkflowClient:
    """The management API for one workflow component, async."""

    def __init__(self, component: WorkflowComponent) -> None:
        self._component = component

    @property
    def component(self) -> WorkflowComponent:
        """The component this client talks to."""
        return self._component

    @property
    def features(self) -> frozenset[Feature]:
        """What the component can do beyond start and get."""
        return self._component.features

    def _span(self, operation: str, instance_id: str | None = None) -> Any:
        attributes = {"turnout.component": self._component.name, "turnout.operation": operation}
        if instance_id is not None:
            attributes["turnout.instance_id"] = instance_id
        return span(f"turnout {operation}", attributes=attributes)

    def _require(self, feature: Feature) -> None:
        if feature not in self._component.features:
            raise self._component.unsupported(feature)

    async def start(
        self,
        workflow: str | Callable[..., Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | timedelta | None = None,
        replace: bool = False,
    ) -> str:
        """Start an instance of ``workflow`` (a name or the decorated function); returns its id."""
        name = name_of(workflow)
        if not name:
            raise InvalidArgument("workflow name", name, "a non-empty name", code="ERR_WORKFLOW_NAME_MISSING")
        if instance_id is not None:
            validate_instance_id(instance_id)
        if isinstance(start_at, timedelta):
            start_at = datetime.now(UTC) + start_at
        if start_at is not None:
            if start_at.tzinfo is None:
                raise InvalidArgument(
                    "start_at", start_at, "a timezone-aware datetime (e.g. datetime.now(UTC))"
                )
            self._require(Feature.START_AT)
        if replace:
            self._require(Feature.REPLACE)
        request = StartRequest(
            workflow_name=name,
            input=to_json_value(input, what="workflow input"),
            instance_id=instance_id,
            start_at=start_at,
            replace=replace,
        )
        with self._span("start", instance_id) as current:
            started = await self._component.start(request)
            if current is not None:
                current.set_attribute("turnout.instance_id", started)
            return started

    async def get(self, instance_id: str) -> WorkflowState | None:
        """The instance's state, or None if there is no such instance."""
        with self._span("get", instance_id):
            return await self._component.get(_required_id(instance_id))

    async def wait(
        self,
        instance_id: str,
        *,
        timeout: float | None = None,
        until: Collection[RuntimeStatus | str] | None = None,
    ) -> WorkflowState:
        """Wait until the instance is COMPLETED, FAILED, TERMINATED or CANCELED (or one of ``until``)."""
        wanted = frozenset(_statuses(until) or TERMINAL_STATUSES) if until else TERMINAL_STATUSES
        return await self._component.wait(_required_id(instance_id), until=wanted, timeout=timeout)

    async def list(
        self,
        *,
        status: StatusFilter = None,
        workflow_name: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> WorkflowPage:
        """One page of instances, newest first; pass ``next_page_token`` back for the next."""
        self._require(Feature.LIST)
        if not isinstance(limit, int) or limit < 1:
            raise InvalidArgument("limit", limit, "a positive integer")
        query = ListQuery(
            status=_statuses(status), workflow_name=workflow_name, limit=limit, page_token=page_token
        )
        with self._span("list"):
            return await self._component.list(query)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an event to the instance; it is buffered until the workflow waits for it."""
        _required_id(instance_id)  # bad arguments first, as Dapr answers them: 400 before 501
        if not name:
            raise InvalidArgument(
                "event name", name, "a non-empty name", code="ERR_WORKFLOW_EVENT_NAME_MISSING"
            )
        self._require(Feature.RAISE_EVENT)
        with self._span("raise_event", instance_id):
            await self._component.raise_event(
                _required_id(instance_id), name, to_json_value(data, what="event data")
            )

    async def pause(self, instance_id: str, reason: str | None = None) -> None:
        """Suspend the instance until ``resume``."""
        _required_id(instance_id)
        self._require(Feature.PAUSE)
        with self._span("pause", instance_id):
            await self._component.pause(_required_id(instance_id), reason)

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        """Resume a paused instance."""
        _required_id(instance_id)
        self._require(Feature.PAUSE)
        with self._span("resume", instance_id):
            await self._component.resume(_required_id(instance_id), reason)

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """Stop the instance and its children at once."""
        _required_id(instance_id)
        self._require(Feature.TERMINATE)
        with self._span("terminate", instance_id):
            await self._component.terminate(_required_id(instance_id), reason)

    async def cancel(self, instance_id: str, reason: str | None = None) -> None:
        """Ask the instance to stop; it may compensate, then ends CANCELED."""
        _required_id(instance_id)
        self._require(Feature.CANCEL)
        with self._span("cancel", instance_id):
            await self._component.cancel(_required_id(instance_id), reason)

    async def purge(self, instance_id: str) -> None:
        """Delete a finished instance with its history and children."""
        _required_id(instance_id)
        self._require(Feature.PURGE)
        with self._span("purge", instance_id):
            await self._component.purge(_required_id(instance_id))

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        """The instance's history, oldest first."""
        _required_id(instance_id)
        self._require(Feature.HISTORY)
        with self._span("history", instance_id):
            return await self._component.history(_required_id(instance_id))

    async def put_definition(self, document: str, *, source: str | None = None) -> WorkflowDefinition:
        """Store a Serverless Workflow definition (YAML or JSON text); start it by its name."""
        self._require(Feature.DEFINITIONS)
        if not isinstance(document, str) or not document.strip():
            raise InvalidArgument("definition", document, "the text of a YAML or JSON document")
        with self._span("put_definition"):
            return await self._component.put_definition(document, source=source)

    async def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        """A stored definition with its document (the latest version unless one is named)."""
        if not name:
            raise InvalidArgument("definition name", name, "a non-empty name")
        self._require(Feature.DEFINITIONS)
        with self._span("get_definition"):
            return await self._component.get_definition(name, version)

    async def list_definitions(self) -> list[WorkflowDefinition]:
        """The definitions the component can start, every version."""
        self._require(Feature.DEFINITIONS)
        with self._span("list_definitions"):
            return await self._component.list_definitions()


class AsyncRuntime:
    """Loads the components named by ``resources`` and runs them (``async with``).

    ``resources`` is a component YAML file or a folder of them; with None, the
    built-in engine runs on SQLite under ``<working_dir>/.turnout/``.
    ``workflows`` is the registry of workflow code the engines host.
    """

    def __init__(
        self,
        resources: str | os.PathLike[str] | None = None,
        workflows: Workflows | None = None,
        *,
        working_dir: str | os.PathLike[str] | None = None,
        registry: ComponentRegistry | None = None,
    ) -> None:
        self.resources = Path(resources) if resources is not None else None
        self.workflows = workflows
        self.working_dir = Path(working_dir) if working_dir is not None else Path.cwd()
        self._registry = registry
        self._components: dict[str, tuple[ComponentSpec, Any]] = {}
        self._opened: list[Any] = []
        self._started = False

    @property
    def registry(self) -> ComponentRegistry:
        """The component types the installed plugins provide."""
        if self._registry is None:
            self._registry = load_registry()
        return self._registry

    def _specs(self) -> list[ComponentSpec]:
        specs = read_specs(self.resources, self.registry) if self.resources is not None else []
        if not any(s.component_type.kind is ComponentKind.WORKFLOW for s in specs):
            # Like Dapr, the built-in engine is always there when nothing else is declared.
            specs.append(
                ComponentSpec(
                    name=DEFAULT_COMPONENT,
                    type="workflow.builtin",
                    component_type=self.registry.lookup("workflow.builtin"),
                )
            )
        return specs

    async def start(self) -> None:
        """Load, validate and open every component; on any failure, close what was opened."""
        if self._started:
            return
        components = build_components(self._specs(), working_dir=self.working_dir, workflows=self.workflows)
        try:
            for name, (spec, component) in components.items():
                if isinstance(component, WorkflowComponent):
                    component.name = name
                    component.component_type = spec.component_type.type
                opener = getattr(component, "open", None)
                if opener is not None:
                    await opener()
                self._opened.append(component)
        except BaseException:
            await self._close_opened()
            raise
        self._components = components
        self._started = True

    async def _close_opened(self) -> None:
        errors = []
        for component in reversed(self._opened):
            closer = getattr(component, "close", None)
            if closer is None:
                continue
            try:
                await closer()
            except Exception as exc:  # keep closing the others; report the first
                errors.append(exc)
        self._opened.clear()
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        """Close every component, in reverse order of opening."""
        self._started = False
        await self._close_opened()

    async def __aenter__(self) -> AsyncRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def workflow_components(self) -> dict[str, WorkflowComponent]:
        """The workflow components by name."""
        return {
            name: component
            for name, (_spec, component) in self._components.items()
            if isinstance(component, WorkflowComponent)
        }

    def client(self, name: str | None = None) -> AsyncWorkflowClient:
        """A client for the workflow component ``name`` (or the only one)."""
        if not self._started:
            raise TurnoutError("the runtime is not started: use 'async with AsyncRuntime(...)' first")
        components = self.workflow_components()
        if name is None:
            if len(components) != 1:
                names = ", ".join(sorted(components))
                raise ComponentError(
                    f"there are several workflow components ({names}): name one in client(name)"
                )
            return AsyncWorkflowClient(next(iter(components.values())))
        if name not in components:
            raise ComponentNotFound(name, list(components))
        return AsyncWorkflowClient(components[name])


class WorkflowClient:
    """The management API for one workflow component, synchronous."""

    def __init__(self, client: AsyncWorkflowClient, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._client = client
        self._run = run

    @property
    def features(self) -> frozenset[Feature]:
        """What the component can do beyond start and get."""
        return self._client.features

    def start(
        self,
        workflow: str | Callable[..., Any],
        input: Any = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | timedelta | None = None,
        replace: bool = False,
    ) -> str:
        """Start an instance of ``workflow``; returns its id."""
        return self._run(
            self._client.start(workflow, input, instance_id=instance_id, start_at=start_at, replace=replace)
        )

    def get(self, instance_id: str) -> WorkflowState | None:
        """The instance's state, or None."""
        return self._run(self._client.get(instance_id))

    def wait(
        self,
        instance_id: str,
        *,
        timeout: float | None = None,
        until: Collection[RuntimeStatus | str] | None = None,
    ) -> WorkflowState:
        """Block until the instance finishes (or reaches one of ``until``)."""
        return self._run(self._client.wait(instance_id, timeout=timeout, until=until))

    def list(
        self,
        *,
        status: StatusFilter = None,
        workflow_name: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> WorkflowPage:
        """One page of instances, newest first."""
        return self._run(
            self._client.list(status=status, workflow_name=workflow_name, limit=limit, page_token=page_token)
        )

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an event to the instance."""
        self._run(self._client.raise_event(instance_id, name, data))

    def pause(self, instance_id: str, reason: str | None = None) -> None:
        """Suspend the instance."""
        self._run(self._client.pause(instance_id, reason))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        """Resume a paused instance."""
        self._run(self._client.resume(instance_id, reason))

    def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """Stop the instance and its children at once."""
        self._run(self._client.terminate(instance_id, reason))

    def cancel(self, instance_id: str, reason: str | None = None) -> None:
        """Ask the instance to stop cooperatively."""
        self._run(self._client.cancel(instance_id, reason))

    def purge(self, instance_id: str) -> None:
        """Delete a finished instance."""
        self._run(self._client.purge(instance_id))

    def history(self, instance_id: str) -> list[HistoryEvent]:
        """The instance's history, oldest first."""
        return self._run(self._client.history(instance_id))

    def put_definition(self, document: str, *, source: str | None = None) -> WorkflowDefinition:
        """Store a Serverless Workflow definition; start it by its name."""
        return self._run(self._client.put_definition(document, source=source))

    def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        """A stored definition with its document."""
        return self._run(self._client.get_definition(name, version))

    def list_definitions(self) -> list[WorkflowDefinition]:
        """The definitions the component can start."""
        return self._run(self._client.list_definitions())


class Runtime:
    """The synchronous runtime (``with Runtime(...) as rt``): an AsyncRuntime on a background loop."""

    def __init__(
        self,
        resources: str | os.PathLike[str] | None = None,
        workflows: Workflows | None = None,
        *,
        working_dir: str | os.PathLike[str] | None = None,
        registry: ComponentRegistry | None = None,
    ) -> None:
        self._async = AsyncRuntime(resources, workflows, working_dir=working_dir, registry=registry)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def async_runtime(self) -> AsyncRuntime:
        """The AsyncRuntime doing the work."""
        return self._async

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise TurnoutError("the runtime is not started: use 'with Runtime(...) as rt' first")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def start(self) -> None:
        """Start the background loop and open every component."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="turnout-runtime", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop
        try:
            self._run(self._async.start())
        except BaseException:
            self._stop_loop()
            raise

    def _stop_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Close every component and stop the background loop."""
        if self._loop is None:
            return
        try:
            self._run(self._async.aclose())
        finally:
            self._stop_loop()

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def client(self, name: str | None = None) -> WorkflowClient:
        """A client for the workflow component ``name`` (or the only one)."""
        return WorkflowClient(self._async.client(name), self._run)
