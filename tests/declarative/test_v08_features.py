"""Serverless Workflow 0.8 constructs the corpus does not reach, on definitions written here."""

from __future__ import annotations

import asyncio
import copy
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import turnout
from turnout import RuntimeStatus as S
from turnout.declarative import Settings, register
from turnout.declarative._v08_model import RetryDef, parse_v08
from turnout.declarative._v08_parse import parse_workflow
from turnout.declarative._v08_run import _Interpreter

from .conftest import Runner
from .http_stub import HttpStub


def flow(states: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A 0.8 document named ``wf`` around ``states``."""
    return {
        "id": "wf",
        "version": "1.0",
        "specVersion": "0.8",
        "start": states[0]["name"],
        "states": states,
        **extra,
    }


def _recording(
    workflows: turnout.Workflows, name: str, result: Any = None, calls: list[Any] | None = None
) -> None:
    def stub(ctx: turnout.ActivityContext, arguments: Any) -> Any:
        if calls is not None:
            calls.append(copy.deepcopy(arguments))
        if isinstance(result, Exception):
            raise result
        return copy.deepcopy(result)

    workflows.activity(stub, name=name)


async def test_parallel_actions_conditions_and_action_filters(running: Runner) -> None:
    registry = turnout.Workflows()
    calls: list[Any] = []
    _recording(registry, "price", {"amount": 12, "currency": "EUR"}, calls)
    _recording(registry, "stock", {"available": 3, "warehouse": "north"})
    _recording(registry, "never", {"oops": True})
    document = flow(
        [
            {
                "name": "Quote",
                "type": "operation",
                "actionMode": "parallel",
                "actions": [
                    {
                        "functionRef": {"refName": "price", "arguments": {"sku": "${ .sku }"}},
                        "actionDataFilter": {
                            "fromStateData": "${ .order }",
                            "results": "${ .amount }",
                            "toStateData": "${ .quote.amount }",
                        },
                    },
                    {"functionRef": "stock", "actionDataFilter": {"useResults": False}},
                    {"functionRef": "never", "condition": '${ .order.sku == "none" }'},
                ],
                "end": True,
            }
        ],
        functions=[
            {"name": n, "operation": f"https://example.com/api.json#{n}"} for n in ("price", "stock", "never")
        ],
    )
    async with running(parse_v08(document, "parallel-actions"), workflows=registry) as client:
        state = await client.wait(await client.start("wf", {"order": {"sku": "A1"}}), timeout=30)
    assert state.output == {"order": {"sku": "A1"}, "quote": {"amount": 12}}, state.failure
    assert calls == [{"sku": "A1"}]  # arguments saw fromStateData (.order), not the whole state data


async def test_foreach_batches_sequential_mode_and_appending_output(running: Runner) -> None:
    registry = turnout.Workflows()
    document = flow(
        [
            {
                "name": "Square",
                "type": "foreach",
                "inputCollection": "${ .numbers }",
                "iterationParam": "n",
                "outputCollection": "${ .squares }",
                "batchSize": 2,
                "actions": [{"functionRef": "square"}],
                "transition": "Again",
            },
            {
                "name": "Again",
                "type": "foreach",
                "mode": "sequential",
                "inputCollection": "${ [.numbers[] | . * 10] }",
                "iterationParam": "n",
                "outputCollection": "${ .squares }",
                "actions": [{"functionRef": "square"}],
                "end": True,
            },
        ],
        functions=[{"name": "square", "type": "expression", "operation": ".n * .n"}],
    )
    async with running(parse_v08(document, "foreach"), workflows=registry) as client:
        state = await client.wait(
            await client.start("wf", {"numbers": [1, 2, 3], "squares": [0]}), timeout=30
        )
    assert state.output == {"numbers": [1, 2, 3], "squares": [0, 1, 4, 9, 100, 400, 900]}, state.failure


async def test_parallel_at_least_does_not_wait_for_the_slow_branch(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Race",
                "type": "parallel",
                "completionType": "atLeast",
                "numCompleted": 1,
                "branches": [
                    {"name": "fast", "actions": [{"functionRef": "fast"}]},
                    {"name": "slow", "actions": [{"functionRef": "slow", "sleep": {"before": "PT1H"}}]},
                ],
                "end": True,
            }
        ],
        functions=[
            {"name": "fast", "type": "expression", "operation": "{fast: true}"},
            {"name": "slow", "type": "expression", "operation": "{slow: true}"},
        ],
    )
    async with running(parse_v08(document, "race")) as client:
        state = await client.wait(await client.start("wf", {}), timeout=30)
    assert state.output == {"fast": True}, state.failure


async def test_continue_as_new_loops_with_fresh_histories(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Count",
                "type": "operation",
                "actions": [{"functionRef": "increment", "actionDataFilter": {"toStateData": ".n"}}],
                "transition": "Check",
            },
            {
                "name": "Check",
                "type": "switch",
                "dataConditions": [
                    {
                        "condition": ".n < 3",
                        "end": {"continueAs": {"workflowId": "wf", "data": "${ {n: .n} }"}},
                    }
                ],
                "defaultCondition": {"end": True},
            },
        ],
        functions=[{"name": "increment", "type": "expression", "operation": ".n + 1"}],
    )
    async with running(parse_v08(document, "loop")) as client:
        iid = await client.start("wf", {"n": 0})
        state = await client.wait(iid, timeout=30)
        history = await client.history(iid)
    assert state.output == {"n": 3}, state.failure
    assert state.input == {"n": 2}
    assert [e.kind for e in history].count("WorkflowStarted") == 1


async def test_an_action_timeout_is_an_error_that_on_errors_handles(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Ask",
                "type": "operation",
                "timeouts": {"actionExecTimeout": "PT0.2S"},
                "actions": [{"eventRef": {"triggerEventRef": "Question", "resultEventRef": "Answer"}}],
                "onErrors": [{"errorRef": "too slow", "transition": "GiveUp"}],
                "end": True,
            },
            {"name": "GiveUp", "type": "inject", "data": {"answer": "none"}, "end": True},
        ],
        events=[
            {"name": "Question", "type": "quiz.question", "kind": "produced"},
            {"name": "Answer", "type": "quiz.answer", "source": "quizmaster"},
        ],
        errors=[{"name": "too slow", "code": "ActionExecTimeout"}],
    )
    async with running(parse_v08(document, "timeout")) as client:
        state = await client.wait(await client.start("wf", {"q": 1}), timeout=30)
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.output == {"q": 1, "answer": "none"}
    assert state.custom_status == {"state": "GiveUp"}


async def test_an_event_state_that_needs_all_its_events(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Gather",
                "type": "event",
                "exclusive": False,
                "onEvents": [
                    {"eventRefs": ["Left"], "eventDataFilter": {"toStateData": "${ .left }"}},
                    {
                        "eventRefs": ["Right"],
                        "eventDataFilter": {"data": "${ .value }", "toStateData": "${ .right }"},
                    },
                ],
                "end": True,
            }
        ],
        events=[
            {"name": "Left", "type": "side", "source": "left"},
            {"name": "Right", "type": "side", "source": "right"},
        ],
    )
    async with running(parse_v08(document, "gather")) as client:
        iid = await client.start("wf", {})
        await client.raise_event(
            iid,
            "side",
            {"specversion": "1.0", "id": "r", "type": "side", "source": "right", "data": {"value": 2}},
        )
        await client.raise_event(
            iid,
            "side",
            {"specversion": "1.0", "id": "l", "type": "side", "source": "left", "data": {"value": 1}},
        )
        state = await client.wait(iid, timeout=30)
    assert state.output == {"left": {"value": 1}, "right": 2}, state.failure


async def test_constants_secrets_and_expression_functions(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Decide",
                "type": "switch",
                "dataConditions": [{"condition": "${ fn:isBig }", "transition": "Big"}],
                "defaultCondition": {"transition": "Small"},
            },
            {"name": "Big", "type": "inject", "data": {"size": "big"}, "transition": "Sign"},
            {"name": "Small", "type": "inject", "data": {"size": "small"}, "transition": "Sign"},
            {
                "name": "Sign",
                "type": "operation",
                "actions": [{"functionRef": "sign", "actionDataFilter": {"toStateData": ".signature"}}],
                "end": True,
            },
        ],
        constants={"limit": 10},
        secrets=["KEY"],
        functions=[
            {"name": "isBig", "type": "expression", "operation": ".amount > $CONST.limit"},
            {"name": "sign", "type": "expression", "operation": '"\\(.size)-\\($SECRETS.KEY)"'},
        ],
    )
    async with running(parse_v08(document, "consts"), settings_=Settings(secrets={"KEY": "k1"})) as client:
        big = await client.wait(await client.start("wf", {"amount": 11}), timeout=30)
        small = await client.wait(await client.start("wf", {"amount": 1}), timeout=30)
    assert big.output == {"amount": 11, "size": "big", "signature": "big-k1"}, big.failure
    assert small.output["signature"] == "small-k1"


async def test_rest_functions_call_the_openapi_operation(running: Runner, stub: HttpStub) -> None:
    document = flow(
        [
            {
                "name": "Fetch",
                "type": "operation",
                "actions": [
                    {
                        "functionRef": {"refName": "getPet", "arguments": {"petId": "${ .petId }"}},
                        "actionDataFilter": {"results": "${ .name }", "toStateData": "${ .petName }"},
                    }
                ],
                "onErrors": [{"errorRef": "NotFound", "transition": "Missing"}],
                "end": True,
            },
            {"name": "Missing", "type": "inject", "data": {"petName": None, "missing": True}, "end": True},
        ],
        functions=[{"name": "getPet", "operation": "https://petstore.swagger.io/v2/swagger.json#getPetById"}],
        errors=[{"name": "NotFound", "code": "404"}],
    )
    async with running(parse_v08(document, "rest")) as client:
        found = await client.wait(await client.start("wf", {"petId": 1}), timeout=30)
        missing = await client.wait(await client.start("wf", {"petId": 99}), timeout=30)
    assert found.output == {"petId": 1, "petName": "Milou"}, found.failure
    assert missing.output == {"petId": 99, "petName": None, "missing": True}, missing.failure
    assert [r.path for r in stub.received("/v2/pet/1")] == ["/v2/pet/1"]


async def test_async_subflows_do_not_hold_the_parent(running: Runner) -> None:
    parent = flow(
        [
            {
                "name": "Fire",
                "type": "operation",
                "actions": [{"subFlowRef": {"workflowId": "waiter", "invoke": "async"}}],
                "end": True,
            }
        ]
    )
    child = {
        "id": "waiter",
        "specVersion": "0.8",
        "states": [{"name": "Wait", "type": "sleep", "duration": "PT1H", "end": True}],
    }
    async with running(parse_v08(parent, "parent"), parse_v08(child, "child")) as client:
        state = await client.wait(await client.start("wf", {"x": 1}, instance_id="p1"), timeout=30)
        kid = await client.get("p1:0000")
    assert state.output == {"x": 1}, state.failure
    assert kid is not None and kid.runtime_status is S.RUNNING


async def test_a_restarted_runtime_replays_the_interpreter(tmp_path: Path, settings: Settings) -> None:
    """Waiting instances survive a restart: the interpreter rebuilds the same state from the history."""
    document = flow(
        [
            {
                "name": "Collect",
                "type": "foreach",
                "inputCollection": "${ .items }",
                "iterationParam": "item",
                "outputCollection": "${ .done }",
                "actions": [{"functionRef": "work"}],
                "transition": "Wait",
            },
            {
                "name": "Wait",
                "type": "event",
                "onEvents": [{"eventRefs": ["Go"], "eventDataFilter": {"toStateData": "${ .go }"}}],
                "end": True,
            },
        ],
        functions=[{"name": "work", "operation": "x#y"}],
        events=[{"name": "Go", "type": "go", "correlation": [{"contextAttributeName": "key"}]}],
    )
    worked = threading.Event()

    def registry() -> turnout.Workflows:
        workflows = turnout.Workflows()

        @workflows.activity(name="work")
        def work(ctx: turnout.ActivityContext, data: dict[str, Any]) -> str:
            worked.set()
            return data["item"].upper()

        register(workflows, parse_v08(document, "replay"), settings=settings)
        return workflows

    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()
        iid = await client.start("wf", {"items": ["a", "b"]})
        for _ in range(1000):  # until the instance has got as far as the event state
            waiting = await client.get(iid)
            if waiting is not None and waiting.custom_status == {"state": "Wait"}:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"the instance never got to the event state: {waiting}")
        assert worked.is_set()
    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()  # a new process, in effect: the instance is replayed from the store
        event = {"specversion": "1.0", "id": "1", "type": "go", "source": "s", "key": "K1", "data": {"n": 1}}
        await client.raise_event(iid, "go", event)
        state = await client.wait(iid, timeout=30)
        history = await client.history(iid)
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.output == {"items": ["a", "b"], "done": ["A", "B"], "go": {"n": 1}}
    assert [e.kind for e in history].count("TaskScheduled") == 2  # the work was not done again


class _FakeContext:
    instance_id = "i-1"
    is_replaying = False

    def new_uuid(self) -> str:
        return "80000000-0000-0000-0000-000000000000"  # the draw in the middle: no jitter offset


def test_retry_delays_grow_by_multiplier_and_increment_up_to_the_cap() -> None:
    document = flow([{"name": "S", "type": "inject", "end": True}])
    interpreter = _Interpreter(
        _FakeContext(), parse_workflow(document, "retry"), turnout.Workflows(), Settings()
    )  # type: ignore[arg-type]
    strategy = RetryDef(
        name="r",
        delay=timedelta(seconds=1),
        multiplier=2,
        increment=timedelta(seconds=1),
        max_delay=timedelta(seconds=10),
        jitter=0.5,
    )
    delays = [interpreter._retry_delay(strategy, attempt).total_seconds() for attempt in range(1, 6)]
    assert delays == [1, 3, 7, 10, 10]


async def test_compensation_runs_in_reverse_order_and_transitions_produce_events(
    running: Runner, stub: HttpStub
) -> None:
    def undo(step: str) -> dict[str, Any]:
        return {
            "name": f"Undo{step}",
            "type": "operation",
            "usedForCompensation": True,
            "actions": [{"functionRef": {"refName": "log", "arguments": {"undo": step}}}],
        }

    document = flow(
        [
            {
                "name": "Book",
                "type": "inject",
                "data": {"booked": True},
                "compensatedBy": "UndoBook",
                "transition": "Pay",
            },
            {
                "name": "Pay",
                "type": "inject",
                "data": {"paid": True},
                "compensatedBy": "UndoPay",
                "transition": {
                    "nextState": "Cancelled",
                    "compensate": True,
                    "produceEvents": [{"eventRef": "Cancelled", "data": "${ {booked, paid} }"}],
                },
            },
            {"name": "Cancelled", "type": "inject", "data": {"cancelled": True}, "end": True},
            undo("Book"),
            undo("Pay"),
        ],
        functions=[{"name": "log", "operation": "x#log"}],
        events=[{"name": "Cancelled", "type": "trip.cancelled", "kind": "produced", "source": "trips"}],
    )
    registry = turnout.Workflows()
    calls: list[Any] = []
    _recording(registry, "log", None, calls)
    mark = len(stub.requests)
    async with running(parse_v08(document, "saga"), workflows=registry) as client:
        state = await client.wait(await client.start("wf", {}), timeout=30)
    assert state.output == {"booked": True, "paid": True, "cancelled": True}, state.failure
    assert calls == [{"undo": "Pay"}, {"undo": "Book"}]  # the most recent first
    sent = [r.body for r in stub.requests[mark:] if r.path == "/events"]
    assert [(e["type"], e["source"], e["data"]) for e in sent] == [
        ("trip.cancelled", "trips", {"booked": True, "paid": True})
    ]


async def test_auto_retries_retry_everything_but_non_retryable_errors(running: Runner) -> None:
    attempts: dict[str, int] = {"flaky": 0, "broken": 0}
    registry = turnout.Workflows()

    @registry.activity(name="flaky")
    def flaky(ctx: turnout.ActivityContext, data: Any) -> dict[str, Any]:
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionError("connection reset")  # in no errors[]: autoRetries retries it
        return {"fetched": True}

    @registry.activity(name="broken")
    def broken(ctx: turnout.ActivityContext, data: Any) -> None:
        attempts["broken"] += 1
        raise ValueError("Bad input")

    document = flow(
        [
            {
                "name": "Fetch",
                "type": "operation",
                "actions": [{"functionRef": "flaky", "retryRef": "fast"}],
                "transition": "Send",
            },
            {
                "name": "Send",
                "type": "operation",
                "actions": [
                    {"functionRef": "broken", "retryRef": "fast", "nonRetryableErrors": ["Bad input"]}
                ],
                "onErrors": [{"errorRefs": ["Bad input"], "transition": "Report"}],
                "end": True,
            },
            {"name": "Report", "type": "inject", "data": {"reported": True}, "end": True},
        ],
        autoRetries=True,
        functions=[{"name": "flaky", "operation": "x#a"}, {"name": "broken", "operation": "x#b"}],
        errors=[{"name": "Bad input"}],
        retries=[{"name": "fast", "delay": "PT0.01S", "maxAttempts": 5}],
    )
    async with running(parse_v08(document, "auto"), workflows=registry) as client:
        state = await client.wait(await client.start("wf", {}), timeout=30)
    assert state.output == {"fetched": True, "reported": True}, state.failure
    assert attempts == {"flaky": 3, "broken": 1}


async def test_a_branch_timeout_fails_the_parallel_state(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Both",
                "type": "parallel",
                "timeouts": {"branchExecTimeout": "PT0.2S"},
                "branches": [
                    {"name": "quick", "actions": [{"functionRef": "mark"}]},
                    {"name": "stuck", "actions": [{"functionRef": "mark", "sleep": {"before": "PT1H"}}]},
                ],
                "end": True,
            }
        ],
        functions=[{"name": "mark", "type": "expression", "operation": "{marked: true}"}],
    )
    async with running(parse_v08(document, "branches")) as client:
        state = await client.wait(await client.start("wf", {}), timeout=30)
    assert state.runtime_status is S.FAILED
    assert state.failure is not None and state.failure.error_type == "BranchExecTimeout"
    assert "branch 'stuck'" in state.failure.message


async def test_workflow_exec_timeout_interrupts_or_waits_for_the_state(running: Runner) -> None:
    def document(interrupt: bool) -> dict[str, Any]:
        return flow(
            [
                {"name": "Nap", "type": "sleep", "duration": "PT0.6S", "transition": "After"},
                {"name": "After", "type": "inject", "data": {"after": True}, "end": True},
            ],
            timeouts={"workflowExecTimeout": {"duration": "PT0.1S", "interrupt": interrupt}},
        )

    for interrupt in (True, False):
        async with running(parse_v08(document(interrupt), "deadline")) as client:
            iid = await client.start("wf", {})
            state = await client.wait(iid, timeout=30)
            fired = [e.kind for e in await client.history(iid)].count("TimerFired")
        assert state.runtime_status is S.FAILED
        assert state.failure is not None and state.failure.error_type == "WorkflowExecTimeout"
        assert state.custom_status == {"state": "Nap"}  # "After" never ran
        assert fired == (1 if interrupt else 2)  # the nap was cut short, or the deadline waited for it


async def test_kogito_custom_rest_functions(running: Runner, stub: HttpStub) -> None:
    document = flow(
        [
            {
                "name": "Ship",
                "type": "operation",
                "actions": [
                    {
                        "functionRef": {"refName": "ship", "arguments": {"id": "${ .id }", "carrier": "ups"}},
                        "actionDataFilter": {"toStateData": "${ .response }"},
                    }
                ],
                "end": True,
            }
        ],
        functions=[
            {"name": "ship", "type": "custom", "operation": "rest:post:http://myorg.io/orders/{id}/ship"}
        ],
    )
    async with running(parse_v08(document, "kogito-rest")) as client:
        state = await client.wait(await client.start("wf", {"id": "A7"}), timeout=30)
    assert state.output == {
        "id": "A7",
        "response": {"method": "POST", "path": "/orders/A7/ship", "body": {"carrier": "ups"}},
    }, state.failure


async def test_a_loop_that_never_waits_fails_instead_of_hanging(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Spin",
                "type": "switch",
                "dataConditions": [{"condition": ".stop", "end": True}],
                "defaultCondition": {"transition": "Spin"},
            }
        ]
    )
    async with running(parse_v08(document, "spin")) as client:
        state = await client.wait(await client.start("wf", {"stop": False}), timeout=60)
    assert state.runtime_status is S.FAILED
    assert state.failure is not None and state.failure.error_type == "WorkflowDefinitionError"
    assert "10000 states in a row ran without waiting" in state.failure.message
