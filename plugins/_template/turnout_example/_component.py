"""The ``workflow.example`` component: a teaching engine that keeps its instances in memory.

It shows the shape every adapter has, with nothing in the way:

* ``features`` declares what it can do beyond start and get (here LIST,
  TERMINATE and PURGE). Turnout refuses everything else with
  ``turnout.Unsupported`` before the component is called, and
  ``unsupported_reasons`` says why in that error.
* It answers with Turnout's models (``WorkflowState``, ``WorkflowPage``) and
  raises Turnout's errors (``InstanceNotFound``, ``InstanceExists``,
  ``InvalidState``, ``WorkflowNotRegistered``). A real adapter also wraps
  every SDK exception: ``raise EngineError(self.component_type, "start",
  str(exc)) from exc``.

TEMPLATE: replace the dictionary of instances by calls to your engine's client,
opened in ``open`` and released in ``close``. Nothing survives a restart here:
do not use this engine for real work.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar, Self

from turnout import (
    ComponentContext,
    FailureDetails,
    Feature,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    RuntimeStatus,
    StartRequest,
    WorkflowComponent,
    WorkflowNotRegistered,
    WorkflowPage,
    WorkflowState,
)

from ._metadata import Behaviour, ExampleMetadata


class ExampleWorkflowComponent(WorkflowComponent):
    """Runs the workflows named in its metadata, each with a fixed behaviour, in memory."""

    features: ClassVar[frozenset[Feature]] = frozenset({Feature.LIST, Feature.TERMINATE, Feature.PURGE})
    unsupported_reasons: ClassVar[dict[Feature, str]] = {
        Feature.PAUSE: "the example engine has no pause (it is a teaching example)",
        Feature.CANCEL: "the example engine cannot ask a workflow to stop; use terminate",
        Feature.RAISE_EVENT: "example workflows wait for no events",
        Feature.START_AT: "the example engine starts workflows at once only",
        Feature.REPLACE: "purge the finished instance first, then start again",
        Feature.HISTORY: "the example engine keeps no history",
        Feature.DEFINITIONS: "the example engine runs no declarative definitions",
    }

    def __init__(self, behaviours: Mapping[str, Behaviour], *, failure_message: str) -> None:
        self._behaviours = dict(behaviours)
        self._failure_message = failure_message
        # Insertion order is start order, so reversed() is "newest first" for list().
        self._instances: dict[str, WorkflowState] = {}

    @classmethod
    def from_metadata(cls, metadata: ExampleMetadata, context: ComponentContext) -> Self:
        """Build the component from validated metadata (the factory the plugin registers calls this)."""
        return cls(metadata.workflows, failure_message=metadata.failure_message)

    async def close(self) -> None:
        """Forget every instance: the example engine keeps nothing across runs."""
        self._instances.clear()

    async def start(self, request: StartRequest) -> str:
        """Run the workflow's behaviour at once; ``sleep`` workflows stay RUNNING."""
        behaviour = self._behaviours.get(request.workflow_name)
        if behaviour is None:
            raise WorkflowNotRegistered("workflow", request.workflow_name, list(self._behaviours))
        instance_id = request.instance_id or uuid.uuid4().hex
        existing = self._instances.get(instance_id)
        if existing is not None:
            raise InstanceExists(instance_id, existing.runtime_status.value, self.name or None)
        now = datetime.now(UTC)
        state = WorkflowState(
            instance_id=instance_id,
            workflow_name=request.workflow_name,
            runtime_status=RuntimeStatus.RUNNING,
            created_at=now,
            last_updated_at=now,
            input=request.input,
            properties={"behaviour": behaviour.value},
        )
        if behaviour is Behaviour.ECHO:
            state.runtime_status = RuntimeStatus.COMPLETED
            state.output = request.input
        elif behaviour is Behaviour.FAIL:
            state.runtime_status = RuntimeStatus.FAILED
            state.failure = FailureDetails(
                error_type="ExampleFailure",
                message=f"workflow '{request.workflow_name}' {self._failure_message}",
            )
        self._instances[instance_id] = state
        return instance_id

    async def get(self, instance_id: str) -> WorkflowState | None:
        """A copy of the instance's state, so callers cannot change the engine's own."""
        state = self._instances.get(instance_id)
        return None if state is None else state.model_copy(deep=True)

    async def list(self, query: ListQuery) -> WorkflowPage:
        """Instances matching the query, newest first; the page token is an offset."""
        offset = _offset(query.page_token)
        matches = [state for state in reversed(self._instances.values()) if _matches(state, query)]
        page = matches[offset : offset + query.limit]
        more = offset + query.limit < len(matches)
        return WorkflowPage(
            items=[state.model_copy(deep=True) for state in page],
            next_page_token=str(offset + query.limit) if more else None,
        )

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """End a running instance as TERMINATED; a finished one is left as it is (as in Dapr)."""
        state = self._require(instance_id)
        if state.runtime_status.is_terminal:
            return
        state.runtime_status = RuntimeStatus.TERMINATED
        state.last_updated_at = datetime.now(UTC)
        if reason:
            state.properties["terminate_reason"] = reason

    async def purge(self, instance_id: str) -> None:
        """Forget a finished instance; a running one must be terminated first."""
        state = self._require(instance_id)
        if not state.runtime_status.is_terminal:
            raise InvalidState(
                instance_id,
                state.runtime_status.value,
                "purge",
                "only finished instances can be purged; terminate it first",
            )
        del self._instances[instance_id]

    def _require(self, instance_id: str) -> WorkflowState:
        state = self._instances.get(instance_id)
        if state is None:
            raise InstanceNotFound(instance_id, self.name or None)
        return state


def _offset(page_token: str | None) -> int:
    if page_token is None:
        return 0
    if not page_token.isdigit():
        raise InvalidArgument("page token", page_token, "a token returned as next_page_token by list")
    return int(page_token)


def _matches(state: WorkflowState, query: ListQuery) -> bool:
    return (
        (query.status is None or state.runtime_status in query.status)
        and (query.workflow_name is None or state.workflow_name == query.workflow_name)
        and (query.created_from is None or state.created_at >= query.created_from)
        and (query.created_to is None or state.created_at <= query.created_to)
    )
