"""The replay executor as a pure function: history in, new events out. No database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

import turnout
from turnout_builtin._events import Event, Kind
from turnout_builtin._executor import WorkflowRun

wf = turnout.Workflows()


class Order(BaseModel):
    id: str
    qty: int


@wf.activity
def work(ctx: turnout.ActivityContext, x: int) -> int:
    return x + 1


@wf.activity
def price(ctx: turnout.ActivityContext, order: Order) -> Order:
    return order


@wf.workflow
def two_steps(ctx: turnout.WorkflowContext, x: int) -> Any:
    a = yield ctx.call_activity(work, input=x)
    b = yield ctx.call_activity(work, input=a)
    return b


@wf.workflow
def catches(ctx: turnout.WorkflowContext, x: int) -> Any:
    try:
        yield ctx.call_activity(work, input=x)
    except turnout.TaskFailedError as exc:
        return f"caught {exc.error_type}"
    return "no error"


@wf.workflow
def fan_out(ctx: turnout.WorkflowContext, n: int) -> Any:
    results = yield turnout.when_all([ctx.call_activity(work, input=i) for i in range(n)])
    return results


@wf.workflow
def race(ctx: turnout.WorkflowContext) -> Any:
    event = ctx.wait_for_external_event("approve")
    timer = ctx.create_timer(timedelta(seconds=60))
    winner = yield turnout.when_any([event, timer])
    return "approved" if winner is event else "timeout"


@wf.workflow
def waits_with_timeout(ctx: turnout.WorkflowContext) -> Any:
    try:
        data = yield ctx.wait_for_external_event("go", timeout=timedelta(seconds=5))
    except turnout.EventTimeoutError:
        return "timed out"
    return data


@wf.workflow
def patched(ctx: turnout.WorkflowContext) -> Any:
    if ctx.is_patched("v2"):
        return (yield ctx.call_activity("new_step"))
    return (yield ctx.call_activity(work, input=0))


@wf.workflow
def uses_context(ctx: turnout.WorkflowContext) -> Any:
    ctx.set_custom_status({"stage": "start"})
    first = ctx.new_uuid()
    yield ctx.create_timer(timedelta(seconds=1))
    return {"uuid": first, "second": ctx.new_uuid(), "now": ctx.current_utc_datetime.isoformat()}


@wf.workflow
def compensates(ctx: turnout.WorkflowContext) -> Any:
    try:
        yield ctx.wait_for_external_event("never")
    except turnout.WorkflowCancelled:
        yield ctx.call_activity(work, input=-1)
        raise
    return "not cancelled"


@wf.workflow
def typed(ctx: turnout.WorkflowContext, order: Order) -> Any:
    priced = yield ctx.call_activity(price, input=order)
    return {"is_model": isinstance(priced, Order), "qty": priced.qty}


@wf.workflow
def yields_garbage(ctx: turnout.WorkflowContext) -> Any:
    yield 42


@wf.workflow
def loops(ctx: turnout.WorkflowContext, n: int) -> Any:
    yield ctx.call_activity(work, input=n)
    if n < 2:
        ctx.continue_as_new(n + 1)
    return n


T0 = 1_700_000_000.0


def started(name: str, data: str | None = None) -> Event:
    return Event(Kind.WORKFLOW_STARTED, T0, name=name, data=data)


def completed(task_id: int, data: str, at: float = T0 + 1) -> Event:
    return Event(Kind.TASK_COMPLETED, at, task_id=task_id, data=data)


def failed(task_id: int, error_type: str = "ValueError", message: str = "boom") -> Event:
    failure = {"error_type": error_type, "message": message, "stack_trace": None}
    return Event(Kind.TASK_FAILED, T0 + 1, task_id=task_id, details={"failure": failure})


def kinds(events: list[Event]) -> list[str]:
    return [e.kind.value for e in events]


def fresh(instance_id: str = "i1") -> WorkflowRun:
    run = WorkflowRun(wf, instance_id)
    run.replay([])
    return run


def test_first_turn_schedules_the_first_activity() -> None:
    run = fresh()
    result = run.process(T0, [started("two_steps", "1")])
    assert kinds(result.new_events) == ["TurnStarted", "WorkflowStarted", "TaskScheduled"]
    scheduled = result.new_events[-1]
    assert (scheduled.name, scheduled.task_id, scheduled.data) == ("work", 0, "1")
    assert run.status is turnout.RuntimeStatus.RUNNING


def test_results_drive_the_code_to_completion() -> None:
    run = fresh()
    run.process(T0, [started("two_steps", "1")])
    second = run.process(T0 + 1, [completed(0, "2")])
    assert kinds(second.new_events) == ["TurnStarted", "TaskCompleted", "TaskScheduled"]
    assert second.new_events[-1].data == "2"
    last = run.process(T0 + 2, [completed(1, "3")])
    assert kinds(last.new_events)[-1] == "WorkflowCompleted"
    assert run.status is turnout.RuntimeStatus.COMPLETED
    assert run.output == "3"


def test_replay_of_a_history_reaches_the_same_state_without_new_steps() -> None:
    live = fresh()
    history = live.process(T0, [started("two_steps", "1")]).new_events
    history += live.process(T0 + 1, [completed(0, "2")]).new_events
    replayed = WorkflowRun(wf, "i1")
    replayed.replay(history)
    assert replayed.history_length == len(history)
    assert replayed.status is turnout.RuntimeStatus.RUNNING
    result = replayed.process(T0 + 2, [completed(1, "3")])
    assert kinds(result.new_events) == ["TurnStarted", "TaskCompleted", "WorkflowCompleted"]
    assert replayed.output == "3"


def test_a_failed_activity_is_thrown_into_the_generator() -> None:
    run = fresh()
    run.process(T0, [started("catches", "1")])
    run.process(T0 + 1, [failed(0)])
    assert run.status is turnout.RuntimeStatus.COMPLETED
    assert run.output == '"caught ValueError"'


def test_an_uncaught_failure_fails_the_instance_with_its_details() -> None:
    run = fresh()
    run.process(T0, [started("two_steps", "1")])
    run.process(T0 + 1, [failed(0, "KeyError", "no such card")])
    assert run.status is turnout.RuntimeStatus.FAILED
    assert run.failure is not None
    assert run.failure.error_type == "TaskFailedError"
    assert "activity 'work' (task 0) failed: KeyError: no such card" in run.failure.message


def test_fan_out_schedules_all_and_gathers_in_order() -> None:
    run = fresh()
    first = run.process(T0, [started("fan_out", "3")])
    assert [e.task_id for e in first.new_events if e.kind is Kind.TASK_SCHEDULED] == [0, 1, 2]
    run.process(T0 + 1, [completed(2, "12"), completed(0, "10")])
    assert run.status is turnout.RuntimeStatus.RUNNING
    run.process(T0 + 2, [completed(1, "11")])
    assert run.output == "[10,11,12]"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Event(Kind.EVENT_RAISED, T0 + 1, name="APPROVE", data='"yes"'), '"approved"'),
        (Event(Kind.TIMER_FIRED, T0 + 60, task_id=0), '"timeout"'),
    ],
)
def test_when_any_returns_the_first_task(message: Event, expected: str) -> None:
    run = fresh()
    first = run.process(T0, [started("race")])
    timer = [e for e in first.new_events if e.kind is Kind.TIMER_CREATED]
    assert len(timer) == 1 and timer[0].detail("fire_at") == T0 + 60
    run.process(message.timestamp, [message])
    assert run.output == expected


def test_events_raised_before_the_wait_are_buffered() -> None:
    run = fresh()
    early = Event(Kind.EVENT_RAISED, T0, name="go", data='{"early":true}')
    run.process(T0, [early, started("waits_with_timeout")])
    assert run.status is turnout.RuntimeStatus.COMPLETED
    assert run.output == '{"early":true}'


def test_an_event_wait_times_out_with_event_timeout_error() -> None:
    run = fresh()
    run.process(T0, [started("waits_with_timeout")])
    run.process(T0 + 5, [Event(Kind.TIMER_FIRED, T0 + 5, task_id=0)])
    assert run.output == '"timed out"'
    # An event arriving after the timeout is not consumed by the dead waiter.
    assert run.status is turnout.RuntimeStatus.COMPLETED


def test_a_changed_step_fails_the_instance_naming_the_step_and_the_fix() -> None:
    history = [
        Event(Kind.TURN_STARTED, T0),
        started("two_steps", "1"),
        Event(Kind.TASK_SCHEDULED, T0, task_id=0, name="charge_card", data="1"),
    ]
    run = WorkflowRun(wf, "i1")
    run.replay(history)
    assert run.status is turnout.RuntimeStatus.FAILED
    assert run.failure is not None
    message = run.failure.message
    assert "step 0" in message and "charge_card" in message and "'work'" in message
    assert "is_patched" in message


def test_a_removed_step_is_reported_as_non_determinism() -> None:
    history = [
        Event(Kind.TURN_STARTED, T0),
        started("two_steps", "1"),
        Event(Kind.TASK_SCHEDULED, T0, task_id=0, name="work", data="1"),
        Event(Kind.TIMER_CREATED, T0, task_id=1, details={"fire_at": T0 + 1}),
    ]
    run = WorkflowRun(wf, "i1")
    run.replay(history)
    assert run.status is turnout.RuntimeStatus.FAILED
    assert run.failure is not None and "no longer asks for it" in run.failure.message


def test_is_patched_is_false_for_instances_that_passed_before_the_patch() -> None:
    old_history = [
        Event(Kind.TURN_STARTED, T0),
        started("patched"),
        Event(Kind.TASK_SCHEDULED, T0, task_id=0, name="work", data="0"),
    ]
    old = WorkflowRun(wf, "old")
    old.replay(old_history)
    assert old.status is turnout.RuntimeStatus.RUNNING  # replays the old path without divergence

    new = fresh("new")
    result = new.process(T0, [started("patched")])
    assert kinds(result.new_events) == ["TurnStarted", "WorkflowStarted", "PatchApplied", "TaskScheduled"]
    assert result.new_events[-1].name == "new_step"
    again = WorkflowRun(wf, "new")
    again.replay(result.new_events)
    assert again.status is turnout.RuntimeStatus.RUNNING


def test_context_values_are_deterministic_on_replay() -> None:
    run = fresh()
    history = run.process(T0, [started("uses_context")]).new_events
    history += run.process(T0 + 1, [Event(Kind.TIMER_FIRED, T0 + 1, task_id=0)]).new_events
    replayed = WorkflowRun(wf, "i1")
    replayed.replay(history)
    assert replayed.output == run.output
    assert replayed.custom_status == '{"stage":"start"}'
    assert '"now":"2023-11-14T22:13:21+00:00"' in (run.output or "")


def test_cancel_throws_into_the_workflow_which_may_compensate() -> None:
    run = fresh()
    run.process(T0, [started("compensates")])
    result = run.process(T0 + 1, [Event(Kind.CANCEL_REQUESTED, T0 + 1, details={"reason": "user"})])
    assert [e.name for e in result.new_events if e.kind is Kind.TASK_SCHEDULED] == ["work"]
    assert run.status is turnout.RuntimeStatus.RUNNING
    run.process(T0 + 2, [completed(0, "0")])
    assert run.status is turnout.RuntimeStatus.CANCELED


def test_terminate_ends_at_once_and_later_messages_are_dropped() -> None:
    run = fresh()
    run.process(T0, [started("two_steps", "1")])
    run.process(T0 + 1, [Event(Kind.TERMINATE_REQUESTED, T0 + 1, details={"reason": "stop"})])
    assert run.status is turnout.RuntimeStatus.TERMINATED
    late = run.process(T0 + 2, [completed(0, "2")])
    assert late.new_events == [] and len(late.consumed) == 1


def test_a_suspended_instance_buffers_everything_but_control_messages() -> None:
    run = fresh()
    run.process(T0, [started("two_steps", "1")])
    run.process(T0 + 1, [Event(Kind.SUSPENDED, T0 + 1)])
    assert run.status is turnout.RuntimeStatus.SUSPENDED
    result = run.process(T0 + 2, [completed(0, "2")])
    assert result.consumed == [] and len(result.skipped) == 1 and result.new_events == []
    resumed = run.process(T0 + 3, [completed(0, "2"), Event(Kind.RESUMED, T0 + 3)])
    assert kinds(resumed.consumed) == ["Resumed", "TaskCompleted"]
    assert run.status is turnout.RuntimeStatus.RUNNING


def test_annotated_models_come_back_as_models() -> None:
    run = fresh()
    run.process(T0, [started("typed", '{"id":"o1","qty":2}')])
    run.process(T0 + 1, [completed(0, '{"id":"o1","qty":2}')])
    assert run.output == '{"is_model":true,"qty":2}'


def test_yielding_something_that_is_not_a_task_fails_clearly() -> None:
    run = fresh()
    run.process(T0, [started("yields_garbage")])
    assert run.status is turnout.RuntimeStatus.FAILED
    assert run.failure is not None and "yielded int, not a task" in run.failure.message


def test_an_unknown_workflow_name_fails_the_instance() -> None:
    run = fresh()
    run.process(T0, [started("nope")])
    assert run.status is turnout.RuntimeStatus.FAILED
    assert run.failure is not None and "no workflow named 'nope'" in run.failure.message


def test_continue_as_new_carries_unhandled_events() -> None:
    run = fresh()
    run.process(T0, [started("loops", "0")])
    early = Event(Kind.EVENT_RAISED, T0, name="later", data="1")
    result = run.process(T0 + 1, [early, completed(0, "1")])
    assert kinds(result.new_events)[-1] == "ContinuedAsNew"
    assert result.new_events[-1].data == "1"
    assert run.carried_events == [early]


def test_duplicate_results_are_ignored() -> None:
    run = fresh()
    run.process(T0, [started("two_steps", "1")])
    run.process(T0 + 1, [completed(0, "2"), completed(0, "99")])
    assert run.status is turnout.RuntimeStatus.RUNNING
    run.process(T0 + 2, [completed(1, "3")])
    assert run.output == "3"


@wf.workflow
def reminders(ctx: turnout.WorkflowContext) -> Any:
    rounds = 0
    while True:
        approval = ctx.wait_for_external_event("approval")
        winner = yield turnout.when_any([approval, ctx.create_timer(timedelta(seconds=1))])
        if winner is approval:
            return {"rounds": rounds, "data": approval.get_result()}
        rounds += 1


@wf.workflow
def races_then_yields_again(ctx: turnout.WorkflowContext) -> Any:
    approval = ctx.wait_for_external_event("approval")
    yield turnout.when_any([approval, ctx.create_timer(timedelta(seconds=1))])
    return (yield approval)  # the same wait, yielded again after it lost the race


@wf.workflow
def forgets_yield(ctx: turnout.WorkflowContext) -> Any:
    return ctx.call_activity(work, input=1)


def test_an_event_goes_to_the_current_round_not_to_a_wait_that_lost_its_race() -> None:
    run = fresh()
    run.process(T0, [started("reminders")])
    run.process(T0 + 1, [Event(Kind.TIMER_FIRED, T0 + 1, task_id=0)])  # round 1: the timer wins
    run.process(T0 + 2, [Event(Kind.EVENT_RAISED, T0 + 2, name="approval", data='"ok"')])
    assert run.status is turnout.RuntimeStatus.COMPLETED
    assert run.output == '{"rounds":1,"data":"ok"}'


def test_a_wait_yielded_again_after_losing_a_race_still_gets_its_event() -> None:
    run = fresh()
    run.process(T0, [started("races_then_yields_again")])
    run.process(T0 + 1, [Event(Kind.TIMER_FIRED, T0 + 1, task_id=0)])
    run.process(T0 + 2, [Event(Kind.EVENT_RAISED, T0 + 2, name="approval", data='"late"')])
    assert run.output == '"late"'


def test_messages_after_continue_as_new_are_left_for_the_next_execution() -> None:
    run = fresh()
    run.process(T0, [started("loops", "0")])
    stop = Event(Kind.EVENT_RAISED, T0 + 1, name="stop", data='"x"')
    result = run.process(T0 + 1, [completed(0, "1"), stop])
    assert run.status is turnout.RuntimeStatus.CONTINUED_AS_NEW
    assert result.skipped == [stop]  # not consumed: the engine moves it to the new execution


def test_a_plain_function_that_schedules_steps_without_yield_fails_clearly() -> None:
    run = fresh()
    run.process(T0, [started("forgets_yield")])
    assert run.status is turnout.RuntimeStatus.FAILED
    assert run.failure is not None and "did you forget 'yield'?" in run.failure.message
