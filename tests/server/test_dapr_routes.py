"""Dapr's workflow routes over real HTTP: every route, under every prefix, and every error code."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from .conftest import new_id

PREFIXES = ["/v1.0", "/v1.0-beta1", "/v1.0-alpha1"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


def start(
    http: httpx.Client, name: str, body: Any = None, *, iid: str | None = None, prefix: str = "/v1.0"
) -> str:
    params = {"instanceID": iid} if iid else {}
    content = None if body is None else json.dumps(body)
    response = http.post(
        f"{prefix}/workflows/dapr/{name}/start",
        params=params,
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["instanceID"])


def wait_for(http: httpx.Client, iid: str, *until: str, component: str = "dapr") -> dict[str, Any]:
    """Long-poll (Turnout's wait route) until the instance is in one of ``until``."""
    response = http.get(
        f"/v1.0/workflows/{component}/{iid}/wait", params={"until": ",".join(until), "timeout": 20}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check Dapr's error body and status; return the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = dict(response.json())
    assert body["errorCode"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_route_under_every_prefix(http: httpx.Client, prefix: str) -> None:
    iid = new_id()
    response = http.post(
        f"{prefix}/workflows/dapr/waiter/start",
        params={"instanceID": iid},
        content=b'{"n": 1}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"instanceID": iid}
    assert response.headers["location"] == f"{prefix}/workflows/dapr/{iid}"
    assert response.headers["retry-after"] == "1"
    wait_for(http, iid, "RUNNING")

    status = http.get(response.headers["location"])
    assert status.status_code == 200
    assert status.json()["instanceID"] == iid

    paused = http.post(f"{prefix}/workflows/dapr/{iid}/pause")
    assert (paused.status_code, paused.json()) == (202, {})
    assert http.get(f"{prefix}/workflows/dapr/{iid}").json()["runtimeStatus"] == "SUSPENDED"
    resumed = http.post(f"{prefix}/workflows/dapr/{iid}/resume")
    assert (resumed.status_code, resumed.json()) == (202, {})
    assert wait_for(http, iid, "RUNNING")["runtimeStatus"] == "RUNNING"

    raised = http.post(f"{prefix}/workflows/dapr/{iid}/raiseEvent/go", content=b'"yes"')
    assert (raised.status_code, raised.json()) == (202, {})
    done = wait_for(http, iid, "COMPLETED")
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {"input": {"n": 1}, "got": "yes"}

    purged = http.post(f"{prefix}/workflows/dapr/{iid}/purge")
    assert (purged.status_code, purged.json()) == (202, {})
    error(http.get(f"{prefix}/workflows/dapr/{iid}"), 404, "ERR_INSTANCE_ID_NOT_FOUND")

    other = start(http, "waiter", prefix=prefix)
    terminated = http.post(f"{prefix}/workflows/dapr/{other}/terminate")
    assert (terminated.status_code, terminated.json()) == (202, {})
    assert http.get(f"{prefix}/workflows/dapr/{other}").json()["runtimeStatus"] == "TERMINATED"


def test_get_answers_dapr_json(http: httpx.Client) -> None:
    iid = start(http, "waiter", {"order": 7}, iid=new_id())
    body = wait_for(http, iid, "RUNNING")
    assert set(body) == {
        "instanceID",
        "workflowName",
        "createdAt",
        "lastUpdatedAt",
        "runtimeStatus",
        "properties",
    }
    assert body["workflowName"] == "waiter"
    assert RFC3339_UTC.match(body["createdAt"]), body["createdAt"]
    assert RFC3339_UTC.match(body["lastUpdatedAt"]), body["lastUpdatedAt"]
    properties = body["properties"]
    assert all(isinstance(value, str) for value in properties.values())
    assert json.loads(properties["dapr.workflow.input"]) == {"order": 7}
    assert "dapr.workflow.output" not in properties
    http.post(f"/v1.0/workflows/dapr/{iid}/raiseEvent/go", json=1)
    done = wait_for(http, iid, "COMPLETED")["properties"]
    assert json.loads(done["dapr.workflow.custom_status"]) == {"stage": "done"}
    assert json.loads(done["dapr.workflow.output"]) == {"input": {"order": 7}, "got": 1}
    assert not any(key.startswith("dapr.workflow.failure") for key in done)


def test_failure_properties_and_no_output(http: httpx.Client) -> None:
    iid = start(http, "fail", "the disk is full")
    properties = wait_for(http, iid, "FAILED")["properties"]
    assert properties["dapr.workflow.failure.error_type"]
    assert "the disk is full" in properties["dapr.workflow.failure.error_message"]
    assert "Traceback" in properties["dapr.workflow.failure.stack_trace"]
    assert "dapr.workflow.output" not in properties


def test_start_generates_an_id_when_none_or_empty(http: httpx.Client) -> None:
    first = start(http, "echo", 1)
    response = http.post("/v1.0/workflows/dapr/echo/start?instanceID=", json=2)
    assert response.status_code == 202
    second = response.json()["instanceID"]
    assert first and second and first != second


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b'{"a": [1, 2]}', "application/json", {"a": [1, 2]}),
        (b"42", None, 42),
        (b"plain words", "text/plain", "plain words"),
        (b"plain words", None, "plain words"),
        (b"NaN", None, "NaN"),
        ("ünïcode".encode(), "text/plain; charset=utf-8", "ünïcode"),
    ],
)
def test_start_body_is_the_raw_payload(
    http: httpx.Client, content: bytes, content_type: str | None, expected: Any
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = http.post("/v1.0/workflows/dapr/echo/start", content=content, headers=headers)
    assert response.status_code == 202, response.text
    done = wait_for(http, response.json()["instanceID"], "COMPLETED")
    assert json.loads(done["properties"]["dapr.workflow.input"]) == expected
    assert json.loads(done["properties"]["dapr.workflow.output"]) == expected


def test_start_with_no_body_has_no_input(http: httpx.Client) -> None:
    response = http.post("/v1.0/workflows/dapr/echo/start")
    done = wait_for(http, response.json()["instanceID"], "COMPLETED")
    assert "dapr.workflow.input" not in done.get("properties", {})


def test_raise_event_body_is_the_raw_payload(http: httpx.Client) -> None:
    iid = start(http, "waiter")
    response = http.post(f"/v1.0/workflows/dapr/{iid}/raiseEvent/go", content=b"not json at all")
    assert response.status_code == 202
    done = wait_for(http, iid, "COMPLETED")
    assert json.loads(done["properties"]["dapr.workflow.output"])["got"] == "not json at all"


def test_start_at_schedules(http: httpx.Client) -> None:
    response = http.post(
        "/v1.0/workflows/dapr/echo/start", params={"startAt": "2999-01-01T00:00:00Z"}, json=1
    )
    assert response.status_code == 202
    body = http.get(response.headers["location"]).json()
    assert body["runtimeStatus"] == "PENDING"
    assert body["properties"]["turnout.scheduled_start_at"] == "2999-01-01T00:00:00Z"
    http.post(f"/v1.0/workflows/dapr/{body['instanceID']}/terminate")
    body = error(
        http.post("/v1.0/workflows/dapr/echo/start", params={"startAt": "tomorrow"}),
        400,
        "ERR_INVALID_ARGUMENT",
    )
    assert "startAt" in body["message"]


# -- error codes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_id", "code"),
    [
        ("has space", "ERR_INSTANCE_ID_INVALID"),
        ("a/b%2F", "ERR_INSTANCE_ID_INVALID"),
        ("x" * 65, "ERR_INSTANCE_ID_TOO_LONG"),
    ],
)
def test_start_refuses_bad_instance_ids(http: httpx.Client, instance_id: str, code: str) -> None:
    error(http.post("/v1.0/workflows/dapr/echo/start", params={"instanceID": instance_id}), 400, code)


def test_the_longest_id_and_unicode_letters_are_fine(http: httpx.Client) -> None:
    assert start(http, "echo", iid="x" * 64) == "x" * 64
    assert start(http, "echo", iid="ordre_é-1") == "ordre_é-1"
    assert http.get("/v1.0/workflows/dapr/ordre_é-1").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1.0/workflows/dapr/"),
        ("POST", "/v1.0/workflows/dapr//terminate"),
        ("POST", "/v1.0/workflows/dapr//pause"),
        ("POST", "/v1.0/workflows/dapr//resume"),
        ("POST", "/v1.0/workflows/dapr//purge"),
        ("POST", "/v1.0/workflows/dapr//raiseEvent/go"),
    ],
)
def test_empty_instance_id(http: httpx.Client, method: str, path: str) -> None:
    error(http.request(method, path), 400, "ERR_INSTANCE_ID_PROVIDED_MISSING")


