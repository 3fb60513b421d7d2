"""What the Logic Apps component does beyond the conformance suite, through the real SDK and the double."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.mgmt.logic.models import WorkflowStatus

from turnout import (
    AsyncWorkflowClient,
    EngineError,
    Feature,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    RuntimeStatus,
    StartRequest,
    Unsupported,
    WorkflowNotRegistered,
)
from turnout_logicapps import STATUS_TABLE, LogicAppNotFound, LogicAppsComponent

from . import definitions
from .arm_double import ArmDouble
from .support import StaticTokenCredential, arm_client, component, deploy, new_group

TIMEOUT = 10.0

Opener = Callable[..., Any]


@pytest.fixture
def group() -> str:
    return new_group()


@pytest.fixture
def opened(arm_double: ArmDouble, group: str) -> Opener:
    """``async with opened(**options) as (component, client)``: a component of this test's group."""

    @asynccontextmanager
    async def open_one(**options: Any) -> AsyncIterator[tuple[LogicAppsComponent, AsyncWorkflowClient]]:
        made = component(arm_double, group, **options)
        await made.open()
        try:
            yield made, AsyncWorkflowClient(made)
        finally:
            await made.close()

    return open_one


def sink(double: ArmDouble) -> str:
    return f"{double.base_url}/_double/sink"


# -- the status table ------------------------------------------------------------------------


def test_the_status_table_covers_every_sdk_status_exactly() -> None:
    """One row per value of the SDK's WorkflowStatus enum, no more, each with a reason."""
    assert set(STATUS_TABLE) == {s.value for s in WorkflowStatus}
    for name, (status, why) in STATUS_TABLE.items():
        assert isinstance(status, RuntimeStatus), name
        assert len(why) > 20, f"{name} needs a reason"


def test_the_declared_features_and_reasons() -> None:
    """What Logic Apps lacks is declared, and each refusal says why in Logic Apps terms."""
    features = LogicAppsComponent.features
    assert features == {Feature.LIST, Feature.TERMINATE, Feature.RAISE_EVENT, Feature.HISTORY}
    for feature in (Feature.PAUSE, Feature.CANCEL, Feature.PURGE, Feature.START_AT, Feature.REPLACE):
        assert feature not in features
        assert "Logic App" in LogicAppsComponent.unsupported_reasons[feature]


async def test_unsupported_operations_name_the_reason(opened: Opener) -> None:
    async with opened() as (made, client):
        for call in (
            lambda: made.pause("x"),
            lambda: made.resume("x"),
            lambda: made.cancel("x"),
            lambda: made.purge("x"),
            lambda: client.pause("x"),
            lambda: client.purge("x"),
        ):
            with pytest.raises(Unsupported) as caught:
                await call()
            assert "workflow.azure.logicapps" in str(caught.value)
            assert caught.value.reason and "Logic Apps" in caught.value.reason
        with pytest.raises(Unsupported, match="Delay until"):
            await made.start(StartRequest(workflow_name="x", start_at=datetime.now(UTC) + timedelta(hours=1)))


# -- start and get ---------------------------------------------------------------------------


