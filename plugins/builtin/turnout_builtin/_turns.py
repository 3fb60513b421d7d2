"""Computing a turn: the messages an instance received in, the commit that records it out.

Pure: no I/O and no engine state. The engine decides which messages a turn
takes and commits what comes out; the sidecar's remote turns go through
:func:`outgoing` too, so a step means the same tasks, timers, children and
messages wherever its code ran.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from turnout import FailureDetails, RuntimeStatus
from turnout._tracing import current_carrier, span

from ._events import EXECUTION_SCOPED, Event, Kind
from ._executor import WorkflowRun
from ._store import InstanceRow, Message, NewChild, NewTask, TurnCommit


def _trace_details() -> dict[str, Any] | None:
    trace = current_carrier()
    return {"trace": trace} if trace else None


def new_execution_id() -> str:
    """A fresh id for one execution of an instance (a start, a replace, a continue-as-new)."""
    return uuid.uuid4().hex


class TurnOutcome(Protocol):
    """Where a turn left its instance: a :class:`WorkflowRun`, or a remote worker's answer."""

    workflow_name: str
    status: RuntimeStatus
    output: str | None
    failure: FailureDetails | None
    carried_events: list[Event]


def apply_turn(
    row: InstanceRow,
    run: WorkflowRun,
    events: list[Event],
    stale_ids: list[int],
    id_of: dict[int, int],
    now: float,
) -> tuple[TurnCommit | None, WorkflowRun | None]:
    """Run ``events`` through ``run`` (cached or just replayed); the commit, or None if all stay buffered.

    ``id_of`` maps an event (by ``id()``) to its inbox id; events without one
    are results this worker applies straight from its activities.
    ``stale_ids`` are inbox ids dropped unread (results for an ended execution).
    """
    parent = run.trace or next((e.detail("trace") for e in events if e.kind is Kind.WORKFLOW_STARTED), None)
    with span(
        f"turn {run.workflow_name or row.workflow_name}",
        parent=parent,
        attributes={"turnout.instance_id": row.instance_id, "turnout.messages": len(events)},
    ):
        result = run.process(now, events)
        # Events without an inbox id are results applied straight from this worker's activities.
        consumed = stale_ids + [id_of[id(e)] for e in result.consumed if id(e) in id_of]
        if run.status is RuntimeStatus.CONTINUED_AS_NEW:
            # Messages this execution did not apply move to the next one, after the
            # events it carries over, so that events keep their order.
            consumed += [id_of[id(e)] for e in result.skipped if id(e) in id_of]
            run.carried_events.extend(e for e in result.skipped if e.kind not in EXECUTION_SCOPED)
        if not result.consumed and not stale_ids:
            return None, run  # everything stays buffered (a paused instance)
        commit = TurnCommit(
            instance_id=row.instance_id,
            expected_history_length=row.history_length,
            consumed=consumed,
            new_events=result.new_events if result.consumed else [],
            status=run.status,
            last_updated_at=now,
            output=run.output,
            failure=run.failure.model_dump() if run.failure else None,
            custom_status=run.custom_status,
            workflow_name=run.workflow_name or None,
        )
        if not result.consumed:
            commit.status = row.status
            commit.output, commit.failure = row.output, row.failure
            commit.custom_status = row.custom_status
            commit.status_changed = False
            return commit, run
        outgoing(row, run, commit, now)
        commit.status_changed = commit.status is not row.status
        return commit, run


