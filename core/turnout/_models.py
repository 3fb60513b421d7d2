"""Typed models of the workflow-component interface: requests, states, pages.

They carry Dapr's fields (instance id, workflow name, runtime status, created
and last-updated times, input, output, failure, custom status, properties) so
that the HTTP server can render Dapr's JSON from any engine's answer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._errors import InvalidArgument


class RuntimeStatus(enum.StrEnum):
    """The lifecycle status of a workflow instance, with Dapr's names."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    CANCELED = "CANCELED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"

    @property
    def is_terminal(self) -> bool:
        """True once the instance can make no more progress."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED}
)


class Feature(enum.StrEnum):
    """Operations a workflow component may offer beyond start and get.

    A component declares what it has; the client refuses the rest with
    :class:`~turnout.Unsupported` before any engine call is made.
    """

    START_AT = "start_at"
    """Scheduled starts (``start_at``)."""
    LIST = "list"
    TERMINATE = "terminate"
    CANCEL = "cancel"
    """Cooperative cancellation: the workflow may compensate before it ends."""
    RAISE_EVENT = "raise_event"
    PAUSE = "pause"
    """Pause and resume."""
    PURGE = "purge"
    HISTORY = "history"
    REPLACE = "replace"
    """Reuse the id of a finished instance when starting (``replace=True``)."""
    WORKFLOW_CODE = "workflow_code"
    """Runs the workflows and activities of a :class:`turnout.Workflows` registry."""
    DEFINITIONS = "definitions"
    """Stores declarative workflow definitions (put, get, list) and starts them by name."""


class FailureDetails(BaseModel):
    """Why an instance or a task failed: the error's type, message and stack."""

    model_config = ConfigDict(frozen=True)

    error_type: str
    message: str
    stack_trace: str | None = None


class WorkflowState(BaseModel):
    """What a component knows of one workflow instance."""

    instance_id: str
    workflow_name: str
    runtime_status: RuntimeStatus
    created_at: datetime
    last_updated_at: datetime
    input: Any = None
    output: Any = None
    failure: FailureDetails | None = None
    custom_status: Any = None
    parent_instance_id: str | None = None
    scheduled_start_at: datetime | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    """Engine-specific facts (run ids, task queues, ARNs), as strings."""


class StartRequest(BaseModel):
    """Start (or schedule) one instance of a workflow."""

    workflow_name: str
    input: Any = None
    instance_id: str | None = None
    """Generated (a UUID4 hex) when absent."""
    start_at: datetime | None = None
    """When given, the instance waits in PENDING until then."""
    replace: bool = False
    """Start over an existing instance with this id if it has finished."""


class ListQuery(BaseModel):
    """Filters and paging for ``list``."""

    status: list[RuntimeStatus] | None = None
    workflow_name: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = Field(default=100, ge=1, le=10_000)
    page_token: str | None = None


class WorkflowPage(BaseModel):
    """One page of ``list``; iterate it for the states."""

    items: list[WorkflowState]
    next_page_token: str | None = None
    """Pass back as ``page_token`` to get the next page; None on the last one."""

    def __iter__(self) -> Iterator[WorkflowState]:  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> WorkflowState:
        return self.items[index]


class WorkflowDefinition(BaseModel):
    """A stored declarative workflow definition (Serverless Workflow 1.0 or 0.8).

    ``workflow_name`` is what ``start`` takes; ``document`` is the text as it
    was stored (absent from listings).
    """

    name: str
    version: str
    dialect: str
    """``1.0`` or ``0.8``."""
    workflow_name: str
    created_at: datetime
    document: str | None = None


class HistoryEvent(BaseModel):
    """One step of an instance's history, as the management API shows it."""

    sequence: int
    timestamp: datetime
    kind: str
    """For example ``WorkflowStarted``, ``TaskScheduled``, ``TaskCompleted``, ``TimerFired``."""
    name: str | None = None
    task_id: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


_INSTANCE_ID = re.compile(r"[\w-]+")
MAX_INSTANCE_ID_LENGTH = 64


def validate_instance_id(instance_id: str) -> str:
    """Apply Dapr's rules to an id chosen by a caller: 1-64 letters, digits, ``_`` or ``-``."""
    if not instance_id:
        raise InvalidArgument(
            "instance id", instance_id, "a non-empty string", code="ERR_INSTANCE_ID_PROVIDED_MISSING"
        )
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise InvalidArgument(
            "instance id",
            instance_id,
            f"at most {MAX_INSTANCE_ID_LENGTH} characters",
            code="ERR_INSTANCE_ID_TOO_LONG",
        )
    if not _INSTANCE_ID.fullmatch(instance_id):
        raise InvalidArgument(
            "instance id",
            instance_id,
            "only letters, digits, '_' and '-'",
            code="ERR_INSTANCE_ID_INVALID",
        )
    return instance_id
