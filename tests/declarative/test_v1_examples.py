"""The spec's 1.0 examples: every one loads and validates; those that can run here do, against the stub.

Long waits and retry delays are shortened in memory (the corpus files are
never copied or changed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import turnout
from turnout.declarative import Definition, load_definition

from .conftest import Runner, corpus_dir, fault_of
from .http_stub import HttpStub

_FOUND = corpus_dir()
EXAMPLES = (
    sorted(p.stem for p in (_FOUND / "slwf-1.0").glob("example-*.yaml")) if _FOUND else ["corpus-absent"]
)
S = turnout.RuntimeStatus


def patched(path: Path, change: Any) -> Definition:
    """The definition at ``path`` with ``change(document)`` applied in memory."""
    document = yaml.safe_load(path.read_text())
    change(document)
    return load_definition(yaml.safe_dump(document, sort_keys=False), source=f"{path} (patched)")


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_loads_and_validates(name: str, slwf10: Path) -> None:
    definition = load_definition(slwf10 / f"{name}.yaml")
    assert definition.dialect == "1.0"
    assert definition.source == str(slwf10 / f"{name}.yaml")
    assert definition.name == definition.document["document"]["name"]


async def test_do_single_and_multiple(slwf10: Path, run: Runner) -> None:
    single = await run(slwf10 / "example-do-single.yaml", {"petId": 1})
    assert single.output == {"id": 1, "name": "Milou", "status": "available"}
    multiple = await run(slwf10 / "example-do-multiple.yaml", {"petId": 2})
    # buyPet's input is getPet's output, which has no petId: its URI template fills {petId} with
    # nothing, as RFC 6570 says (the example assumes otherwise). The body is the pet, sold.
    assert multiple.output == {
        "method": "PUT",
        "path": "/v2/pet/",
        "body": {"id": 2, "name": "Rantanplan", "status": "sold"},
    }


async def test_set_reads_the_raw_workflow_input(slwf10: Path, run: Runner) -> None:
    state = await run(
        slwf10 / "example-set.yaml", [{"type": "io.serverlessworkflow.samples.events.trigger.v1"}]
    )
    assert state.output == {"startEvent": {"type": "io.serverlessworkflow.samples.events.trigger.v1"}}


async def test_fork_compete_takes_the_first_branch_to_finish(slwf10: Path, run: Runner) -> None:
    state = await run(
        slwf10 / "example-fork.yaml", {"patient": {"fullName": "Ann Lee"}, "room": {"number": 7}}
    )
    assert state.runtime_status is S.COMPLETED
    assert state.output["path"] in ("/api/v3/alert/nurses", "/api/v3/alert/doctor")
    assert state.output["body"] == {"patientId": "Ann Lee", "room": 7}


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"orderType": "electronic"}, {"validate": True, "status": "fulfilled"}),
        ({"orderType": "physical"}, {"inventory": "clear", "items": 1, "address": "Elmer St"}),
        ({"orderType": "drone"}, {"log": "warn", "message": "something's wrong"}),
    ],
)
async def test_switch_then_string(slwf10: Path, run: Runner, order: dict[str, Any], expected: Any) -> None:
    state = await run(slwf10 / "example-switch-then-string.yaml", order)
    assert state.output == expected


async def test_raise_inline_uses_workflow_descriptor(slwf10: Path, run: Runner) -> None:
    state = await run(slwf10 / "example-raise-inline.yaml", {})
    assert (
        state.failure is not None
        and state.failure.error_type == "https://serverlessworkflow.io/errors/not-implemented"
    )
    assert fault_of(state) == {
        "type": "https://serverlessworkflow.io/errors/not-implemented",
        "status": 500,
        "title": "Not Implemented",
        "detail": "The workflow 'raise-not-implemented:0.1.0' is a work in progress and cannot be run yet",
        "instance": "/do/0/notImplemented",
    }


async def test_try_catch_passes_the_input_through(slwf10: Path, run: Runner) -> None:
    state = await run(slwf10 / "example-try-catch.yaml", {"petId": 99})
    assert state.runtime_status is S.COMPLETED
    assert state.output == {"petId": 99}


def _fast_retry(document: dict[str, Any]) -> None:
    document["do"][0]["tryGetPet"]["catch"]["retry"]["delay"] = {"milliseconds": 5}


async def test_try_catch_retry_recovers(slwf10: Path, run: Runner, stub: HttpStub, running: Runner) -> None:
    definition = patched(slwf10 / "example-try-catch-retry-inline.yaml", _fast_retry)
    stub.fail_next("/v2/pet/3", 503, 503, 503)
    async with running(definition) as client:
        iid = await client.start(definition.name, input={"petId": 3})
        state = await client.wait(iid, timeout=30)
        history = await client.history(iid)
    assert state.output == {"id": 3, "name": "Idefix", "status": "sold"}
    assert len(stub.received("/v2/pet/3")) >= 4
    assert [e.kind for e in history].count("TimerCreated") == 3  # durable waits between attempts


async def test_try_catch_retry_gives_up_after_the_limit(slwf10: Path, run: Runner, stub: HttpStub) -> None:
    definition = patched(slwf10 / "example-try-catch-retry-inline.yaml", _fast_retry)
    stub.fail_next("/v2/pet/2", *([503] * 6))
    state = await run(definition, {"petId": 2})
    fault = fault_of(state)
    assert fault["status"] == 503
    assert fault["instance"] == "/do/0/tryGetPet/try/0/getPet"
    stub.failures.pop("/v2/pet/2", None)


@pytest.mark.parametrize(
    ("name", "wait"),
    [("example-wait-duration-inline", {"milliseconds": 20}), ("example-wait-duration-iso8601", "PT0.02S")],
)
async def test_wait_is_a_durable_timer(slwf10: Path, running: Runner, name: str, wait: Any) -> None:
    definition = patched(slwf10 / f"{name}.yaml", lambda d: d["do"][0]["wait30Seconds"].update(wait=wait))
    async with running(definition) as client:
        iid = await client.start(definition.name, input={"keep": "me"})
        state = await client.wait(iid, timeout=30)
        kinds = [e.kind for e in await client.history(iid)]
    assert state.output == {"keep": "me"}
    assert "TimerCreated" in kinds and "TimerFired" in kinds


async def test_emit_posts_a_cloudevent_to_the_sinks(slwf10: Path, run: Runner, stub: HttpStub) -> None:
    before = len(stub.received("/events"))
    state = await run(slwf10 / "example-emit.yaml", {})
    event = state.output
    assert event["specversion"] == "1.0" and event["type"] == "com.petstore.order.placed.v1"
    assert event["source"] == "https://petstore.com"
    assert event["data"]["items"] == [{"breed": "dalmatian", "quantity": 101}]
    assert event["id"] and event["time"].endswith("Z")
    delivered = stub.received("/events")[before:]
    assert [r.body for r in delivered] == [event]
    assert delivered[0].headers["Content-Type"] == "application/cloudevents+json"


def _cloudevent(event_type: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": json.dumps(data),
        "source": "tests",
        "type": event_type,
        "data": data,
        **extra,
    }


async def test_listen_to_one_then_call(slwf10: Path, running: Runner, stub: HttpStub) -> None:
    started = "com.virtual-wf-powered-race.events.race.started.v1"
    async with running(slwf10 / "example-listen-to-one.yaml") as client:
        iid = await client.start("listen-to-one", input={})
        await client.raise_event(iid, "com.example.unrelated", {"ignored": True})
        await client.raise_event(iid, started, _cloudevent(started, {"carId": 42}))
        state = await client.wait(iid, timeout=30)
    assert state.output == {"method": "POST", "path": "/api/v4/cars/42/start", "body": None}


async def test_listen_to_all_drops_events_that_do_not_match(slwf10: Path, running: Runner) -> None:
    temperature = "com.fake-hospital.vitals.measurements.temperature"
    bpm = "com.fake-hospital.vitals.measurements.bpm"
    async with running(slwf10 / "example-listen-to-all.yaml") as client:
        iid = await client.start("listen-to-all", input={})
        await client.raise_event(
            iid, temperature, _cloudevent(temperature, {"temperature": 37})
        )  # no fever: dropped
        await client.raise_event(iid, bpm, _cloudevent(bpm, {"bpm": 120}))
        await client.raise_event(iid, temperature, _cloudevent(temperature, {"temperature": 39.5}))
        state = await client.wait(iid, timeout=30)
    assert state.output == [{"temperature": 39.5}, {"bpm": 120}]


async def test_conditional_task(slwf10: Path, run: Runner) -> None:
    minor = await run(slwf10 / "example-conditional-task.yaml", {"customer": {"age": 16}, "bet": 10})
    assert fault_of(minor)["title"] == "Access Forbidden"
    adult = await run(slwf10 / "example-conditional-task.yaml", {"customer": {"age": 30}, "bet": 10})
    assert adult.output["path"] == "/api/bet/on/football"
    assert adult.output["body"] == {"customer": ".customer", "bet": ".bet"}  # plain strings: not expressions


REGISTER_CUSTOMER = """
document: {dsl: '1.0.3', namespace: test, name: register-customer, version: '0.1.0'}
do:
  - register:
      set:
        registered: ${ .customer }
