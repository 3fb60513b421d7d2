"""Portable workflows: one turnout.Workflows registry, run unchanged on the built-in engine and on Temporal.

Each :class:`Scenario` starts one workflow, plays a script against it (events,
a cancellation, waits for a custom status) and reads where it ended. The test
runs every scenario on both engines and compares the two outcomes with each
other and with what the scenario expects. Nothing here knows which engine
runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

import turnout

wf = turnout.Workflows()

SHORT = timedelta(milliseconds=20)
LONG = timedelta(days=1)
FAST_RETRY = turnout.RetryPolicy(
    max_attempts=5,
    first_retry_interval=timedelta(milliseconds=10),
    backoff_coefficient=2.0,
    max_retry_interval=timedelta(milliseconds=40),
    non_retryable_errors=(ValueError,),
)


# -- activities --------------------------------------------------------------------------------


@wf.activity
def double(ctx: turnout.ActivityContext, value: int) -> int:
    return value * 2


@wf.activity
async def describe_call(ctx: turnout.ActivityContext, tag: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {
        "tag": tag,
        "task_id": ctx.task_id,
        "attempt": ctx.attempt,
        "activity": ctx.activity_name,
        "workflow": ctx.workflow_name,
        "instance": ctx.instance_id,
    }


@wf.activity
def flaky(ctx: turnout.ActivityContext, succeed_on: int) -> int:
    if ctx.attempt < succeed_on:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return ctx.attempt


@wf.activity
def charge(ctx: turnout.ActivityContext, card: str) -> str:
    if card.startswith("0000"):
        raise ValueError("card declined")
    return f"receipt-{card[-4:]}"


@wf.activity(name="record")
def record(ctx: turnout.ActivityContext, what: Any) -> Any:
    return what


class Order(BaseModel):
    id: str
    total: float


class Receipt(BaseModel):
    order_id: str
    amount: float


@wf.activity
def pay(ctx: turnout.ActivityContext, order: Order) -> Receipt:
    return Receipt(order_id=order.id, amount=order.total)


# -- workflows ---------------------------------------------------------------------------------


@wf.workflow
def activities(ctx: turnout.WorkflowContext, value: int):
    doubled = yield ctx.call_activity(double, input=value)
    described = yield ctx.call_activity(describe_call, input="second")
    by_name = yield ctx.call_activity("record", input={"n": doubled})
    return {
        "doubled": doubled,
        "described": {**described, "instance": described["instance"] == ctx.instance_id},
        "by_name": by_name,
    }


@wf.workflow
def retries(ctx: turnout.WorkflowContext):
    attempts = yield ctx.call_activity(flaky, input=3, retry=FAST_RETRY)
    try:
        yield ctx.call_activity(charge, input="0000 1111", retry=FAST_RETRY)
    except turnout.TaskFailedError as err:
        return {
            "attempts": attempts,
            "error": err.error_type,
            "message": err.failure.message,
            "text": str(err),
        }
    return {"attempts": attempts}


@wf.workflow
def no_retry_policy(ctx: turnout.WorkflowContext):
    try:
        yield ctx.call_activity(flaky, input=2)  # no policy: one attempt
    except turnout.TaskFailedError as err:
        return {"error": err.error_type, "text": str(err)}
    return "retried"


@wf.workflow
def careless(ctx: turnout.WorkflowContext, card: str):
    return (yield ctx.call_activity(charge, input=card))


@wf.workflow
def raises(ctx: turnout.WorkflowContext, message: str):
    yield ctx.create_timer(SHORT)
    raise KeyError(message)


@wf.workflow
def unknown_activity(ctx: turnout.WorkflowContext):
    try:
        yield ctx.call_activity("no_such_activity", input=1)
    except turnout.TaskFailedError as err:
        return err.error_type
    return "ran"


@wf.workflow
def yields_junk(ctx: turnout.WorkflowContext):
    yield 42


@wf.workflow
def plain(ctx: turnout.WorkflowContext, value: int):
    return value + 1  # not a generator: completes at once


@wf.workflow
def timers(ctx: turnout.WorkflowContext):
    began = ctx.current_utc_datetime
    yield ctx.create_timer(SHORT)
    after_relative = ctx.current_utc_datetime
    yield ctx.create_timer(after_relative + SHORT)
    yield ctx.create_timer(began - LONG)  # in the past: fires at once
    ended = ctx.current_utc_datetime
    return {
        "aware": began.tzinfo is not None and began.utcoffset() == timedelta(0),
        "relative_waited": after_relative - began >= SHORT,
        "absolute_waited": ended - after_relative >= SHORT,
    }


@wf.workflow
def events(ctx: turnout.WorkflowContext):
    first = yield ctx.wait_for_external_event("signed")
    second = yield ctx.wait_for_external_event("SIGNED")
    return [first, second]


@wf.workflow
def event_timeout(ctx: turnout.WorkflowContext):
    try:
        yield ctx.wait_for_external_event("never", timeout=SHORT)
    except turnout.EventTimeoutError as err:
        timed_out = {
            "type": err.error_type,
            "message": err.failure.message,
            "is_timeout": isinstance(err, TimeoutError),
        }
    else:
        timed_out = None
    later = yield ctx.wait_for_external_event("later", timeout=LONG)
    return {"timed_out": timed_out, "later": later}


@wf.workflow
def fan_out(ctx: turnout.WorkflowContext, values: list[int]):
    results = yield turnout.when_all([ctx.call_activity(double, input=v) for v in values])
    empty = yield turnout.when_all([])
    return {"results": results, "empty": empty}


@wf.workflow
def fan_out_failure(ctx: turnout.WorkflowContext):
    try:
        yield turnout.when_all([ctx.call_activity(double, input=1), ctx.call_activity(charge, input="0000")])
    except turnout.TaskFailedError as err:
        return str(err)
    return "no failure"


@wf.workflow
def race(ctx: turnout.WorkflowContext, deadline_ms: int):
    approval = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(milliseconds=deadline_ms))
    winner = yield turnout.when_any([approval, deadline])
    if winner is deadline:
        ctx.set_custom_status("waiting again")
        late = yield approval  # the wait that lost the race waits once more
        return {"winner": "deadline", "late": late}
    return {"winner": "approval", "value": winner.get_result()}


@wf.workflow
def ship(ctx: turnout.WorkflowContext, package: dict[str, Any]) -> Generator[Any, Any, Receipt]:
    if package["kg"] > 30:
        raise ValueError(f"{package['sku']} is too heavy")
    receipt = yield ctx.call_activity(pay, input=Order(id=package["sku"], total=package["kg"]))
    return receipt


@wf.workflow
def family(ctx: turnout.WorkflowContext, packages: list[dict[str, Any]]):
    shipped: dict[str, Any] = {}
    for package in packages:
        try:
            receipt = yield ctx.call_child_workflow(ship, input=package)
            shipped[package["sku"]] = {"typed": isinstance(receipt, Receipt), "amount": receipt.amount}
        except turnout.TaskFailedError as err:
            shipped[package["sku"]] = str(err)
    mine = f"{ctx.instance_id}-mine"
    first = yield ctx.call_child_workflow("plain", input=1, instance_id=mine)
    try:
        yield ctx.call_child_workflow("plain", input=2, instance_id=mine)
    except turnout.TaskFailedError as err:
        again = {"type": err.error_type, "message": err.failure.message.replace(ctx.instance_id, "<id>")}
    else:
        again = None
    return {"shipped": shipped, "first": first, "again": again}


@wf.workflow
def rounds(ctx: turnout.WorkflowContext, page: int):
    rows = yield ctx.call_activity(double, input=page)
    ctx.set_custom_status({"page": page})
    if page < 3:
        ctx.continue_as_new(page + 1)  # events raised meanwhile are carried to the next round
        return None
    published_by = yield ctx.wait_for_external_event("publish")
    return {"pages": page, "rows": rows, "published_by": published_by}


@wf.workflow
def progress(ctx: turnout.WorkflowContext, user: str):
    ctx.set_custom_status({"step": "waiting"})
    yield ctx.wait_for_external_event("confirmed")
    ctx.set_custom_status({"step": "done", "user": user})
    return user


@wf.workflow
def facts(ctx: turnout.WorkflowContext):
    first, second = ctx.new_uuid(), ctx.new_uuid()
    now = ctx.current_utc_datetime
    yield ctx.call_activity(double, input=1)
    patched = ctx.is_patched("portable-patch")
    return {
        "uuids": len({first, second}) == 2 and all(len(u) == 36 for u in (first, second)),
        "name": ctx.workflow_name,
        "instance": bool(ctx.instance_id),
        "time_moves": ctx.current_utc_datetime >= now,
        "patched": patched,
        "replaying": ctx.is_replaying,
    }


@wf.workflow
def compensates(ctx: turnout.WorkflowContext, user: str):
    try:
        yield ctx.create_timer(LONG)
    except turnout.WorkflowCancelled as cancelled:
        revoked = yield ctx.call_activity("record", input=f"revoked {user}")
        ctx.set_custom_status({"cancelled": cancelled.reason, "compensation": revoked})
        raise
    return "not cancelled"


@wf.workflow
def typed(ctx: turnout.WorkflowContext, order: Order):
    receipt = yield ctx.call_activity(pay, input=order)
    untyped = yield ctx.call_activity("pay", input=order)
    return {
        "typed": isinstance(receipt, Receipt),
        "input_typed": isinstance(order, Order),
        "untyped": untyped,
    }


# -- scenarios ---------------------------------------------------------------------------------

Step = tuple[Any, ...]
"""("event", name, data) | ("cancel", reason) | ("status", custom status to wait for) | ("running",)."""


@dataclass(frozen=True)
class Scenario:
    """One workflow run: what to start, what to do to it, and where it should end."""

    workflow: Callable[..., Any] | str
    input: Any = None
    steps: tuple[Step, ...] = ()
    status: turnout.RuntimeStatus = turnout.RuntimeStatus.COMPLETED
    output: Any = None
    failure: tuple[str, str] | None = None
    """(error type, a fragment of the message)."""
    custom_status: Any = None


S = turnout.RuntimeStatus
SCENARIOS: dict[str, Scenario] = {
    "activities": Scenario(
        activities,
        5,
        output={
            "doubled": 10,
            "described": {
                "tag": "second",
                "task_id": 1,
                "attempt": 1,
                "activity": "describe_call",
                "workflow": "activities",
                "instance": True,
            },
            "by_name": {"n": 10},
        },
    ),
    "retries": Scenario(
        retries,
        output={
            "attempts": 3,
            "error": "ValueError",
            "message": "card declined",
            "text": "activity 'charge' (task 1) failed: ValueError: card declined",
        },
    ),
    "no-retry-policy-means-one-attempt": Scenario(
        no_retry_policy,
        output={
            "error": "ConnectionError",
            "text": "activity 'flaky' (task 0) failed: ConnectionError: attempt 1 failed",
        },
    ),
    "uncaught-task-failure": Scenario(
        careless,
        "0000 2222",
        status=S.FAILED,
        failure=("TaskFailedError", "activity 'charge' (task 0) failed: ValueError: card declined"),
    ),
    "workflow-raises": Scenario(raises, "boom", status=S.FAILED, failure=("KeyError", "boom")),
    "unknown-activity": Scenario(unknown_activity, output="WorkflowNotRegistered"),
    "yields-not-a-task": Scenario(
        yields_junk, status=S.FAILED, failure=("TypeError", "yielded int, not a task")
    ),
    "not-a-generator": Scenario(plain, 41, output=42),
    "timers": Scenario(timers, output={"aware": True, "relative_waited": True, "absolute_waited": True}),
    "events-fifo-case-insensitive-buffered": Scenario(
        events,
        steps=(("event", "Signed", "buyer"), ("event", "signed", "seller")),
        output=["buyer", "seller"],
    ),
    "event-timeout": Scenario(
        event_timeout,
        steps=(("event", "LATER", {"ok": True}),),
        output={
            "timed_out": {
                "type": "EventTimeoutError",
                "message": "no 'never' event within 0.02s",
                "is_timeout": True,
            },
            "later": {"ok": True},
        },
    ),
    "when-all": Scenario(fan_out, [1, 2, 3, 4, 5], output={"results": [2, 4, 6, 8, 10], "empty": []}),
    "when-all-failure": Scenario(
        fan_out_failure, output="activity 'charge' (task 1) failed: ValueError: card declined"
    ),
    "when-any-event-wins": Scenario(
        race,
        86_400_000,
        steps=(("running",), ("event", "approval", "yes")),
        output={"winner": "approval", "value": "yes"},
    ),
    "when-any-timer-wins-and-the-wait-revives": Scenario(
        race,
        20,
        steps=(("status", "waiting again"), ("event", "approval", "late")),
        output={"winner": "deadline", "late": "late"},
        custom_status="waiting again",
    ),
    "child-workflows": Scenario(
        family,
        [{"sku": "lamp", "kg": 4}, {"sku": "piano", "kg": 250}],
        output={
            "shipped": {
                "lamp": {"typed": True, "amount": 4.0},
                "piano": "child workflow 'ship' (task 1) failed: ValueError: piano is too heavy",
            },
            "first": 2,
            "again": {
                "type": "InstanceExists",
                "message": "cannot start child workflow 'plain': instance id '<id>-mine' is already in use",
            },
        },
    ),
    "continue-as-new-carries-events": Scenario(
        rounds,
        0,
        steps=(("event", "publish", "dana"),),
        output={"pages": 3, "rows": 6, "published_by": "dana"},
        custom_status={"page": 3},
    ),
    "custom-status": Scenario(
        progress,
        "ann",
        steps=(("status", {"step": "waiting"}), ("event", "confirmed", None)),
        output="ann",
        custom_status={"step": "done", "user": "ann"},
    ),
    "context-facts": Scenario(
        facts,
        output={
            "uuids": True,
            "name": "facts",
            "instance": True,
            "time_moves": True,
            "patched": True,
            "replaying": False,
        },
    ),
    "cancel-with-compensation": Scenario(
        compensates,
        "ann",
        steps=(("running",), ("cancel", "account closed")),
        status=S.CANCELED,
        custom_status={"cancelled": "account closed", "compensation": "revoked ann"},
    ),
    "typed-payloads": Scenario(
        typed,
        {"id": "A-7", "total": 12.5},
        output={"typed": True, "input_typed": True, "untyped": {"order_id": "A-7", "amount": 12.5}},
    ),
}


async def play(
    client: turnout.AsyncWorkflowClient, scenario: Scenario, timeout: float = 20.0
) -> dict[str, Any]:
    """Run a scenario on a client; returns its outcome with the instance id replaced by ``<id>``."""
    instance_id = await client.start(scenario.workflow, scenario.input)
    for step in scenario.steps:
        kind = step[0]
        if kind == "event":
            await client.raise_event(instance_id, step[1], step[2])
        elif kind == "cancel":
            await client.cancel(instance_id, step[1])
        elif kind == "running":
            await client.wait(instance_id, until=["RUNNING"], timeout=timeout)
        elif kind == "status":
            await _until(client, instance_id, lambda s, v=step[1]: s.custom_status == v, timeout)
    state = await client.wait(instance_id, timeout=timeout)
    failure = None
    if state.failure is not None:
        failure = (state.failure.error_type, state.failure.message)
    return _normalised(
        {
            "status": state.runtime_status,
            "output": state.output,
            "failure": failure,
            "custom_status": state.custom_status,
        },
        instance_id,
    )


async def _until(
    client: turnout.AsyncWorkflowClient, instance_id: str, predicate: Callable[[Any], bool], timeout: float
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    delay = 0.01
    while True:
        state = await client.get(instance_id)
        if state is not None and predicate(state):
            return
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"{instance_id}: condition not met within {timeout}s (last state {state})")
        await asyncio.sleep(delay)  # polling a condition, bounded by the deadline
        delay = min(delay * 2, 0.2)


def _normalised(value: Any, instance_id: str) -> Any:
    if isinstance(value, str):
        return value.replace(instance_id, "<id>")
    if isinstance(value, dict):
        return {k: _normalised(v, instance_id) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_normalised(v, instance_id) for v in value)
    return value


def expected(scenario: Scenario) -> dict[str, Any]:
    """The outcome a scenario asks for (a failure is checked by type and message fragment)."""
    return {
        "status": scenario.status,
        "output": scenario.output,
        "failure": scenario.failure,
        "custom_status": scenario.custom_status,
    }


def matches(outcome: dict[str, Any], scenario: Scenario) -> bool:
    """Whether an outcome is what the scenario expects."""
    want = expected(scenario)
    if scenario.failure is not None:
        got = outcome["failure"]
        if got is None or got[0] != scenario.failure[0] or scenario.failure[1] not in got[1]:
            return False
        want = {**want, "failure": got}
    return outcome == want
