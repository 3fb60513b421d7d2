"""The sidecar's translation and remote turns, without a server: history in, requests and commits out."""

from __future__ import annotations

import asyncio
from typing import Any

from dapr.ext.workflow._durabletask.internal import protos as pb
from dapr.ext.workflow._durabletask.internal.timer import OPTIONAL_TIMER_FIRE_AT, is_optional_timer_event
from google.protobuf import wrappers_pb2

from turnout import RuntimeStatus, Workflows
from turnout_builtin._events import Event, Kind
from turnout_builtin._sidecar._dispatch import RemoteDispatch
from turnout_builtin._sidecar._translate import RemoteOutcome, apply_actions, history_of, timestamp
from turnout_builtin._store import InstanceRow, TurnCommit, TurnWork
from turnout_builtin._turns import outgoing

NOW = 1_800_000_000.25


def row(status: RuntimeStatus = RuntimeStatus.RUNNING, history_length: int = 3) -> InstanceRow:
    return InstanceRow(
        instance_id="i1",
        workflow_name="remote_flow",
        status=status,
        execution_id="e1",
        created_at=NOW - 10,
        last_updated_at=NOW - 5,
        history_length=history_length,
    )


class FakeHub:
    """Answers every work item with the given response, and keeps the requests."""

    def __init__(self, response: Any = None) -> None:
        self.requests: list[Any] = []
        self.response = response or pb.WorkflowResponse()

    async def submit(self, request: Any) -> Any:
        self.requests.append(request)
        return self.response


def test_an_event_wait_without_timeout_is_recorded_and_never_scheduled() -> None:
    action = pb.WorkflowAction(
        id=4,
        createTimer=pb.CreateTimerAction(
            fireAt=OPTIONAL_TIMER_FIRE_AT, externalEvent=pb.TimerOriginExternalEvent(name="approve")
        ),
    )
    applied = apply_actions([action], row(), NOW)
    (timer,) = applied.produced
    assert timer.kind is Kind.TIMER_CREATED and timer.task_id == 4
    assert timer.detail("fire_at") is None  # nothing will fire it
    # Back in the history, it is the SDK's optional timer, to the nanosecond.
    (event,) = history_of([Event.decode(timer.encode())], row())
    assert event.eventId == 4
    assert event.timerCreated.fireAt == OPTIONAL_TIMER_FIRE_AT
    assert is_optional_timer_event(event)
    # The engine records it and sends no TimerFired for it.
    commit = TurnCommit("i1", 3, [], [timer], RuntimeStatus.RUNNING, NOW)
    outgoing(row(), RemoteOutcome("remote_flow", RuntimeStatus.RUNNING), commit, NOW)
    assert commit.messages == []


def test_steps_keep_the_action_ids_and_timers_fire() -> None:
    actions = [
        pb.WorkflowAction(id=0, scheduleTask=pb.ScheduleTaskAction(name="charge", input=_text('{"a":1}'))),
        pb.WorkflowAction(id=1, createTimer=pb.CreateTimerAction(fireAt=timestamp(NOW + 30))),
        pb.WorkflowAction(
            id=2, createChildWorkflow=pb.CreateChildWorkflowAction(name="child", instanceId="")
        ),
    ]
    applied = apply_actions(actions, row(), NOW)
    assert [(e.kind, e.task_id) for e in applied.produced] == [
        (Kind.TASK_SCHEDULED, 0),
        (Kind.TIMER_CREATED, 1),
        (Kind.CHILD_SCHEDULED, 2),
    ]
    assert applied.produced[1].detail("fire_at") == NOW + 30
    assert applied.produced[2].detail("instance_id") == "i1:0002"
    events = history_of(applied.produced, row())
    assert [e.eventId for e in events] == [0, 1, 2]
    assert events[0].taskScheduled.input.value == '{"a":1}'