@pytest.mark.parametrize("operation", ["get", "terminate", "raiseEvent/go", "pause", "resume", "purge"])
def test_unknown_instance_is_404(http: httpx.Client, operation: str) -> None:
    iid = new_id("missing")
    method, path = (
        ("GET", f"/v1.0/workflows/dapr/{iid}")
        if operation == "get"
        else ("POST", f"/v1.0/workflows/dapr/{iid}/{operation}")
    )
    body = error(http.request(method, path), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    assert iid in body["message"]


def test_missing_names(http: httpx.Client) -> None:
    error(http.post("/v1.0/workflows/dapr//start"), 400, "ERR_WORKFLOW_NAME_MISSING")
    iid = start(http, "waiter")
    error(http.post(f"/v1.0/workflows/dapr/{iid}/raiseEvent/"), 400, "ERR_WORKFLOW_EVENT_NAME_MISSING")
    http.post(f"/v1.0/workflows/dapr/{iid}/terminate")


def test_component_missing_or_unknown(http: httpx.Client) -> None:
    error(http.get("/v1.0/workflows//abc"), 400, "ERR_WORKFLOW_COMPONENT_MISSING")
    body = error(http.post("/v1.0/workflows/orders/echo/start"), 400, "ERR_WORKFLOW_COMPONENT_NOT_FOUND")
    assert body["components"] == ["broken", "dapr", "example"]
    assert "orders" in body["message"] and "dapr" in body["message"]


def test_conflicts_are_409(http: httpx.Client) -> None:
    iid = start(http, "waiter", iid=new_id())
    body = error(
        http.post("/v1.0/workflows/dapr/waiter/start", params={"instanceID": iid}), 409, "ERR_INSTANCE_EXISTS"
    )
    assert iid in body["message"]
    error(http.post(f"/v1.0/workflows/dapr/{iid}/purge"), 409, "ERR_INVALID_STATE")
    error(http.post(f"/v1.0/workflows/dapr/{iid}/resume"), 409, "ERR_INVALID_STATE")
    http.post(f"/v1.0/workflows/dapr/{iid}/terminate")
    error(http.post(f"/v1.0/workflows/dapr/{iid}/raiseEvent/go"), 409, "ERR_INVALID_STATE")
    error(http.post(f"/v1.0/workflows/dapr/{iid}/pause"), 409, "ERR_INVALID_STATE")
    terminate_again = http.post(f"/v1.0/workflows/dapr/{iid}/terminate")
    assert terminate_again.status_code == 202  # idempotent, as in Dapr


def test_unknown_workflow_and_bad_input_are_400(http: httpx.Client) -> None:
    body = error(http.post("/v1.0/workflows/dapr/nope/start"), 400, "ERR_WORKFLOW_NOT_REGISTERED")
    assert "echo" in body["message"]


def test_malformed_json_is_400(http: httpx.Client) -> None:
    for path in ("/v1.0/workflows/dapr/echo/start", f"/v1.0/workflows/dapr/{new_id()}/raiseEvent/go"):
        body = error(
            http.post(path, content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "ERR_MALFORMED_REQUEST",
        )
        assert "not valid JSON" in body["message"]
    body = error(
        http.post("/v1.0/workflows/dapr/echo/start", content=b"\xff\xfe"), 400, "ERR_MALFORMED_REQUEST"
    )
    assert "UTF-8" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("POST", "/v1.0/workflows/broken/echo/start", "ERR_START_WORKFLOW"),
        ("GET", "/v1.0/workflows/broken/i-1", "ERR_GET_WORKFLOW"),
        ("POST", "/v1.0/workflows/broken/i-1/terminate", "ERR_TERMINATE_WORKFLOW"),
        ("POST", "/v1.0/workflows/broken/i-1/raiseEvent/go", "ERR_RAISE_EVENT_WORKFLOW"),
        ("POST", "/v1.0/workflows/broken/i-1/pause", "ERR_PAUSE_WORKFLOW"),
        ("POST", "/v1.0/workflows/broken/i-1/resume", "ERR_RESUME_WORKFLOW"),
        ("POST", "/v1.0/workflows/broken/i-1/purge", "ERR_PURGE_WORKFLOW"),
    ],
)
def test_engine_failures_are_dapr_500s(http: httpx.Client, method: str, path: str, code: str) -> None:
    body = error(http.request(method, path), 500, code)
    subject = "echo" if path.endswith("start") else "i-1"
    assert f"'{subject}'" in body["message"]
    assert "on purpose" in body["message"]


