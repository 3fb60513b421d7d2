"""The ARM double keeps the 2019-05-01 contract the SDK expects, driven here by the real SDK only.

The data-plane URLs that Logic Apps signs (trigger and webhook callbacks,
content links) are not ARM calls: they are called with urllib, as any HTTP
client would.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.mgmt.logic import LogicManagementClient
from azure.mgmt.logic.models import Workflow

from . import definitions
from .arm_double import ArmDouble
from .support import LOCATION, SUBSCRIPTION, SyncStaticTokenCredential, arm_client, deploy, new_group


@pytest.fixture
def arm(arm_double: ArmDouble) -> Iterator[LogicManagementClient]:
    client = arm_client(arm_double)
    try:
        yield client
    finally:
        client.close()


def post(
    double: ArmDouble, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """POST JSON to a signed data-plane URL; (status, headers, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    context = ssl.create_default_context(cafile=str(double.ca_file))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            raw = answer.read()
            return answer.status, dict(answer.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def wait_for(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def test_workflows_versions_and_paging(arm: LogicManagementClient, arm_double: ArmDouble) -> None:
    group = new_group()
    created = arm.workflows.create_or_update(
        group, "app-0", Workflow(location=LOCATION, definition=definitions.echo())
    )
    assert (created.name, created.state, created.provisioning_state) == ("app-0", "Enabled", "Succeeded")
    assert created.type == "Microsoft.Logic/workflows" and created.id.endswith(
        f"/resourceGroups/{group}/providers/Microsoft.Logic/workflows/app-0"
    )
    first_version = created.version
    updated = arm.workflows.create_or_update(
        group, "app-0", Workflow(location=LOCATION, definition=definitions.sleeper())
    )
    assert updated.version != first_version and updated.created_time == created.created_time
    old = arm.workflow_versions.get(group, "app-0", first_version)
    assert old.definition == definitions.echo()
    for n in range(1, 7):
        arm.workflows.create_or_update(
            group, f"app-{n}", Workflow(location=LOCATION, definition=definitions.echo())
        )
    names = [w.name for w in arm.workflows.list_by_resource_group(group)]
    assert names == [f"app-{n}" for n in range(7)], "the pager follows nextLink across pages of 4"
    arm.workflows.disable(group, "app-1")
    assert arm.workflows.get(group, "app-1").state == "Disabled"
    with pytest.raises(ResourceNotFoundError):
        arm.workflows.get(group, "missing")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda d: d["actions"].update(Http={"type": "Http", "inputs": {}, "runAfter": {}}),
            "supports Compose",
        ),
        (lambda d: d["outputs"].update(x={"type": "String", "value": "@utcNow()"}), "utcNow"),
        (
            lambda d: d["actions"].update(
                A={"type": "Compose", "inputs": 1, "runAfter": {"B": ["Succeeded"]}}
            ),
            "does not exist",
        ),
    ],
    ids=["action-type", "function", "run-after"],
)
def test_invalid_definitions_are_refused(arm: LogicManagementClient, change: Any, fragment: str) -> None:
    definition = definitions.echo()
    change(definition)
    with pytest.raises(HttpResponseError) as caught:
        arm.workflows.create_or_update(new_group(), "bad", Workflow(location=LOCATION, definition=definition))
    assert caught.value.status_code == 400 and caught.value.error.code == "InvalidTemplate"
    assert fragment in caught.value.error.message


def test_a_token_the_double_did_not_issue_is_refused(arm_double: ArmDouble) -> None:
    client = LogicManagementClient(
        SyncStaticTokenCredential("forged"),
        SUBSCRIPTION,
        base_url=arm_double.base_url,
        connection_verify=str(arm_double.ca_file),
        retry_total=0,
    )
    try:
        with pytest.raises(ClientAuthenticationError):
            list(client.workflows.list_by_resource_group("any"))
    finally:
        client.close()