def test_every_turn_starts_with_workflow_started_at_its_time() -> None:
    hub = FakeHub(
        pb.WorkflowResponse(
            actions=[
                pb.WorkflowAction(
                    id=1,
                    completeWorkflow=pb.CompleteWorkflowAction(
                        workflowStatus=pb.ORCHESTRATION_STATUS_COMPLETED, result=_text("42")
                    ),
                )
            ],
            customStatus=_text("almost"),
        )
    )
    dispatch = RemoteDispatch(hub, Workflows())  # type: ignore[arg-type]
    history = [
        Event(Kind.TURN_STARTED, NOW - 10),
        Event(Kind.WORKFLOW_STARTED, NOW - 10, name="remote_flow", data="7"),
        Event(Kind.TASK_SCHEDULED, NOW - 10, task_id=0, name="charge", data="7"),
    ]
    done = Event(Kind.TASK_COMPLETED, NOW - 1, task_id=0, data="41", execution_id="e1")
    stale = Event(Kind.TASK_COMPLETED, NOW - 1, task_id=0, data="1", execution_id="an-older-one")
    work = TurnWork(instance=row(), instance_id="i1", messages=[(10, done), (11, stale)], history=history)
    turn = dispatch.prepare(work, NOW)
    assert turn is not None and turn.consumed == [11, 10]
    commit, outcome = asyncio.run(dispatch.run(turn))
    (item,) = hub.requests
    request = item.workflowRequest
    assert [e.WhichOneof("eventType") for e in request.pastEvents] == [
        "workflowStarted",
        "executionStarted",
        "taskScheduled",
    ]
    assert [e.WhichOneof("eventType") for e in request.newEvents] == ["workflowStarted", "taskCompleted"]
    assert request.newEvents[0].timestamp == timestamp(NOW)
    assert request.pastEvents[1].executionStarted.workflowInstance.executionId.value == "e1"
    assert outcome is not None and outcome.status is RuntimeStatus.COMPLETED
    assert commit.status is RuntimeStatus.COMPLETED and commit.output == "42"
    assert commit.custom_status == '"almost"'  # the SDK's plain string, kept as JSON text
    assert [e.kind for e in commit.new_events] == [
        Kind.TURN_STARTED,
        Kind.TASK_COMPLETED,
        Kind.WORKFLOW_COMPLETED,
    ]


def test_pause_resume_and_terminate_need_no_worker() -> None:
    hub = FakeHub()
    dispatch = RemoteDispatch(hub, Workflows())  # type: ignore[arg-type]
    paused = Event(Kind.SUSPENDED, NOW, details={"reason": "lunch"})
    raised = Event(Kind.EVENT_RAISED, NOW, name="go", data="1")
    work = TurnWork(instance=row(), instance_id="i1", messages=[(1, paused), (2, raised)], history=[])
    turn = dispatch.prepare(work, NOW)
    assert turn is not None and turn.consumed == [1]  # the event stays buffered
    commit, _ = asyncio.run(dispatch.run(turn))
    assert commit.status is RuntimeStatus.SUSPENDED and hub.requests == []
    # While suspended, an event alone makes no turn at all.
    suspended = TurnWork(instance=row(RuntimeStatus.SUSPENDED), instance_id="i1", messages=[(2, raised)])
    assert dispatch.prepare(suspended, NOW) is None
    stop = Event(Kind.TERMINATE_REQUESTED, NOW, details={"reason": "enough"})
    work = TurnWork(
        instance=row(RuntimeStatus.SUSPENDED), instance_id="i1", messages=[(2, raised), (3, stop)]
    )
    turn = dispatch.prepare(work, NOW)
    assert turn is not None and sorted(turn.consumed) == [2, 3]
    commit, _ = asyncio.run(dispatch.run(turn))
    assert commit.status is RuntimeStatus.TERMINATED and hub.requests == []
    assert commit.new_events[-1].kind is Kind.WORKFLOW_COMPLETED


def _text(value: str) -> Any:
    return wrappers_pb2.StringValue(value=value)
