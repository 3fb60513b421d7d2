"""The engine's history events as Durable Task ``HistoryEvent``s, and a worker's actions back as events.

Remote instances keep the engine's own history model in the store, so every
store, lease and recovery path is the one local instances use. Only what
the engine's events cannot hold is kept aside in their ``details``, under
``dt``: a timer's exact fire time and origin (the Dapr SDK's far-future
timer of an event wait without timeout must round-trip to the nanosecond),
an activity's ``taskExecutionId``, the workflow version a turn reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, timestamp_pb2, wrappers_pb2

from turnout import FailureDetails, RuntimeStatus

from .._events import Event, Kind
from .._store import InstanceRow, Message
from ._protos import pb

STATUS_TO_PB: dict[RuntimeStatus, int] = {
    RuntimeStatus.RUNNING: pb.ORCHESTRATION_STATUS_RUNNING,
    RuntimeStatus.COMPLETED: pb.ORCHESTRATION_STATUS_COMPLETED,
    RuntimeStatus.CONTINUED_AS_NEW: pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
    RuntimeStatus.FAILED: pb.ORCHESTRATION_STATUS_FAILED,
    RuntimeStatus.CANCELED: pb.ORCHESTRATION_STATUS_CANCELED,
    RuntimeStatus.TERMINATED: pb.ORCHESTRATION_STATUS_TERMINATED,
    RuntimeStatus.PENDING: pb.ORCHESTRATION_STATUS_PENDING,
    RuntimeStatus.SUSPENDED: pb.ORCHESTRATION_STATUS_SUSPENDED,
}
STATUS_FROM_PB: dict[int, RuntimeStatus] = {v: k for k, v in STATUS_TO_PB.items()}

NO_EVENT_ID = -1
"""Durable Task's event id for events that are not a scheduled step."""


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    """Epoch seconds as a protobuf Timestamp."""
    whole = int(seconds // 1)
    return timestamp_pb2.Timestamp(seconds=whole, nanos=round((seconds - whole) * 1e9) % 1_000_000_000)


def seconds_of(value: timestamp_pb2.Timestamp) -> float:
    """A protobuf Timestamp as epoch seconds."""
    return value.seconds + value.nanos / 1e9


def text(value: str | None) -> wrappers_pb2.StringValue | None:
    """A payload (JSON text) as Durable Task's optional StringValue."""
    return None if value is None else wrappers_pb2.StringValue(value=value)


def text_of(message: Any, name: str) -> str | None:
    """An optional StringValue field's text, None when unset."""
    return getattr(message, name).value if message.HasField(name) else None


def failure_to_pb(failure: dict[str, Any] | FailureDetails | None) -> Any:
    """The engine's failure (a FailureDetails dump) as TaskFailureDetails."""
    if failure is None:
        return None
    details = failure if isinstance(failure, FailureDetails) else FailureDetails.model_validate(failure)
    return pb.TaskFailureDetails(
        errorType=details.error_type,
        errorMessage=details.message,
        stackTrace=text(details.stack_trace),
    )


def failure_from_pb(details: Any) -> FailureDetails:
    """TaskFailureDetails as the engine's FailureDetails."""
    return FailureDetails(
        error_type=details.errorType or "Error",
        message=details.errorMessage,
        stack_trace=text_of(details, "stackTrace"),
    )


def _dt(event: Event) -> dict[str, Any]:
    return event.detail("dt") or {}


def to_history(event: Event, row: InstanceRow) -> Any | None:
    """One engine event as a HistoryEvent; None for events Durable Task has no word for."""
    kind = event.kind
    out = pb.HistoryEvent(eventId=NO_EVENT_ID, timestamp=timestamp(event.timestamp))
    if kind is Kind.TURN_STARTED:
        version = _dt(event).get("version")
        started = pb.WorkflowStartedEvent()
        if version:
            json_format.ParseDict(version, started.version)
        out.workflowStarted.CopyFrom(started)
    elif kind is Kind.WORKFLOW_STARTED:
        started = pb.ExecutionStartedEvent(
            name=event.name or row.workflow_name,
            input=text(event.data),
            workflowInstance=pb.WorkflowInstance(
                instanceId=row.instance_id, executionId=text(row.execution_id)
            ),
        )
        if row.parent_instance_id is not None:
            started.parentInstance.CopyFrom(
                pb.ParentInstanceInfo(
                    taskScheduledId=row.parent_task_id if row.parent_task_id is not None else -1,
                    workflowInstance=pb.WorkflowInstance(instanceId=row.parent_instance_id),
                )
            )
        if row.scheduled_start_at is not None:
            started.scheduledStartTimestamp.CopyFrom(timestamp(row.scheduled_start_at))
        out.executionStarted.CopyFrom(started)
    elif kind is Kind.TASK_SCHEDULED:
        out.eventId = event.task_id if event.task_id is not None else NO_EVENT_ID
        out.taskScheduled.CopyFrom(
            pb.TaskScheduledEvent(
                name=event.name or "",
                input=text(event.data),
                taskExecutionId=_dt(event).get("taskExecutionId", ""),
            )
        )
    elif kind is Kind.TASK_COMPLETED:
        out.taskCompleted.CopyFrom(
            pb.TaskCompletedEvent(taskScheduledId=event.task_id, result=text(event.data))
        )
    elif kind is Kind.TASK_FAILED:
        out.taskFailed.CopyFrom(
            pb.TaskFailedEvent(
                taskScheduledId=event.task_id, failureDetails=failure_to_pb(event.detail("failure"))
            )
        )
    elif kind is Kind.TIMER_CREATED:
        out.eventId = event.task_id if event.task_id is not None else NO_EVENT_ID
        timer = pb.TimerCreatedEvent()
        recorded = _dt(event).get("timer")
        if recorded:
            # The worker's own CreateTimerAction, kept whole: fireAt, name and origin
            # have the same names and meanings in TimerCreatedEvent.
            json_format.ParseDict(recorded, timer, ignore_unknown_fields=True)
        else:
            timer.fireAt.CopyFrom(timestamp(float(event.detail("fire_at"))))
        out.timerCreated.CopyFrom(timer)
    elif kind is Kind.TIMER_FIRED:
        out.timerFired.CopyFrom(
            pb.TimerFiredEvent(timerId=event.task_id, fireAt=timestamp(float(event.detail("fire_at"))))
        )
    elif kind is Kind.CHILD_SCHEDULED:
        out.eventId = event.task_id if event.task_id is not None else NO_EVENT_ID
        out.childWorkflowInstanceCreated.CopyFrom(
            pb.ChildWorkflowInstanceCreatedEvent(
                instanceId=str(event.detail("instance_id") or ""),
                name=event.name or "",
                input=text(event.data),
            )
        )
    elif kind is Kind.CHILD_COMPLETED:
        out.childWorkflowInstanceCompleted.CopyFrom(
            pb.ChildWorkflowInstanceCompletedEvent(taskScheduledId=event.task_id, result=text(event.data))
        )
    elif kind is Kind.CHILD_FAILED:
        out.childWorkflowInstanceFailed.CopyFrom(
            pb.ChildWorkflowInstanceFailedEvent(
                taskScheduledId=event.task_id, failureDetails=failure_to_pb(event.detail("failure"))
            )
        )
    elif kind is Kind.EVENT_RAISED:
        out.eventRaised.CopyFrom(pb.EventRaisedEvent(name=event.name or "", input=text(event.data)))
    elif kind is Kind.SUSPENDED:
        out.executionSuspended.CopyFrom(pb.ExecutionSuspendedEvent(input=text(_reason(event))))
    elif kind is Kind.RESUMED:
        out.executionResumed.CopyFrom(pb.ExecutionResumedEvent(input=text(_reason(event))))
    elif kind in (Kind.TERMINATE_REQUESTED, Kind.CANCEL_REQUESTED):
        out.executionTerminated.CopyFrom(pb.ExecutionTerminatedEvent(recurse=True))
    elif kind is Kind.WORKFLOW_COMPLETED:
        status = RuntimeStatus(event.detail("status", RuntimeStatus.COMPLETED.value))
        out.executionCompleted.CopyFrom(
            pb.ExecutionCompletedEvent(
                workflowStatus=STATUS_TO_PB[status],
                result=text(event.data),
                failureDetails=failure_to_pb(event.detail("failure")),
            )
        )
    else:
        return None  # PatchApplied, ContinuedAsNew: the engine's own bookkeeping
    return out


def _reason(event: Event) -> str | None:
    reason = event.detail("reason")
    return None if reason is None else json.dumps(reason)


def history_of(events: list[Event], row: InstanceRow) -> list[Any]:
    """A whole history (or a turn's new messages) as HistoryEvents."""
    out = []
    for event in events:
        translated = to_history(event, row)
        if translated is not None:
            out.append(translated)
    return out


@dataclass
class RemoteOutcome:
    """Where one remote turn left the instance (what the engine's commit needs to know)."""

    workflow_name: str
    status: RuntimeStatus
    output: str | None = None
    failure: FailureDetails | None = None
    custom_status: str | None = None
    carried_events: list[Event] = field(default_factory=list)


@dataclass
class Applied:
    """A worker's actions as engine events, plus messages for other instances."""

    produced: list[Event] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    finished: RemoteOutcome | None = None


def apply_actions(actions: Any, row: InstanceRow, now: float) -> Applied:
    """Turn a WorkflowResponse's actions into the events the engine records.

    eventId = action.id throughout, so the worker's replay finds each step at
    the id it asked for.
    """
    applied = Applied()
    for action in actions:
        which = action.WhichOneof("workflowActionType")
        if which == "scheduleTask":
            task = action.scheduleTask
            dt = {"taskExecutionId": task.taskExecutionId} if task.taskExecutionId else None
            applied.produced.append(
                Event(
                    Kind.TASK_SCHEDULED,
                    now,
                    task_id=action.id,
                    name=task.name,
                    data=text_of(task, "input"),
                    details={"dt": dt} if dt else None,
                )
            )
        elif which == "createTimer":
            timer = action.createTimer
            details: dict[str, Any] = {"dt": {"timer": json_format.MessageToDict(timer)}}
            if timer.fireAt.seconds < FAR_FUTURE_SECONDS:
                details["fire_at"] = seconds_of(timer.fireAt)
            # else: an event wait without timeout (fireAt 9999-12-31): recorded, never scheduled.
            applied.produced.append(Event(Kind.TIMER_CREATED, now, task_id=action.id, details=details))
        elif which == "createChildWorkflow":
            child = action.createChildWorkflow
            child_id = child.instanceId or f"{row.instance_id}:{action.id:04x}"
            applied.produced.append(
                Event(
                    Kind.CHILD_SCHEDULED,
                    now,
                    task_id=action.id,
                    name=child.name,
                    data=text_of(child, "input"),
                    details={"instance_id": child_id},
                )
            )
        elif which == "sendEvent":
            send = action.sendEvent
            raised = Event(Kind.EVENT_RAISED, now, name=send.name, data=text_of(send, "data"))
            applied.messages.append(Message(send.instance.instanceId, raised, now))
        elif which == "terminateWorkflow":
            stop = action.terminateWorkflow
            reason = text_of(stop, "reason") or f"terminated by '{row.instance_id}'"
            request = Event(Kind.TERMINATE_REQUESTED, now, details={"reason": reason})
            applied.messages.append(Message(stop.instanceId, request, now))
        elif which == "completeWorkflow":
            applied.finished = _complete(action.completeWorkflow, row, now, applied)
        # Other actions (versioning, detached workflows) are not served: nothing is recorded.
    return applied


FAR_FUTURE_SECONDS = 253402300799 - 86400
"""Fire times from here on (the last day of year 9999) are never scheduled."""


def _complete(done: Any, row: InstanceRow, now: float, applied: Applied) -> RemoteOutcome:
    status = STATUS_FROM_PB.get(done.workflowStatus, RuntimeStatus.COMPLETED)
    result = text_of(done, "result")
    outcome = RemoteOutcome(workflow_name=row.workflow_name, status=status)
    if status is RuntimeStatus.CONTINUED_AS_NEW:
        carried = []
        for kept in done.carryoverEvents:
            if kept.HasField("eventRaised"):
                raised = kept.eventRaised
                carried.append(Event(Kind.EVENT_RAISED, now, name=raised.name, data=text_of(raised, "input")))
        outcome.carried_events = carried
        applied.produced.append(
            Event(Kind.CONTINUED_AS_NEW, now, data=result, details={"carried": len(carried)})
        )
        return outcome
    details: dict[str, Any] = {"status": status.value}
    if status is RuntimeStatus.FAILED:
        failure = (
            failure_from_pb(done.failureDetails)
            if done.HasField("failureDetails")
            else FailureDetails(error_type="Error", message="the workflow failed")
        )
        outcome.failure = failure
        details["failure"] = failure.model_dump()
        result = None
    else:
        outcome.output = result
    applied.produced.append(Event(Kind.WORKFLOW_COMPLETED, now, data=result, details=details))
    return outcome


def state_to_pb(row: InstanceRow, *, with_payloads: bool = True) -> Any:
    """An instance row as Durable Task's WorkflowState."""
    state = pb.WorkflowState(
        instanceId=row.instance_id,
        name=row.workflow_name,
        workflowStatus=STATUS_TO_PB[row.status],
        createdTimestamp=timestamp(row.created_at),
        lastUpdatedTimestamp=timestamp(row.last_updated_at),
        executionId=text(row.execution_id),
    )
    if row.scheduled_start_at is not None:
        state.scheduledStartTimestamp.CopyFrom(timestamp(row.scheduled_start_at))
    if row.parent_instance_id is not None:
        state.parentInstanceId.CopyFrom(wrappers_pb2.StringValue(value=row.parent_instance_id))
    if row.status.is_terminal:
        state.completedTimestamp.CopyFrom(timestamp(row.last_updated_at))
    if row.failure:
        state.failureDetails.CopyFrom(failure_to_pb(row.failure))
    if with_payloads:
        for name, value in (("input", row.input), ("output", row.output)):
            if value is not None:
                getattr(state, name).CopyFrom(wrappers_pb2.StringValue(value=value))
        if row.custom_status is not None:
            state.customStatus.CopyFrom(wrappers_pb2.StringValue(value=custom_status_out(row.custom_status)))
    return state


def custom_status_in(raw: str | None) -> str | None:
    """A worker's custom status as the engine keeps it (JSON text).

    The Dapr SDKs send a string custom status as it is, not as JSON: such a
    text is kept as a JSON string, so every API shows it as the string it was.
    """
    if raw is None:
        return None
    try:
        json.loads(raw)
    except ValueError:
        return json.dumps(raw, ensure_ascii=False)
    return raw


def custom_status_out(stored: str) -> str:
    """The inverse of :func:`custom_status_in`, for the Durable Task clients."""
    value = json.loads(stored)
    return value if isinstance(value, str) else stored