async def test_start_tags_the_run_with_the_instance_id(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    """start lists the trigger's callback URL, posts the input there, and the run carries the id."""
    deploy(arm_double, group, {"echo": definitions.echo()})
    async with opened() as (_made, client):
        instance_id = await client.start("echo", {"n": 1}, instance_id="order-1")
        state = await client.wait(instance_id, timeout=TIMEOUT)
    assert (state.runtime_status, state.input, state.output) == (RuntimeStatus.COMPLETED, {"n": 1}, {"n": 1})
    arm = arm_client(arm_double)
    try:
        runs = list(arm.workflow_runs.list(group, "echo", filter="ClientTrackingId eq 'order-1'"))
    finally:
        arm.close()
    assert [r.name for r in runs] == [state.properties["runId"]]
    assert runs[0].correlation.client_tracking_id == "order-1"
    paths = [p for _m, p in arm_double.requests if group in p or "/paths/invoke" in p]
    assert any(p.endswith("/triggers/manual/listCallbackUrl") for p in paths)


async def test_a_new_component_finds_instances_by_tracking_id(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    """The instance -> run map is rebuilt from runs.list filtered on ClientTrackingId."""
    deploy(arm_double, group, {"echo": definitions.echo(), "other": definitions.echo()})
    async with opened() as (_made, client):
        instance_id = await client.start("other", "kept", instance_id="kept-1")
        await client.wait(instance_id, timeout=TIMEOUT)
    async with opened() as (_made, client):
        state = await client.get("kept-1")
        assert state is not None
        assert (state.workflow_name, state.output, state.input) == ("other", "kept", "kept")
        assert await client.get("never-started") is None


async def test_a_run_started_outside_turnout_is_an_instance_named_by_its_run_id(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    """A run without a tracking id of ours (here triggers.run) shows under its run id, the default id."""
    deploy(arm_double, group, {"echo": definitions.echo()})
    arm = arm_client(arm_double)
    try:
        run_id = arm.workflow_triggers.run(
            group,
            "echo",
            "manual",
            cls=lambda response, _d, _h: response.http_response.headers["x-ms-workflow-run-id"],
        )
    finally:
        arm.close()
    async with opened() as (_made, client):
        state = await client.wait(run_id, timeout=TIMEOUT)
        assert (state.instance_id, state.runtime_status, state.input) == (
            run_id,
            RuntimeStatus.COMPLETED,
            None,
        )
        listed = [s.instance_id for s in await client.list(workflow_name="echo")]
        assert listed == [run_id]


async def test_a_response_action_answers_start_and_the_output_is_the_output_named_output(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    deploy(arm_double, group, {"responder": definitions.responder(), "two": definitions.two_outputs()})
    async with opened() as (_made, client):
        first = await client.start("responder", {"order": 7})
        state = await client.wait(first, timeout=TIMEOUT)
        assert state.output == {"order": 7, "note": "total for 7"}
        second = await client.start("two")
        state = await client.wait(second, timeout=TIMEOUT)
        assert state.output == {"first": "one", "second": 2}, "without an output named 'output', all of them"


async def test_failures_carry_the_logic_apps_error(arm_double: ArmDouble, group: str, opened: Opener) -> None:
    deploy(arm_double, group, {"broken": definitions.failing_action(), "stop": definitions.self_cancelling()})
    async with opened() as (_made, client):
        failed = await client.start("broken", {"text": "not json"})
        state = await client.wait(failed, timeout=TIMEOUT)
        assert state.runtime_status is RuntimeStatus.FAILED
        assert state.failure is not None and state.failure.error_type == "ActionFailed"
        assert state.properties["status"] == "Failed"
        history = await client.history(failed)
        finished = {e.name: e.data["status"] for e in history if e.kind == "ActionFinished"}
        assert finished == {"Start": "Succeeded", "Broken": "Failed", "After": "Skipped"}

        stopped = await client.start("stop")
        state = await client.wait(stopped, timeout=TIMEOUT)
        assert (state.runtime_status, state.failure) == (RuntimeStatus.TERMINATED, None)
        assert state.properties["code"] == "Terminated"


async def test_a_queued_run_is_pending_until_a_slot_frees(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    """Trigger concurrency 1: the second run waits as 'Waiting', which Turnout reads as PENDING."""
    deploy(arm_double, group, {"queued": definitions.queued()})
    async with opened() as (_made, client):
        first = await client.start("queued")
        await client.wait(first, until=[RuntimeStatus.RUNNING], timeout=TIMEOUT)
        second = await client.start("queued")
        state = await client.get(second)
        assert state is not None and state.runtime_status is RuntimeStatus.PENDING
        assert state.properties["status"] == "Waiting"
        pending = [s.instance_id for s in await client.list(status="PENDING", workflow_name="queued")]
        assert pending == [second]
        await client.terminate(first)
        await client.wait(second, until=[RuntimeStatus.RUNNING], timeout=TIMEOUT)
        await client.terminate(second)
        assert (await client.wait(second, timeout=TIMEOUT)).runtime_status is RuntimeStatus.TERMINATED


async def test_start_refuses_what_logic_apps_cannot_start(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    deploy(arm_double, group, {"echo": definitions.echo(), "off": definitions.echo()})
    arm = arm_client(arm_double)
    try:
        arm.workflows.disable(group, "off")
    finally:
        arm.close()
    async with opened() as (_made, client):
        with pytest.raises(LogicAppNotFound) as missing:
            await client.start("no-such-app")
        assert isinstance(missing.value, WorkflowNotRegistered)
        assert "no Logic App named 'no-such-app'" in str(missing.value) and "echo, off" in str(missing.value)
        with pytest.raises(InvalidArgument, match="a Logic App resource name"):
            await client.start("bad/name")
        with pytest.raises(EngineError, match=r"refused the trigger request: HTTP 409.*disabled") as disabled:
            await client.start("off")
        assert disabled.value.retryable is False
    async with opened(fields={"triggerName": "When_a_HTTP_request_is_received"}) as (_made, client):
        with pytest.raises(
            EngineError, match="has no trigger 'When_a_HTTP_request_is_received' \\(triggerName"
        ):
            await client.start("echo")


# -- terminate -------------------------------------------------------------------------------


async def test_terminate_cancels_the_run_and_refuses_a_finished_one(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    deploy(arm_double, group, {"sleeper": definitions.sleeper(), "echo": definitions.echo()})
    async with opened() as (_made, client):
        sleeping = await client.start("sleeper")
        await client.wait(sleeping, until=[RuntimeStatus.RUNNING], timeout=TIMEOUT)
        await client.terminate(sleeping, "no longer needed")
        state = await client.wait(sleeping, timeout=TIMEOUT)
        assert (state.runtime_status, state.properties["status"]) == (RuntimeStatus.TERMINATED, "Cancelled")
        with pytest.raises(InvalidState, match="already finished"):
            await client.terminate(sleeping)
        with pytest.raises(InstanceNotFound):
            await client.terminate("never-started")


# -- raise_event: the HTTP Webhook convention --------------------------------------------------


async def test_events_go_to_the_webhook_action_of_the_same_name_in_order(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    """Two webhook actions in a row; each event waits for its action; the subscribe call got the URL."""
    deploy(arm_double, group, {"approval": definitions.approval(sink(arm_double))})
    async with opened() as (_made, client):
        instance_id = await client.start("approval", {"order": 1})
        await client.raise_event(instance_id, "manager", {"ok": True})
        await client.raise_event(instance_id, "finance", {"ok": False, "why": "budget"})
        state = await client.wait(instance_id, timeout=TIMEOUT)
    assert state.output == {"manager": {"ok": True}, "finance": {"ok": False, "why": "budget"}}
    run_id = state.properties["runId"]
    subscribed = [
        s["body"] for s in arm_double.sink if isinstance(s["body"], dict) and s["body"].get("run") == run_id
    ]
    assert len(subscribed) == 2
    assert all(f"/runs/{run_id}/actions/" in s["callbackUrl"] for s in subscribed)


async def test_event_errors_name_the_webhook_actions(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    plain = definitions.waiter(sink(arm_double), "approve")
    plain["actions"]["approve"]["inputs"]["subscribe"]["body"] = {"url": "@{listCallbackUrl()}"}
    deploy(
        arm_double,
        group,
        {
            "waiter": definitions.waiter(sink(arm_double), "approve"),
            "plain": plain,
            "echo": definitions.echo(),
        },
    )
    async with opened() as (_made, client):
        waiting = await client.start("waiter")
        with pytest.raises(
            InvalidArgument,
            match="HTTP Webhook action of Logic App 'waiter' \\(its webhook actions: approve\\)",
        ):
            await client.raise_event(waiting, "go", 1)
        other = await client.start("plain")
        with pytest.raises(InvalidArgument, match='"callbackUrl": "@\\{listCallbackUrl\\(\\)\\}"'):
            await client.raise_event(other, "approve", 1)
        with pytest.raises(InstanceNotFound):
            await client.raise_event("never-started", "approve", 1)
        await client.terminate(waiting)
        await client.terminate(other)
        await client.wait(waiting, timeout=TIMEOUT)
        await client.raise_event(waiting, "approve", "dropped: the run has finished")


async def test_an_event_for_an_action_not_reached_times_out_retryably(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    late = definitions.definition(
        {
            "Sleep": {"type": "Wait", "inputs": {"interval": {"count": 1, "unit": "Hour"}}, "runAfter": {}},
            "go": definitions.webhook(sink(arm_double), {"Sleep": ["Succeeded"]}),
        }
    )
    deploy(arm_double, group, {"late": late})
    async with opened(event_timeout=0.3) as (_made, client):
        instance_id = await client.start("late")
        with pytest.raises(EngineError, match=r"did not wait for its callback within 0\.3s") as caught:
            await client.raise_event(instance_id, "go", 1)
        assert caught.value.retryable is True
        await client.terminate(instance_id)


async def test_an_unanswered_webhook_with_a_time_limit_fails_the_run(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    deploy(arm_double, group, {"timed": definitions.timed_webhook(sink(arm_double), "PT0.2S")})
    async with opened() as (_made, client):
        instance_id = await client.start("timed")
        state = await client.wait(instance_id, timeout=TIMEOUT)
    assert state.runtime_status is RuntimeStatus.FAILED
    assert state.failure is not None and state.failure.error_type == "ActionTimedOut"


# -- list ------------------------------------------------------------------------------------


async def test_list_merges_logic_apps_newest_first_with_filters(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    deploy(
        arm_double,
        group,
        {"a": definitions.echo(), "b": definitions.echo(), "fails": definitions.failing()},
    )
    async with opened() as (made, client):
        started = []
        for name in ("a", "b", "a", "fails", "b", "a", "fails"):
            instance_id = await client.start(name, name)
            await client.wait(instance_id, timeout=TIMEOUT)
            started.append(instance_id)
        everything = []
        token = None
        pages = 0
        while True:
            page = await client.list(limit=3, page_token=token)
            everything += page.items
            pages += 1
            token = page.next_page_token
            if token is None:
                break
        assert [s.instance_id for s in everything] == list(reversed(started))
        assert pages == 3
        failed = await client.list(status="FAILED")  # several Logic Apps statuses: filtered here
        assert {s.instance_id for s in failed} == {started[3], started[6]}
        only_b = await client.list(workflow_name="b", status=["COMPLETED"])
        assert [s.instance_id for s in only_b] == [started[4], started[1]]
        assert len(await client.list(workflow_name="no-such-app")) == 0
        assert len(await client.list(status="SUSPENDED")) == 0

        middle = everything[3].created_at
        window = await made.list(ListQuery(created_from=middle, created_to=everything[1].created_at))
        assert [s.instance_id for s in window] == [s.instance_id for s in everything[1:4]]

        first = await client.list(limit=2)
        with pytest.raises(InvalidArgument, match="same filters"):
            await client.list(limit=2, status="FAILED", page_token=first.next_page_token)
        with pytest.raises(InvalidArgument, match="page_token"):
            await client.list(page_token="not-a-token")


async def test_runs_started_in_the_same_tick_page_without_loss(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    """Concurrent starts: pages of 1 still give every run once."""
    deploy(arm_double, group, {"echo": definitions.echo()})
    async with opened() as (_made, client):
        ids = await asyncio.gather(*(client.start("echo", n) for n in range(6)))
        seen = []
        token = None
        while True:
            page = await client.list(limit=1, page_token=token)
            seen += [s.instance_id for s in page]
            token = page.next_page_token
            if token is None:
                break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


# -- resubmit --------------------------------------------------------------------------------


async def test_resubmit_reruns_with_the_same_input(arm_double: ArmDouble, group: str, opened: Opener) -> None:
    deploy(arm_double, group, {"echo": definitions.echo()})
    async with opened() as (made, client):
        instance_id = await client.start("echo", {"again": True}, instance_id="rerun-me")
        first = await client.wait(instance_id, timeout=TIMEOUT)
        rerun = await made.resubmit(instance_id)
        assert rerun == instance_id, "the replayed trigger keeps the client tracking id"
        second = await client.wait(rerun, timeout=TIMEOUT)
        assert second.properties["runId"] != first.properties["runId"]
        assert (second.input, second.output) == ({"again": True}, {"again": True})
        assert second.created_at > first.created_at
        with pytest.raises(InstanceNotFound):
            await made.resubmit("never-started")


# -- transport, credentials and errors -------------------------------------------------------


async def test_a_token_the_service_refuses_is_an_engine_error(
    arm_double: ArmDouble, group: str, opened: Opener
) -> None:
    deploy(arm_double, group, {"echo": definitions.echo()})
    async with opened(credential=StaticTokenCredential("not-issued")) as (_made, client):
        with pytest.raises(EngineError, match="Azure refused the credentials") as caught:
            await client.start("echo")
    assert caught.value.retryable is False
    assert caught.value.__cause__ is not None and type(caught.value.__cause__).__module__.startswith("azure.")


async def test_an_unreachable_endpoint_is_a_retryable_engine_error(tmp_path: Any, group: str) -> None:
    from .support import start_double

    double = start_double(tmp_path)
    gone = component(double, group)
    double.stop()
    await gone.open()
    try:
        with pytest.raises(EngineError, match="could not reach Azure Resource Manager") as caught:
            await gone.get("anything")
        assert caught.value.retryable is True
    finally:
        await gone.close()


async def test_plain_http_works_only_when_the_metadata_allows_it(tmp_path: Any, group: str) -> None:
    """allowInsecureBaseUrl: the bearer policy lets the token go over http (it is refused otherwise)."""
    from .support import start_double

    double = start_double(tmp_path, tls=False)
    try:
        deploy(double, group, {"echo": definitions.echo()})
        made = component(double, group)
        assert made.metadata.allow_insecure_base_url and made.metadata.base_url.startswith("http://")
        await made.open()
        try:
            client = AsyncWorkflowClient(made)
            state = await client.wait(await client.start("echo", "over http"), timeout=TIMEOUT)
            assert state.output == "over http"
        finally:
            await made.close()
    finally:
        double.stop()


async def test_the_data_plane_refuses_plain_http_unless_allowed() -> None:
    from turnout_logicapps._azure import DataPlane

    data = DataPlane(None, allow_http=False)
    await data.open()
    try:
        with pytest.raises(EngineError, match="only allowInsecureBaseUrl permits"):
            await data.request("POST", "http://127.0.0.1:1/workflows/x/triggers/manual/paths/invoke", "start")
    finally:
        await data.close()


def test_webhook_actions_are_found_at_any_depth() -> None:
    """Events reach webhook actions inside scopes, conditions and switches (the double runs none of these)."""
    from turnout_logicapps._events import _find_action, _webhook_names

    actions = {
        "Scope": {"type": "Scope", "actions": {"a": {"type": "HttpWebhook"}}},
        "If": {
            "type": "If",
            "actions": {"b": {"type": "HttpWebhook"}},
            "else": {"actions": {"c": {"type": "HttpWebhook"}}},
        },
        "Switch": {
            "type": "Switch",
            "cases": {"one": {"actions": {"d": {"type": "HttpWebhook"}}}},
            "default": {"actions": {"e": {"type": "Compose"}}},
        },
    }
    assert _webhook_names(actions) == ["a", "b", "c", "d"]
    assert _find_action(actions, "d") == {"type": "HttpWebhook"}
    assert _find_action(actions, "missing") is None
