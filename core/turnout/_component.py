"""The workflow-component interface: what every engine adapter implements.

One abstract class, async and small. Start and get are required; everything
else is declared in :attr:`WorkflowComponent.features`, and an operation that a
component does not declare raises :class:`Unsupported` before it reaches the
engine. ``wait`` is generic (built on ``get``); engines that can be told when
an instance changes override it.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Any, ClassVar

from ._errors import InstanceNotFound, Unsupported, WaitTimeout
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
)


class WorkflowComponent(ABC):
    """A workflow engine behind Turnout's management API.

    Subclasses set :attr:`features` and implement the methods those features
    name. The runtime calls :meth:`open` once before any other method and
    :meth:`close` once at shutdown.
    """

    features: ClassVar[frozenset[Feature]] = frozenset()
    """What this component can do beyond start and get."""

    component_type: str = "workflow.unknown"
    """The ``spec.type`` this component was created for (set by the registry)."""

    name: str = ""
    """The component's ``metadata.name`` (set by the runtime)."""

    unsupported_reasons: ClassVar[dict[Feature, str]] = {}
    """Why a feature is missing, for the error users see (e.g. "Step Functions has no pause API")."""

    async def open(self) -> None:
        """Connect to the engine; called once before any other method."""

    async def close(self) -> None:
        """Release connections and stop background work."""

    @abstractmethod
    async def start(self, request: StartRequest) -> str:
        """Start (or schedule) an instance and return its id.

        Raises InstanceExists when the id is taken (unless ``replace`` applies),
        WorkflowNotRegistered when the engine can tell the name is unknown.
        """

    @abstractmethod
    async def get(self, instance_id: str) -> WorkflowState | None:
        """The instance's state, or None when no such instance exists."""

    async def list(self, query: ListQuery) -> WorkflowPage:
        """Instances matching the query, newest first, one page at a time."""
        raise self.unsupported(Feature.LIST)

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """Stop the instance (and its children) now; no workflow code runs."""
        raise self.unsupported(Feature.TERMINATE)

    async def cancel(self, instance_id: str, reason: str | None = None) -> None:
        """Ask the instance to stop; its code may compensate and then it ends CANCELED."""
        raise self.unsupported(Feature.CANCEL)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Deliver an external event; buffered until the workflow waits for it."""
        raise self.unsupported(Feature.RAISE_EVENT)

    async def pause(self, instance_id: str, reason: str | None = None) -> None:
        """Suspend the instance: no workflow code runs and events are buffered."""
        raise self.unsupported(Feature.PAUSE)

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        """Resume a paused instance."""
        raise self.unsupported(Feature.PAUSE)

    async def purge(self, instance_id: str) -> None:
        """Delete a finished instance, its history and its children's."""
        raise self.unsupported(Feature.PURGE)

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        """The instance's history, oldest first."""
        raise self.unsupported(Feature.HISTORY)

    async def put_definition(self, document: str, *, source: str | None = None) -> WorkflowDefinition:
        """Validate and store a declarative definition (YAML or JSON text) as a new version.

        Storing the same version again with the same content is a no-op;
        with other content it raises DefinitionExists.
        """
        raise self.unsupported(Feature.DEFINITIONS)

    async def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        """A stored definition with its document: the latest version unless one is named."""
        raise self.unsupported(Feature.DEFINITIONS)

    async def list_definitions(self) -> list[WorkflowDefinition]:
        """Every definition the component can start, each version, without documents."""
        raise self.unsupported(Feature.DEFINITIONS)

    async def wait(
        self,
        instance_id: str,
        *,
        until: Collection[RuntimeStatus] = TERMINAL_STATUSES,
        timeout: float | None = None,
    ) -> WorkflowState:
        """Poll ``get`` until the status is one of ``until``.

        Polling starts at 10 ms and backs off to 1 s; engines that can be
        notified override this. Raises WaitTimeout with the last state seen.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            state = await self.get(instance_id)
            if state is None:
                raise InstanceNotFound(instance_id, self.name or None)
            if state.runtime_status in until:
                return state
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(instance_id, timeout or 0.0, state)
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def unsupported(self, feature: Feature | str) -> Unsupported:
        """The error for an operation this component does not offer."""
        key = Feature(feature) if not isinstance(feature, Feature) else feature
        return Unsupported(self.component_type, key.value, self.unsupported_reasons.get(key))
