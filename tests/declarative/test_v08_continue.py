"""0.8 instance lifetime: what ``end.continueAs`` carries over, ``keepActive`` and ``workflowExecTimeout``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import turnout
from turnout import RuntimeStatus as S
from turnout.declarative._v08_model import parse_v08

from .conftest import Runner


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


def event(type_: str, **attributes: Any) -> dict[str, Any]:
    """A CloudEvent of ``type_`` whose data names it."""
    return {
        "specversion": "1.0",
        "id": f"{type_}-1",
        "source": "test",
        "type": type_,
        "data": {"seen": [type_]},
        **attributes,
    }


async def until_status(client: turnout.AsyncWorkflowClient, iid: str, wanted: Any) -> turnout.WorkflowState:
    """Poll until the instance shows ``wanted`` as its custom status (a condition, with a bound)."""
    state = None
    for _ in range(1000):
        state = await client.get(iid)
        if state is not None and state.custom_status == wanted:
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"the instance never showed {wanted}: {state}")


async def test_continue_as_carries_events_received_but_not_consumed(running: Runner) -> None:
    """Both events reach the event state at once; it takes one, continueAs must carry the other."""
    document = flow(
        [
            {
                "name": "Hold",
                "type": "operation",
                "actions": [{"functionRef": "hold"}],
                "transition": "Wait",
            },
            {
                "name": "Wait",
                "type": "event",
                "exclusive": True,
                "onEvents": [{"eventRefs": ["A", "B"]}],
                "transition": "Again",
            },
            {
                "name": "Again",
                "type": "switch",
                "dataConditions": [
                    {
                        "condition": "${ .round == 0 }",
                        "end": {"continueAs": {"workflowId": "wf", "data": "${ {round: 1, seen} }"}},
                    }
                ],
                "defaultCondition": {"end": True},
            },
        ],
        functions=[{"name": "hold", "operation": "x#hold"}],
        events=[
            {"name": "A", "type": "a", "correlation": [{"contextAttributeName": "order"}]},
            {"name": "B", "type": "b", "correlation": [{"contextAttributeName": "order"}]},
        ],
    )
    released = threading.Event()
    workflows = turnout.Workflows()

    @workflows.activity(name="hold")
    def hold(ctx: turnout.ActivityContext, data: Any) -> None:
        released.wait(10)  # until both events are in the instance's inbox

    async with running(parse_v08(document, "carry"), workflows=workflows) as client:
        iid = await client.start("wf", {"round": 0, "seen": []})
        await client.raise_event(iid, "a", event("a", order="O-1"))
        await client.raise_event(iid, "b", event("b", order="O-1"))
        released.set()
        state = await client.wait(iid, timeout=30)
    assert state.runtime_status is S.COMPLETED, state.failure
    assert sorted(state.output["seen"]) == ["a", "b"]  # one event per run: none was lost
    assert state.output["round"] == 1
    carried = state.input["$turnout.continueAs"]  # what the second run was given
    assert carried["correlation"] == {"order": "O-1"}
    assert [e["type"] for e in carried["events"]] in (["a"], ["b"])


async def test_continue_as_with_nothing_to_carry_keeps_the_input_plain(running: Runner) -> None:
    document = flow(
        [
            {
                "name": "Again",
                "type": "switch",
                "dataConditions": [
                    {
                        "condition": "${ .round == 0 }",
                        "end": {"continueAs": {"workflowId": "wf", "data": "${ {round: 1} }"}},
                    }
                ],
                "defaultCondition": {"end": True},
            }
        ]
    )
    async with running(parse_v08(document, "plain")) as client:
        state = await client.wait(await client.start("wf", {"round": 0}), timeout=30)
    assert (state.input, state.output) == ({"round": 1}, {"round": 1})


def kept(**timeouts: Any) -> dict[str, Any]:
    """A keepActive workflow that ends its only path at once (or terminates it, with ``{"stop": true}``)."""
    return flow(
        [
            {"name": "Note", "type": "inject", "data": {"noted": True}, "transition": "Route"},
            {
                "name": "Route",
                "type": "switch",
                "dataConditions": [{"condition": "${ .stop == true }", "end": {"terminate": True}}],
                "defaultCondition": {"end": True},
            },
            {"name": "Wrap", "type": "inject", "data": {"wrapped": True}, "end": True},
        ],
        keepActive=True,
        **({"timeouts": timeouts} if timeouts else {}),
    )


async def test_keep_active_lives_on_until_the_workflow_exec_timeout(running: Runner) -> None:
    document = kept(workflowExecTimeout={"duration": "PT0.3S", "runBefore": "Wrap"})
    async with running(parse_v08(document, "kept")) as client:
        iid = await client.start("wf", {})
        alive = await until_status(client, iid, {"state": "Route", "keepActive": True})
        assert alive.runtime_status is S.RUNNING  # its path has ended, the instance has not
        state = await client.wait(iid, timeout=30)
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.output == {"noted": True, "wrapped": True}  # runBefore ran at the timeout


async def test_keep_active_ends_at_a_terminate_end(running: Runner) -> None:
    async with running(parse_v08(kept(), "kept")) as client:
        state = await client.wait(await client.start("wf", {"stop": True}), timeout=30)
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.output == {"stop": True, "noted": True}


async def test_keep_active_without_a_timeout_waits_for_terminate(running: Runner) -> None:
    async with running(parse_v08(kept(), "kept")) as client:
        iid = await client.start("wf", {})
        await until_status(client, iid, {"state": "Route", "keepActive": True})
        await client.terminate(iid, "enough")
        state = await client.wait(iid, timeout=30)
    assert state.runtime_status is S.TERMINATED


async def test_without_keep_active_an_end_completes_the_instance(running: Runner) -> None:
    document = {**kept(), "keepActive": False}
    async with running(parse_v08(document, "not-kept")) as client:
        state = await client.wait(await client.start("wf", {}), timeout=30)
    assert (state.runtime_status, state.output) == (S.COMPLETED, {"noted": True})