@pytest.mark.parametrize(
    ("path", "operation"),
    [("i-1/pause", "pause"), ("i-1/resume", "pause"), ("i-1/raiseEvent/go", "raise_event")],
)
def test_unsupported_is_501_naming_type_and_operation(http: httpx.Client, path: str, operation: str) -> None:
    body = error(http.post(f"/v1.0/workflows/example/{path}"), 501, "ERR_NOT_SUPPORTED")
    assert body["componentType"] == "workflow.example"
    assert body["operation"] == operation
    assert "workflow.example" in body["message"] and operation in body["message"]


def test_template_component_serves_what_it_has(http: httpx.Client) -> None:
    response = http.post("/v1.0/workflows/example/greet/start", json={"hi": 1})
    assert response.status_code == 202
    body = http.get(response.headers["location"]).json()
    assert body["runtimeStatus"] == "COMPLETED"
    assert json.loads(body["properties"]["dapr.workflow.output"]) == {"hi": 1}
    assert body["properties"]["behaviour"] == "echo"


def test_unknown_routes_and_methods(http: httpx.Client) -> None:
    error(http.get("/v1.0/nothing/here"), 404, "ERR_NOT_FOUND")
    error(http.get("/v1.0/workflows/dapr/x/start"), 405, "ERR_METHOD_NOT_ALLOWED")