def outgoing(row: InstanceRow, run: TurnOutcome, commit: TurnCommit, now: float) -> None:
    """Turn the steps the code produced into tasks, timers, children and messages."""
    for event in commit.new_events:
        if event.kind is Kind.TASK_SCHEDULED:
            assert event.task_id is not None and event.name is not None
            commit.tasks.append(
                NewTask(
                    instance_id=row.instance_id,
                    execution_id=row.execution_id,
                    task_id=event.task_id,
                    name=event.name,
                    input=event.data,
                    retry=event.detail("retry"),
                    visible_at=now,
                    workflow_name=run.workflow_name,
                    trace=current_carrier(),  # the activity continues this turn's trace
                )
            )
        elif event.kind is Kind.TIMER_CREATED:
            if event.detail("fire_at") is None:
                continue  # a remote event wait without timeout: recorded, never fired
            fire_at = float(event.detail("fire_at"))
            fired = Event(
                Kind.TIMER_FIRED,
                fire_at,
                task_id=event.task_id,
                execution_id=row.execution_id,
                details={"fire_at": fire_at},
            )
            commit.messages.append(Message(row.instance_id, fired, fire_at))
        elif event.kind is Kind.CHILD_SCHEDULED:
            commit.children.append(_child(row, event, now))
        elif event.kind is Kind.WORKFLOW_COMPLETED:
            _completed(row, run, commit, event, now)
        elif event.kind is Kind.CONTINUED_AS_NEW:
            _continued(row, run, commit, event, now)


def _child(row: InstanceRow, event: Event, now: float) -> NewChild:
    child_id = str(event.detail("instance_id"))
    child = InstanceRow(
        instance_id=child_id,
        workflow_name=event.name or "",
        status=RuntimeStatus.PENDING,
        execution_id=new_execution_id(),
        created_at=now,
        last_updated_at=now,
        input=event.data,
        parent_instance_id=row.instance_id,
        parent_task_id=event.task_id,
        parent_execution_id=row.execution_id,
    )
    failure = FailureDetails(
        error_type="InstanceExists",
        message=f"cannot start child workflow '{event.name}': instance id '{child_id}' is already in use",
    )
    return NewChild(
        row=child,
        start=Event(Kind.WORKFLOW_STARTED, now, name=event.name, data=event.data, details=_trace_details()),
        failure_if_exists=_child_failed(event.task_id, row.execution_id, failure, now),
    )


def _child_failed(
    task_id: int | None, execution_id: str | None, failure: FailureDetails, now: float
) -> Event:
    """The message that tells a parent its child step ``task_id`` failed."""
    return Event(
        Kind.CHILD_FAILED,
        now,
        task_id=task_id,
        execution_id=execution_id,
        details={"failure": failure.model_dump()},
    )


def _completed(row: InstanceRow, run: TurnOutcome, commit: TurnCommit, event: Event, now: float) -> None:
    status = run.status
    if status is RuntimeStatus.TERMINATED:
        commit.terminate_children = str(
            event.detail("reason") or f"parent '{row.instance_id}' was terminated"
        )
    if row.parent_instance_id is None:
        return
    if status is RuntimeStatus.COMPLETED:
        notice = Event(
            Kind.CHILD_COMPLETED,
            now,
            task_id=row.parent_task_id,
            data=run.output,
            execution_id=row.parent_execution_id,
        )
    else:
        failure = run.failure or FailureDetails(
            error_type=f"Workflow{status.value.title()}",
            message=f"child workflow '{row.instance_id}' ended {status.value}",
        )
        notice = _child_failed(row.parent_task_id, row.parent_execution_id, failure, now)
    commit.messages.append(Message(row.parent_instance_id, notice, now))


def _continued(row: InstanceRow, run: TurnOutcome, commit: TurnCommit, event: Event, now: float) -> None:
    commit.reset_history = True
    commit.new_events = []
    commit.status = RuntimeStatus.RUNNING
    commit.output = commit.failure = None
    commit.new_execution_id = new_execution_id()
    commit.new_input = event.data
    start = Event(Kind.WORKFLOW_STARTED, now, name=run.workflow_name, data=event.data)
    commit.messages.append(Message(row.instance_id, start, now))
    for carried in run.carried_events:
        commit.messages.append(Message(row.instance_id, carried, now))
    # Tasks already queued belong to the old execution: drop them.
    commit.tasks = []
    commit.children = []
    commit.messages = [m for m in commit.messages if m.event.kind is not Kind.TIMER_FIRED]