"""


async def test_run_subflow_is_a_child_workflow(slwf10: Path, running: Runner) -> None:
    async with running(slwf10 / "example-run-subflow.yaml", REGISTER_CUSTOMER) as client:
        iid = await client.start("run-subflow", input={"user": {"name": "Ann"}}, instance_id="parent-1")
        state = await client.wait(iid, timeout=30)
        child = await client.get("parent-1:0000")
    # `input: {customer: .user}` is a literal string, not an expression (strict mode): the child
    # gets it as written.
    assert child is not None and child.workflow_name == "register-customer"
    assert child.input == {"customer": ".user"}
    assert state.output == {"registered": ".user"}


async def test_star_wars_homeworld_uses_export_and_context(slwf10: Path, run: Runner) -> None:
    state = await run(slwf10 / "example-star-wars-homeworld.yaml", {"id": 1})
    assert state.output == {"name": "Tatooine", "climate": "arid"}


async def test_star_wars_input_schema_refuses_a_bad_id(slwf10: Path, run: Runner, stub: HttpStub) -> None:
    before = len(stub.requests)
    fault = fault_of(await run(slwf10 / "example-star-wars-homeworld.yaml", {"id": 0}))
    assert fault["type"] == "https://serverlessworkflow.io/spec/1.0.0/errors/validation"
    assert (fault["status"], fault["instance"]) == (400, "/input/schema")
    assert fault["detail"] == "/id: 0 is less than the minimum of 1"
    assert len(stub.requests) == before  # refused before any call
