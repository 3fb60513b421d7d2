"""workflow.aws.stepfunctions against moto's server: every management call, through the runtime."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from turnout import (
    ComponentError,
    Feature,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    RuntimeStatus,
    Unsupported,
    WorkflowNotRegistered,
)

from .conftest import (
    ROLE,
    MotoServer,
    callback_task,
    deployed,
    finish,
    open_client,
    unique,
    until_scheduled,
    write_definitions,
)

ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
SLEEP = {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def approval(queue: str) -> dict[str, Any]:
    """Waits in 'approve'; a Rejected failure is caught and routed."""
    return {
        "StartAt": "approve",
        "States": {
            "approve": callback_task(
                queue,
                ResultPath="$.decision",
                Catch=[{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejection", "Next": "rejected"}],
                Next="done",
            ),
            "done": {"Type": "Succeed"},
            "rejected": {"Type": "Pass", "Result": "rejected", "ResultPath": "$.outcome", "End": True},
        },
    }


# -- start-up: definitions, stateMachines, the account ------------------------------------


async def test_definitions_are_created_then_updated(
    moto_server: MotoServer, sfn: Any, tmp_path: Path
) -> None:
    name = unique("deploy")
    async with deployed(moto_server, tmp_path, {name: ECHO}) as client:
        arn = client.component.machines[name].arn
        iid = await client.start(name, {"v": 1})
        assert (await finish(client, iid, RuntimeStatus.COMPLETED)).output == {"v": 1}
    changed = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "Result": "v2", "End": True}}}
    async with deployed(moto_server, tmp_path, {name: changed}) as client:
        assert client.component.machines[name].arn == arn  # updated in place, not created again
        iid = await client.start(name, {"v": 1})
        assert (await finish(client, iid, RuntimeStatus.COMPLETED)).output == "v2"
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == changed


async def test_invalid_definition_is_refused_at_start_up(moto_server: MotoServer, tmp_path: Path) -> None:
    broken = {"StartAt": "Nowhere", "States": {"P": {"Type": "NoSuchType", "End": True}}}
    with pytest.raises(ComponentError) as caught:
        async with deployed(moto_server, tmp_path, {unique("broken"): broken}):
            pass
    assert "Step Functions refused the definition" in caught.value.reason
    assert caught.value.field == "spec.metadata.definitions"
    assert caught.value.component == "sfn"


async def test_state_machines_by_arn(moto_server: MotoServer, sfn: Any, tmp_path: Path) -> None:
    arn = sfn.create_state_machine(name=unique("mapped"), definition=json.dumps(ECHO), roleArn=ROLE)[
        "stateMachineArn"
    ]
    async with open_client(tmp_path, moto_server.metadata(stateMachines={"orders": arn})) as client:
        iid = await client.start("orders", [1, 2])
        state = await finish(client, iid, RuntimeStatus.COMPLETED)
        assert (state.workflow_name, state.output) == ("orders", [1, 2])
        assert state.properties["stateMachineArn"] == arn
        with pytest.raises(WorkflowNotRegistered) as caught:
            await client.start("other")
        assert "serves only the workflows of its stateMachines and definitions" in str(caught.value)
        assert caught.value.registered == ["orders"]


async def test_missing_state_machine_is_refused_at_start_up(moto_server: MotoServer, tmp_path: Path) -> None:
    missing = f"arn:aws:states:us-east-1:123456789012:stateMachine:{unique('missing')}"
    with pytest.raises(ComponentError) as caught:
        async with open_client(tmp_path, moto_server.metadata(stateMachines={"orders": missing})):
            pass
    assert caught.value.field == "spec.metadata.stateMachines.orders"
    assert f"no state machine {missing}" in caught.value.reason


async def test_without_configuration_every_state_machine_is_a_workflow(
    moto_server: MotoServer, sfn: Any, tmp_path: Path
) -> None:
    """No stateMachines, no definitions: workflows are found by name, even ones created later."""
    async with open_client(tmp_path, moto_server.metadata()) as client:
        name = unique("byname")
        arn = sfn.create_state_machine(name=name, definition=json.dumps(ECHO), roleArn=ROLE)[
            "stateMachineArn"
        ]
        iid = await client.start(name, "hi")
        assert (await finish(client, iid, RuntimeStatus.COMPLETED)).workflow_name == name

        outside = sfn.start_execution(stateMachineArn=arn, name=unique("outside"), input="3")
        state = await client.wait(outside["executionArn"].rsplit(":", 1)[1], timeout=20)
        assert (state.workflow_name, state.output) == (name, 3)

        with pytest.raises(WorkflowNotRegistered, match="no Standard state machine named 'nope-"):
            await client.start(unique("nope"))
        with pytest.raises(InvalidArgument, match="the name of a state machine"):
            await client.start("not a name")


# -- start and get ---------------------------------------------------------------------------


async def test_same_id_and_input_while_running_is_idempotent(moto_server: MotoServer, tmp_path: Path) -> None:
    sleep, echo = unique("sleep"), unique("echo")
    async with deployed(moto_server, tmp_path, {sleep: SLEEP, echo: ECHO}) as client:
        iid = unique("id")
        assert await client.start(sleep, {"n": 1}, instance_id=iid) == iid
        assert await client.start(sleep, {"n": 1}, instance_id=iid) == iid  # the same execution
        with pytest.raises(InstanceExists) as caught:
            await client.start(sleep, {"n": 2}, instance_id=iid)
        assert caught.value.status == "RUNNING"
        with pytest.raises(InstanceExists):  # another state machine: still this component's id
            await client.start(echo, {"n": 1}, instance_id=iid)
        await client.terminate(iid)
        await finish(client, iid, RuntimeStatus.TERMINATED)
        with pytest.raises(InstanceExists) as caught:
            await client.start(sleep, {"n": 1}, instance_id=iid)
        assert caught.value.status == "TERMINATED"


async def test_bad_input_is_refused_before_aws(moto_server: MotoServer, tmp_path: Path) -> None:
    echo = unique("echo")
    async with deployed(moto_server, tmp_path, {echo: ECHO}) as client:
        with pytest.raises(InvalidArgument, match="at most 262144 bytes of JSON"):
            await client.start(echo, "x" * 300_000)


async def test_failure_and_timeout(moto_server: MotoServer, tmp_path: Path) -> None:
    fail, slow = unique("fail"), unique("slow")
    definitions = {
        fail: {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Broken", "Cause": "on purpose"}}},
        slow: {
            "TimeoutSeconds": 1,
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}},
        },
    }
    async with deployed(moto_server, tmp_path, definitions) as client:
        failed, timed_out = await client.start(fail), await client.start(slow)
        state = await finish(client, failed, RuntimeStatus.FAILED)
        assert (state.failure.error_type, state.failure.message) == ("Broken", "on purpose")
        state = await finish(client, timed_out, RuntimeStatus.FAILED)
        assert state.failure.error_type == "States.Timeout"
        assert state.properties["status"] == "TIMED_OUT"


async def test_terminate_and_history(moto_server: MotoServer, tmp_path: Path) -> None:
    sleep = unique("sleep")
    async with deployed(moto_server, tmp_path, {sleep: SLEEP}) as client:
        iid = await client.start(sleep, {"n": 1})
        await client.wait(iid, until=[RuntimeStatus.RUNNING], timeout=20)
        await client.terminate(iid, "no longer needed")
        state = await finish(client, iid, RuntimeStatus.TERMINATED)
        assert state.failure is None and state.properties["status"] == "ABORTED"
        await client.terminate(iid, "again")  # finished: nothing happens
        events = await client.history(iid)
        assert [e.kind for e in events] == ["ExecutionStarted", "WaitStateEntered", "ExecutionAborted"]
        assert events[1].name == "Sleep"
        assert events[0].data["input"] == {"n": 1}
        with pytest.raises(InvalidArgument, match="at most 32768 characters"):
            await client.terminate(iid, "x" * 40_000)
        for call in (client.terminate, client.history):
            with pytest.raises(InstanceNotFound):
                await call(unique("unknown"))


# -- raise_event --------------------------------------------------------------------------


async def test_raise_event_success_and_failure(
    moto_server: MotoServer, queue_url: str, tmp_path: Path
) -> None:
    flow = unique("approval")
    async with deployed(moto_server, tmp_path, {flow: approval(queue_url)}) as client:
        approved, rejected = await client.start(flow, {"order": 1}), await client.start(flow, {"order": 2})
        await client.raise_event(approved, "approve", {"ok": True})  # waits until the task is waiting
        await client.raise_event(rejected, "approve.failure", {"error": "Rejected", "cause": "too dear"})
        state = await finish(client, approved, RuntimeStatus.COMPLETED)
        assert state.output == {"order": 1, "decision": {"ok": True}}
        state = await finish(client, rejected, RuntimeStatus.COMPLETED)
        assert state.output["outcome"] == "rejected"
        assert state.output["rejection"]["Error"] == "Rejected"
        await client.raise_event(approved, "approve", "late")  # finished: dropped, as Dapr does


async def test_uncaught_failure_event_fails_the_execution(
    moto_server: MotoServer, queue_url: str, tmp_path: Path
) -> None:
    flow = unique("strict")
    definition = {"StartAt": "approve", "States": {"approve": callback_task(queue_url, End=True)}}
    async with deployed(moto_server, tmp_path, {flow: definition}) as client:
        iid = await client.start(flow)
        await client.raise_event(iid, "approve.failure", "no budget")
        state = await finish(client, iid, RuntimeStatus.FAILED)
        assert state.failure.error_type == "Rejected"


async def test_no_waiting_task_is_invalid_state(
    moto_server: MotoServer, queue_url: str, tmp_path: Path
) -> None:
    flow = unique("waits")
    no_token = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"secret.$": "$$.Task.Token"}},
        "End": True,
    }
    definitions = {
        flow: {"StartAt": "approve", "States": {"approve": callback_task(queue_url, End=True)}},
        f"{flow}-hidden": {"StartAt": "hidden", "States": {"hidden": no_token}},
    }
    async with deployed(moto_server, tmp_path, definitions, raiseEventTimeout="0.3") as client:
        iid = await client.start(flow)
        await until_scheduled(client, iid)  # so that the message can name the waiting state
        with pytest.raises(InvalidState) as caught:
            await client.raise_event(iid, "someone-else", 1)
        assert "no .waitForTaskToken task state named 'someone-else'" in str(caught.value)
        assert "waiting now: 'approve'" in str(caught.value)
        hidden = await client.start(f"{flow}-hidden")
        await until_scheduled(client, hidden)
        with pytest.raises(InvalidState, match="passes it under no key named tasktoken or token"):
            await client.raise_event(hidden, "hidden", 1)
        with pytest.raises(InstanceNotFound):
            await client.raise_event(unique("unknown"), "approve", 1)
        for stuck in (iid, hidden):
            await client.terminate(stuck)


async def test_events_reach_map_iterations_first_come_first_served(
    moto_server: MotoServer, queue_url: str, tmp_path: Path
) -> None:
    flow = unique("map")
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "review",
                    "States": {"review": callback_task(queue_url, End=True)},
                },
                "End": True,
            }
        },
    }
    async with deployed(moto_server, tmp_path, {flow: definition}) as client:
        iid = await client.start(flow, {"items": ["a", "b", "c"]})
        for answer in ("first", "second", "third"):
            await client.raise_event(iid, "review", answer)
        state = await finish(client, iid, RuntimeStatus.COMPLETED)
        assert state.output == ["first", "second", "third"]


# -- list ---------------------------------------------------------------------------------


async def test_list_filters_and_pages_across_state_machines(moto_server: MotoServer, tmp_path: Path) -> None:
    echo, sleep = unique("echo"), unique("sleep")
    async with deployed(moto_server, tmp_path, {echo: ECHO, sleep: SLEEP}) as client:
        before = datetime.now(UTC) - timedelta(seconds=1)
        done = []
        for n in range(4):
            done.append(await client.start(echo, n))
            await finish(client, done[-1], RuntimeStatus.COMPLETED)
        sleeping = await client.start(sleep)
        await client.wait(sleeping, until=[RuntimeStatus.RUNNING], timeout=20)

        pages, token = [], None
        while True:
            page = await client.list(limit=2, page_token=token)
            assert len(page) <= 2
            pages.append([s.instance_id for s in page])
            token = page.next_page_token
            if token is None:
                break
        seen = [iid for page in pages for iid in page]
        assert seen == [sleeping, *reversed(done)], "newest first, each once, across both state machines"
        assert len(pages) == 3

        running = await client.list(status=[RuntimeStatus.RUNNING, RuntimeStatus.PENDING])
        assert [s.instance_id for s in running] == [sleeping]
        assert running[0].properties["summary"] == "true"
        completed = await client.list(status="COMPLETED", workflow_name=echo)
        assert [s.instance_id for s in completed] == list(reversed(done))
        assert all(s.workflow_name == echo and s.input is None for s in completed)
        assert len(await client.list(status=RuntimeStatus.SUSPENDED)) == 0
        assert len(await client.list(workflow_name="not-a-workflow")) == 0

        component = client.component
        from turnout import ListQuery

        recent = await component.list(ListQuery(created_from=before, created_to=datetime.now(UTC)))
        assert {s.instance_id for s in recent} == {sleeping, *done}
        assert len(await component.list(ListQuery(created_to=before))) == 0
        with pytest.raises(InvalidArgument, match="page_token"):
            await client.list(page_token="not-a-token")
        await client.terminate(sleeping)


# -- what Step Functions cannot do --------------------------------------------------------


async def test_unsupported_operations_say_why(moto_server: MotoServer, tmp_path: Path) -> None:
    echo = unique("echo")
    async with deployed(moto_server, tmp_path, {echo: ECHO}) as client:
        iid = await client.start(echo)
        assert client.features == {Feature.LIST, Feature.TERMINATE, Feature.RAISE_EVENT, Feature.HISTORY}
        calls = {
            "pause": (client.pause(iid), "no API to pause or resume"),
            "resume": (client.resume(iid), "no API to pause or resume"),
            "cancel": (client.cancel(iid), "no cooperative cancellation"),
            "purge": (client.purge(iid), "delete an execution"),
            "start_at": (client.start(echo, start_at=timedelta(seconds=5)), "EventBridge Scheduler"),
            "replace": (client.start(echo, instance_id=iid, replace=True), "90 days"),
        }
        for operation, (call, reason) in calls.items():
            with pytest.raises(Unsupported) as caught:
                await call
            assert caught.value.component_type == "workflow.aws.stepfunctions", operation
            assert reason in str(caught.value), operation


# -- credentials ------------------------------------------------------------------------------


async def test_assume_role_through_sts(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """assumeRoleArn: STS (moto's, through AWS_ENDPOINT_URL_STS) hands out the keys the calls use."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_server.endpoint)
    echo = unique("echo")
    folder = write_definitions(tmp_path, {echo: ECHO})
    metadata = moto_server.metadata(
        roleArn=ROLE,
        definitions=str(folder / "*.asl.json"),
        assumeRoleArn="arn:aws:iam::123456789012:role/turnout-caller",
        sessionName="tests",
    )
    async with open_client(tmp_path, metadata) as client:
        credentials = client.component.calls.client._request_signer._credentials
        iid = await client.start(echo, 7)
        assert (await finish(client, iid, RuntimeStatus.COMPLETED)).output == 7
        assert credentials.get_frozen_credentials().access_key.startswith("ASIA")  # STS keys, not 'testing'


async def test_concurrent_calls(moto_server: MotoServer, tmp_path: Path) -> None:
    """Many calls at once share the component's thread pool without blocking the loop."""
    echo = unique("echo")
    async with deployed(moto_server, tmp_path, {echo: ECHO}) as client:
        ids = await asyncio.gather(*(client.start(echo, n) for n in range(12)))
        states = await asyncio.gather(*(client.wait(i, timeout=20) for i in ids))
        assert [s.output for s in states] == list(range(12))