def test_trigger_callback_runs_actions_and_histories(
    arm: LogicManagementClient, arm_double: ArmDouble
) -> None:
    group = new_group()
    deploy(arm_double, group, {"responder": definitions.responder()})
    callback = arm.workflow_triggers.list_callback_url(group, "responder", "manual")
    assert callback.method == "POST" and callback.value.startswith(callback.base_path + "?")
    assert callback.queries.sig and callback.queries.api_version == "2016-10-01"

    status, headers, body = post(arm_double, callback.value, {"order": 5}, {"x-ms-client-tracking-id": "t-1"})
    assert (status, body) == (200, {"accepted": 5}), "the Response action answers the request"
    run_id = headers["x-ms-workflow-run-id"]
    assert headers["x-ms-client-tracking-id"] == "t-1" and headers["x-ms-trigger-history-name"] == run_id
    assert post(arm_double, callback.value.replace("sig=", "sig=x"), {})[0] == 401

    run = wait_for(
        lambda: (r := arm.workflow_runs.get(group, "responder", run_id)).status == "Succeeded" and r,
        "the run",
    )
    assert run.correlation.client_tracking_id == "t-1" and run.trigger.name == "manual"
    assert run.outputs["output"].value == {"order": 5, "note": "total for 5"}
    actions = {a.name: a for a in arm.workflow_run_actions.list(group, "responder", run_id)}
    assert {n: a.status for n, a in actions.items()} == {"Reply": "Succeeded", "Total": "Succeeded"}
    assert actions["Total"].correlation.client_tracking_id == "t-1" and actions["Total"].inputs_link.uri
    with pytest.raises(ResourceExistsError):
        arm.workflow_runs.cancel(group, "responder", run_id)

    [history] = list(arm.workflow_trigger_histories.list(group, "responder", "manual"))
    assert (history.name, history.fired, history.run.name) == (run_id, True, run_id)
    assert arm.workflow_trigger_histories.resubmit(group, "responder", "manual", run_id) is None
    again = wait_for(
        lambda: [
            h for h in arm.workflow_trigger_histories.list(group, "responder", "manual") if h.name != run_id
        ],
        "the rerun",
    )
    rerun = arm.workflow_runs.get(group, "responder", again[0].run.name)
    assert rerun.correlation.client_tracking_id == "t-1", "the replayed headers carry the tracking id"


def test_runs_filter_and_page(arm: LogicManagementClient, arm_double: ArmDouble) -> None:
    group = new_group()
    deploy(arm_double, group, {"sleeper": definitions.sleeper(), "echo": definitions.echo()})
    started = [
        arm.workflow_triggers.run(
            group, "echo", "manual", cls=lambda r, _d, _h: r.http_response.headers["x-ms-workflow-run-id"]
        )
        for _ in range(5)
    ]
    sleeping = arm.workflow_triggers.run(
        group, "sleeper", "manual", cls=lambda r, _d, _h: r.http_response.headers["x-ms-workflow-run-id"]
    )
    wait_for(
        lambda: arm.workflow_runs.get(group, "sleeper", sleeping).status == "Running", "the sleeper running"
    )
    listed = [r.name for r in arm.workflow_runs.list(group, "echo")]
    assert listed == list(reversed(started)), "newest first, across pages"
    running = list(arm.workflow_runs.list(group, "sleeper", filter="status eq 'Running'"))
    assert [r.name for r in running] == [sleeping]
    after = arm.workflow_runs.get(group, "echo", started[2]).start_time
    since = [
        r.name for r in arm.workflow_runs.list(group, "echo", filter=f"startTime ge {after.isoformat()}")
    ]
    assert since == list(reversed(started[2:]))
    with pytest.raises(HttpResponseError, match="InvalidFilter"):
        list(arm.workflow_runs.list(group, "echo", filter="name eq 'x'"))
    arm.workflow_runs.cancel(group, "sleeper", sleeping)
    assert arm.workflow_runs.get(group, "sleeper", sleeping).status == "Cancelled"


def test_a_webhook_subscribes_waits_and_takes_its_callback(
    arm: LogicManagementClient, arm_double: ArmDouble
) -> None:
    group = new_group()
    deploy(arm_double, group, {"waiter": definitions.waiter(f"{arm_double.base_url}/_double/sink")})
    callback = arm.workflow_triggers.list_callback_url(group, "waiter", "manual")
    run_id = post(arm_double, callback.value, {"x": 1})[1]["x-ms-workflow-run-id"]
    action = wait_for(
        lambda: (a := arm.workflow_run_actions.get(group, "waiter", run_id, "go")).status == "Waiting" and a,
        "waiting",
    )
    with urllib.request.urlopen(
        action.inputs_link.uri, context=ssl.create_default_context(cafile=str(arm_double.ca_file))
    ) as answer:
        inputs = json.loads(answer.read())
    url = inputs["subscribe"]["body"]["callbackUrl"]
    assert any(s["body"] == inputs["subscribe"]["body"] for s in arm_double.sink), (
        "the subscribe call carried the URL"
    )
    assert post(arm_double, url, {"answer": 42})[0] == 200
    assert post(arm_double, url, {"answer": 43})[0] == 409, "one callback per action"
    run = wait_for(
        lambda: (r := arm.workflow_runs.get(group, "waiter", run_id)).status == "Succeeded" and r, "done"
    )
    assert run.outputs["output"].value == {"answer": 42}
