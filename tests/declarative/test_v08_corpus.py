"""Every run case of the Serverless Workflow 0.8 corpus (``slwf-0.8/cases.json``), on the built-in engine
and on Temporal (the interpreter is portable workflow code).

Functions are stubbed by Turnout activities named after them (the corpus's
stub conventions), subflows are the corpus's ``fixture-subflow-*.json``
registered as child workflows, events are CloudEvents sent with
``raise_event(iid, <type>, <event>)``, and emitted events reach the
loopback stub's sink. Long timeouts are shortened in the loaded document
(each place says so); nothing sleeps to wait for a workflow.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout import RuntimeStatus as S
from turnout.declarative import Definition, Settings, register
from turnout.declarative._v08_model import parse_v08

from .conftest import Runner, corpus_dir, on_temporal
from .http_stub import HttpStub

_FOUND = corpus_dir()
SLWF08 = _FOUND / "slwf-0.8" if _FOUND else None
CASES: dict[str, Any] = json.loads((SLWF08 / "cases.json").read_text()) if SLWF08 else {}
COVERED: dict[str, int] = {}  # workflow -> run cases the tests below exercise


@pytest.fixture(params=["built-in", "temporal"])
def running(request: pytest.FixtureRequest, running: Runner, tmp_path: Path, settings: Settings) -> Runner:
    """The conftest's runner (the built-in engine), or the same on a Temporal component."""
    if request.param == "built-in":
        return running
    address = request.getfixturevalue("temporal_address")

    def start(
        *definitions: Definition | str | Path,
        settings_: Settings | None = None,
        workflows: turnout.Workflows | None = None,
    ) -> Any:
        return on_temporal(address, tmp_path, settings_ or settings, *definitions, workflows=workflows)

    return start


def cases_of(workflow: str) -> list[Any]:
    """The run cases of one corpus workflow, as pytest parameters (skipped when the corpus is absent)."""
    found = CASES.get(workflow, {}).get("cases", [])
    COVERED[workflow] = len(found)
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason="the 0.8 corpus is not here"))]
    return [pytest.param(case, id=f"{workflow}-{i}") for i, case in enumerate(found)]


def document(file: str) -> dict[str, Any]:
    """A corpus file as a fresh dict (tests may change it; the corpus is never copied or written)."""
    if SLWF08 is None:
        pytest.skip("the Serverless Workflow 0.8 corpus is not here")
    return json.loads((SLWF08 / file).read_text())


def definition(file: str, change: Callable[[dict[str, Any]], None] | None = None) -> Definition:
    doc = document(file)
    if change is not None:
        change(doc)
    return parse_v08(doc, file)


class Stubs:
    """Function stubs: activities named after the functions, recording each call's arguments."""

    def __init__(self) -> None:
        self.workflows = turnout.Workflows()
        self.calls: dict[str, list[Any]] = defaultdict(list)
        self.called = threading.Event()

    def add(self, name: str, behaviour: Callable[[Any], Any] | Any = None) -> None:
        def stub(ctx: turnout.ActivityContext, arguments: Any) -> Any:
            self.calls[name].append(copy.deepcopy(arguments))
            self.called.set()
            return behaviour(arguments) if callable(behaviour) else copy.deepcopy(behaviour)

        self.workflows.activity(stub, name=name)


def subflows(workflow: str) -> list[Definition]:
    return [definition(file) for file in CASES.get(workflow, {}).get("subflows", [])]


async def finish(client: turnout.AsyncWorkflowClient, iid: str) -> turnout.WorkflowState:
    state = await client.wait(iid, timeout=30)
    return state


def emitted(stub: HttpStub, since: int) -> list[dict[str, Any]]:
    """CloudEvents the sink received after the ``since``-th request."""
    return [r.body for r in stub.requests[since:] if r.path == "/events"]


