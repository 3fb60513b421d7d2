"""History events: what happened to an instance, in order; also the inbox's messages.

An inbox message is an event that has not been applied yet: applying it
appends it to the history. Events the workflow code produces (a task
scheduled, a timer created, a child started, completion) are appended by the
turn that produced them and double as the turn's outgoing actions. Payloads
stay JSON text from end to end, so a turn never re-encodes them.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

# Built once: json.dumps with options builds a new encoder on every call (events are encoded often).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class Kind(enum.StrEnum):
    """Every kind of history event."""

    TURN_STARTED = "TurnStarted"
    WORKFLOW_STARTED = "WorkflowStarted"
    TASK_SCHEDULED = "TaskScheduled"
    TASK_COMPLETED = "TaskCompleted"
    TASK_FAILED = "TaskFailed"
    TIMER_CREATED = "TimerCreated"
    TIMER_FIRED = "TimerFired"
    CHILD_SCHEDULED = "ChildWorkflowScheduled"
    CHILD_COMPLETED = "ChildWorkflowCompleted"
    CHILD_FAILED = "ChildWorkflowFailed"
    EVENT_RAISED = "EventRaised"
    PATCH_APPLIED = "PatchApplied"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    TERMINATE_REQUESTED = "TerminateRequested"
    CANCEL_REQUESTED = "CancelRequested"
    WORKFLOW_COMPLETED = "WorkflowCompleted"
    CONTINUED_AS_NEW = "ContinuedAsNew"


# Messages that apply to a specific execution of an instance; after
# continue-as-new or a replace, stale ones are dropped.
EXECUTION_SCOPED = frozenset(
    {Kind.TASK_COMPLETED, Kind.TASK_FAILED, Kind.TIMER_FIRED, Kind.CHILD_COMPLETED, Kind.CHILD_FAILED}
)
# Messages applied even while an instance is suspended.
CONTROL = frozenset({Kind.SUSPENDED, Kind.RESUMED, Kind.TERMINATE_REQUESTED})
# Events produced by workflow code: replay checks them against what the code asks for.
PRODUCED = frozenset({Kind.TASK_SCHEDULED, Kind.TIMER_CREATED, Kind.CHILD_SCHEDULED})


@dataclass(slots=True)
class Event:
    """One history event (or inbox message).

    ``data`` is JSON text (an input, a result, an event's payload); ``details``
    holds the kind-specific rest (failure, retry policy, fire time, child id,
    reason, final status).
    """

    kind: Kind
    timestamp: float
    task_id: int | None = None
    name: str | None = None
    data: str | None = None
    details: dict[str, Any] | None = None
    execution_id: str | None = None

    def detail(self, key: str, default: Any = None) -> Any:
        """One entry of ``details``."""
        return self.details.get(key, default) if self.details else default

    def encode(self) -> str:
        """Compact JSON for the store."""
        out: dict[str, Any] = {"k": self.kind.value, "t": self.timestamp}
        if self.task_id is not None:
            out["i"] = self.task_id
        if self.name is not None:
            out["n"] = self.name
        if self.data is not None:
            out["d"] = self.data
        if self.details:
            out["x"] = self.details
        if self.execution_id is not None:
            out["e"] = self.execution_id
        return _ENCODER.encode(out)

    @classmethod
    def decode(cls, text: str) -> Event:
        """The inverse of :meth:`encode`."""
        raw = json.loads(text)
        return cls(
            kind=Kind(raw["k"]),
            timestamp=raw["t"],
            task_id=raw.get("i"),
            name=raw.get("n"),
            data=raw.get("d"),
            details=raw.get("x"),
            execution_id=raw.get("e"),
        )