async def eventually(check: Callable[[], Any], timeout: float = 10) -> Any:
    """Poll ``check`` until it returns something truthy (the engine works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.01)


# -- the corpus cases ------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases_of("helloworld"))
async def test_helloworld(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("helloworld.json")) as client:
        state = await finish(client, await client.start("helloworld", case["input"]))
    assert state.output == case["expected_output"]


@pytest.mark.parametrize("case", cases_of("greeting"))
async def test_greeting(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("greetingFunction", lambda a: {"greeting": f"Welcome to Serverless Workflow, {a['name']}!"})
    async with running(definition("greeting.json"), workflows=stubs.workflows) as client:
        state = await finish(client, await client.start("greeting", case["input"]))
    assert state.output == case["expected_output"], state.failure
    assert stubs.calls["greetingFunction"] == [{"name": "John"}]


@pytest.mark.parametrize("case", cases_of("eventbasedgreeting"))
async def test_eventbasedgreeting(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add(
        "greetingFunction",
        lambda a: {"payload": {"greeting": f"Welcome to Serverless Workflow, {a['name']}!"}},
    )
    async with running(definition("eventbasedgreeting.json"), workflows=stubs.workflows) as client:
        iid = await client.start("eventbasedgreeting", case["input"])  # the start state waits for the event
        for event in case["events"]:
            await client.raise_event(iid, event["type"], event)
        state = await finish(client, iid)
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("solvemathproblems"))
async def test_solvemathproblems(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("solveMathExpressionFunction", lambda a: eval(a["expression"].replace("x", "*")) // 1)
    async with running(definition("solvemathproblems.json"), workflows=stubs.workflows) as client:
        state = await finish(client, await client.start("solvemathproblems", case["input"]))
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("parallelexec"))
async def test_parallelexec_runs_branches_at_once(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("parallelexec.json"), *subflows("parallelexec")) as client:
        began = time.monotonic()
        iid = await client.start("parallelexec", case["input"])
        state = await finish(client, iid)
        took = time.monotonic() - began
        kinds = [e.kind for e in await client.history(iid)]
    assert state.output == case["expected_output"], state.failure
    # Both children start before either ends (the proof of concurrency that load cannot blur);
    # the wall time, ~2 s rather than 3, says the same on a quiet machine. Each engine names
    # the events its own way (Temporal: ChildWorkflowExecutionStarted, ...Completed).
    started = [
        i for i, k in enumerate(kinds) if k in ("ChildWorkflowScheduled", "ChildWorkflowExecutionStarted")
    ]
    ended = [
        i for i, k in enumerate(kinds) if k in ("ChildWorkflowCompleted", "ChildWorkflowExecutionCompleted")
    ]
    assert len(started) == 2 and len(ended) == 2, kinds
    assert min(ended) > max(started), kinds
    low, high = case["expect_duration_s"]
    assert low <= took < high + 1


def _short_event_timeout(doc: dict[str, Any]) -> None:
    doc["states"][0]["eventTimeout"] = "PT0.2S"  # the corpus waits PT1H: shortened, not slept through


@pytest.mark.parametrize("case", cases_of("eventbasedswitchstate"))
async def test_eventbasedswitchstate(running: Runner, case: dict[str, Any]) -> None:
    change = _short_event_timeout if "advance_clock" in case else None
    defs = [definition("eventbasedswitchstate.json", change), *subflows("eventbasedswitchstate")]
    async with running(*defs) as client:
        iid = await client.start("eventbasedswitchstate", case["input"])
        for event in case["events"]:
            await client.raise_event(iid, event["type"], event)
        state = await finish(client, iid)
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("applicantrequest"))
async def test_applicantrequest(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("sendRejectionEmailFunction", {})
    defs = [definition(case["file"]), *subflows("applicantrequest")]
    async with running(*defs, workflows=stubs.workflows) as client:
        state = await finish(client, await client.start("applicantrequest", case["input"]))
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.custom_status == {"state": case["expected_path"]}
    if "expected_output" in case:
        assert state.output == case["expected_output"]
    for name, calls in case.get("expected_calls", {}).items():
        assert stubs.calls[name] == calls
    if case["expected_path"] == "StartApplication":
        assert not stubs.calls["sendRejectionEmailFunction"]


def _provision(arguments: dict[str, Any]) -> Any:
    order = arguments["order"]
    for key, error in (
        ("id", "Missing order id"),
        ("item", "Missing order item"),
        ("quantity", "Missing order quantity"),
    ):
        if not order[key]:
            raise ValueError(error)  # the message names an error of errors[]: that is the match
    return {"exceptions": []}


@pytest.mark.parametrize("case", cases_of("provisionorders"))
async def test_provisionorders(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("provisionOrderFunction", _provision)
    defs = [definition("provisionorders.json"), *subflows("provisionorders")]
    async with running(*defs, workflows=stubs.workflows) as client:
        state = await finish(client, await client.start("provisionorders", case["input"]))
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.custom_status == {"state": case["expected_path"]}
    for key, value in case.get("expected_output_contains", {}).items():
        assert state.output[key] == value


@pytest.mark.parametrize("case", cases_of("sendcloudeventonprovision"))
async def test_sendcloudeventonprovision(running: Runner, stub: HttpStub, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("provisionOrderFunction", lambda a: {"id": a["order"]["id"], "outcome": "SUCCESS"})
    since = len(stub.requests)
    async with running(definition("sendcloudeventonprovision.json"), workflows=stubs.workflows) as client:
        state = await finish(client, await client.start("sendcloudeventonprovision", case["input"]))
    assert state.output == case["expected_output"], state.failure
    events = emitted(stub, since)
    assert len(events) == len(case["expected_produced_events"])
    for event, expected in zip(events, case["expected_produced_events"], strict=True):
        assert {k: event[k] for k in expected} == expected
        assert (
            event["source"] and event["id"] and event["specversion"] == "1.0"
        )  # the engine supplies a source


def _short_state_timeout(doc: dict[str, Any]) -> None:
    doc["states"][0]["timeouts"]["stateExecTimeout"] = "PT0.3S"  # PT15M in the corpus: shortened


@pytest.mark.parametrize("case", cases_of("customercreditcheck"))
async def test_customercreditcheck(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("callCreditCheckMicroservice", {})
    stubs.add("sendRejectionEmailFunction", {})
    change = _short_state_timeout if "advance_clock" in case else None
    defs = [definition(case["file"], change), *subflows("customercreditcheck")]
    async with running(*defs, workflows=stubs.workflows) as client:
        iid = await client.start("customercreditcheck", case["input"])
        assert await asyncio.to_thread(stubs.called.wait, 10)  # the events come after the action
        for event in case["events_after_action"]:
            await client.raise_event(iid, event["type"], event)
        state = await finish(client, iid)
    assert stubs.calls["callCreditCheckMicroservice"] == [{"customer": case["input"]["customer"]}]
    if case.get("expected") == "fault: state exec timeout":
        assert state.runtime_status is S.FAILED
        assert state.failure is not None and state.failure.error_type == "StateExecTimeout"
        assert "stateExecTimeout" in state.failure.message
        return
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.custom_status == {"state": case["expected_path"]}
    for key, value in case.get("expected_output_contains", {}).items():
        assert state.output[key] == value
    for name, calls in case.get("expected_calls", {}).items():
        assert stubs.calls[name] == calls


@pytest.mark.parametrize("case", cases_of("VetAppointmentWorkflow"))
async def test_vet_appointment_never_takes_its_own_trigger(
    running: Runner, stub: HttpStub, case: dict[str, Any]
) -> None:
    since = len(stub.requests)
    async with running(definition("VetAppointmentWorkflow.json")) as client:
        iid = await client.start("VetAppointmentWorkflow", case["input"])
        trigger = await eventually(lambda: emitted(stub, since))
        assert trigger, "the trigger event was not emitted"
        for produced, expected in zip(trigger, case["expected_produced_events"], strict=True):
            assert {k: produced[k] for k in expected} == expected
        # A bus that echoes the trigger back (same type and source) must not complete the action.
        await client.raise_event(iid, trigger[0]["type"], trigger[0])
        await client.raise_event(iid, case["reply_event"]["type"], case["reply_event"])
        state = await finish(client, iid)
    assert state.output == case["expected_output"], state.failure


def _quick_retries(doc: dict[str, Any]) -> None:
    doc["retries"][0]["delay"] = "PT0.05S"  # PT3S in the corpus: scaled down


class ServiceNotAvailable(Exception):
    """The error the stub raises; its type name is the name of errors[0]."""


@pytest.mark.parametrize("case", cases_of("patientonboarding"))
async def test_patientonboarding(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    always = "always fail" in case["stub_behaviour"]["StorePatient"]

    def store(arguments: Any) -> Any:
        if always or len(stubs.calls["StorePatient"]) <= 2:
            raise ServiceNotAvailable("503 Service Not Available")
        return {"stored": True}

    stubs.add("StorePatient", store)
    stubs.add("AssignDoctor", {"doctor": "Dr. A"})
    stubs.add("ScheduleAppt", {"appointment": "tomorrow"})
    async with running(definition(case["file"], _quick_retries), workflows=stubs.workflows) as client:
        iid = await client.start("patientonboarding", case["input"])
        for event in case["events"]:
            await client.raise_event(iid, event["type"], event)
        state = await finish(client, iid)
        history = await client.history(iid)
    assert state.runtime_status is S.COMPLETED, state.failure  # onErrors -> end: not faulted
    timers = [e for e in history if e.kind in ("TimerCreated", "TimerStarted")]  # built-in, Temporal
    if always:
        assert len(stubs.calls["StorePatient"]) == 10  # maxAttempts
        assert len(timers) == 9  # a durable timer between attempts
        assert not stubs.calls["AssignDoctor"]
    else:
        assert len(stubs.calls["StorePatient"]) == 3
        assert len(timers) == 2
        assert state.output == case["expected_output"]


@pytest.mark.parametrize("case", cases_of("fillglassofwater"))
async def test_fillglassofwater(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("fillglassofwater.json")) as client:
        iid = await client.start("fillglassofwater", case["input"])
        state = await finish(client, iid)
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("customerbankingtransactions"))
async def test_customerbankingtransactions(running: Runner, case: dict[str, Any]) -> None:
    stubs = Stubs()
    stubs.add("Banking Service - Larger Tx", None)
    stubs.add("Banking Service - Smaller Tx", None)
    async with running(definition(case["file"]), workflows=stubs.workflows) as client:
        state = await finish(client, await client.start("customerbankingtransactions", case["input"]))
    assert state.output == case["expected_output"], state.failure
    assert {name: len(stubs.calls[name]) for name in case["expected_calls_count"]} == case[
        "expected_calls_count"
    ]


def _short_exec_timeout(doc: dict[str, Any]) -> None:
    doc["timeouts"]["workflowExecTimeout"]["duration"] = "PT0.5S"  # PT30D in the corpus: shortened


@pytest.mark.parametrize("case", cases_of("order"))
async def test_order(running: Runner, stub: HttpStub, case: dict[str, Any]) -> None:
    stubs = Stubs()
    for name in ("LogNewOrderCreated", "LogOrderConfirmed", "LogOrderShipped", "CancelOrder"):
        stubs.add(name, {})
    times_out = "advance_clock" in case
    mark = len(stub.requests)
    async with running(
        definition("order.json", _short_exec_timeout if times_out else None), workflows=stubs.workflows
    ) as client:
        iid = await client.start("order", case["input"])
        events = list(case["events"])
        if not times_out:
            # Another order's confirmation comes first, and the shipment before the confirmation:
            # the first must never advance this instance, the second waits for its state.
            stranger = {**events[1], "id": "o9", "orderid": "ORD-9", "data": {"confirmed": "ORD-9"}}
            events = [events[0], stranger, events[2], events[1]]
        for event in events:
            await client.raise_event(iid, event["type"], event)
        state = await finish(client, iid)
    produced = emitted(stub, mark)
    if times_out:
        assert state.runtime_status is S.FAILED
        assert state.failure is not None and state.failure.error_type == "WorkflowExecTimeout"
        assert "CancelOrder" in state.failure.message
        assert stubs.calls["CancelOrder"] == [{}]
        assert [e["type"] for e in produced] == ["my.company.orders"]  # OrderCancelledEvent
        assert not stubs.calls["LogOrderConfirmed"]
        return
    assert state.output == case["expected_output"], state.failure
    assert [e["type"] for e in produced] == [e["type"] for e in case["expected_produced_events"]]
    assert not stubs.calls["CancelOrder"]


@pytest.mark.parametrize("case", cases_of("kogito-expression"))
async def test_kogito_expression(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("kogito-expression.json")) as client:
        state = await finish(client, await client.start("expression", case["input"]))
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("kogito-foreach"))
async def test_kogito_foreach(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("kogito-foreach.json")) as client:
        state = await finish(client, await client.start("foreach", case["input"]))
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("kogito-parallel"))
async def test_kogito_parallel(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("kogito-parallel.json")) as client:
        state = await finish(client, await client.start("parallel", case["input"]))
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("case", cases_of("kogito-compensation"))
async def test_kogito_compensation(running: Runner, case: dict[str, Any]) -> None:
    async with running(definition("kogito-compensation.json")) as client:
        state = await finish(client, await client.start("compensation", case["input"]))
    assert state.output == case["expected_output"], state.failure


@pytest.mark.parametrize("file", ["jobmonitoring.json", "jobmonitoring.patched.json"])
def test_jobmonitoring_parses_and_validates(file: str) -> None:
    assert CASES.get("jobmonitoring", {}).get("parse_only", True)
    loaded = definition(file)
    assert loaded.dialect == "0.8" and loaded.name == "jobmonitoring"


def test_every_run_case_of_the_corpus_is_exercised() -> None:
    if not CASES:
        pytest.skip("the Serverless Workflow 0.8 corpus is not here")
    expected = {name: len(entry["cases"]) for name, entry in CASES.items() if entry["cases"]}
    assert {name: COVERED.get(name) for name in expected} == expected
    assert sum(expected.values()) == 30


async def test_order_survives_a_restart_between_its_events(tmp_path: Path, settings: Settings) -> None:
    """The event inbox (kept events, correlation) is rebuilt by replay in a new runtime."""
    case = CASES.get("order", {}).get("cases", [None])[0]
    if case is None:
        pytest.skip("the Serverless Workflow 0.8 corpus is not here")
    events = case["events"]

    def registry() -> turnout.Workflows:
        stubs = Stubs()
        for name in ("LogNewOrderCreated", "LogOrderConfirmed", "LogOrderShipped", "CancelOrder"):
            stubs.add(name, {})
        register(stubs.workflows, definition("order.json"), settings=settings)
        return stubs.workflows

    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()
        iid = await client.start("order", case["input"])
        await client.raise_event(iid, events[0]["type"], events[0])  # binds orderid ORD-1
        await client.raise_event(iid, events[2]["type"], events[2])  # shipped, early: kept for later
        for _ in range(1000):  # until the instance waits for the confirmation
            current = await client.get(iid)
            if current is not None and current.custom_status == {"state": "WaitForOrderConfirmation"}:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"the order never got to WaitForOrderConfirmation: {current}")
    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()
        stranger = {**events[1], "id": "o9", "orderid": "ORD-9", "data": {"confirmed": "ORD-9"}}
        await client.raise_event(iid, stranger["type"], stranger)  # another order's: dropped
        await client.raise_event(iid, events[1]["type"], events[1])
        state = await finish(client, iid)
    assert state.output == case["expected_output"], state.failure
