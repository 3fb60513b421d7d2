"""Turnout's routes beyond Dapr (list, history, wait, cancel, components, health, OpenAPI) and the limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from turnout._server._config import ServerConfig

from .conftest import LiveServer, new_id, write_components
from .test_dapr_routes import error, start, wait_for


def test_list_pages_newest_first(http: httpx.Client) -> None:
    ids = [start(http, "echo", n, iid=new_id("page")) for n in range(3)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"limit": 2, **({"pageToken": token} if token else {})}
        response = http.get("/v1.0/workflows/dapr", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [item["instanceID"] for item in body["items"]]
        pages += 1
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in ids] == list(reversed(ids))


def test_list_filters(http: httpx.Client) -> None:
    failed = start(http, "fail", "x")
    wait_for(http, failed, "FAILED")
    body = http.get("/v1.0/workflows/dapr", params={"status": "failed", "limit": 1000}).json()
    assert failed in [item["instanceID"] for item in body["items"]]
    assert {item["runtimeStatus"] for item in body["items"]} == {"FAILED"}
    both = http.get("/v1.0/workflows/dapr?status=FAILED&status=COMPLETED&workflowName=fail&limit=1000").json()
    assert {item["workflowName"] for item in both["items"]} == {"fail"}
    comma = http.get("/v1.0/workflows/dapr?status=FAILED,COMPLETED&workflowName=fail&limit=1000").json()
    assert comma == both


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=DONE", "status"), ("limit=0", "limit"), ("limit=abc", "limit"), ("limit=1001", "limit")],
)
def test_list_refuses_bad_parameters(http: httpx.Client, query: str, field: str) -> None:
    body = error(http.get(f"/v1.0/workflows/dapr?{query}"), 400, "ERR_INVALID_ARGUMENT")
    assert field in body["message"]


def test_list_on_the_template_and_on_a_component_without_list(http: httpx.Client) -> None:
    assert http.get("/v1.0/workflows/example").status_code == 200
    body = error(http.get("/v1.0/workflows/broken"), 501, "ERR_NOT_SUPPORTED")
    assert body["operation"] == "list"


def test_history(http: httpx.Client) -> None:
    iid = start(http, "echo", {"x": 1})
    wait_for(http, iid, "COMPLETED")
    body = http.get(f"/v1.0/workflows/dapr/{iid}/history").json()
    assert body["instanceID"] == iid
    kinds = [event["kind"] for event in body["events"]]
    assert "WorkflowStarted" in kinds and "WorkflowCompleted" in kinds
    assert [event["sequence"] for event in body["events"]] == sorted(
        event["sequence"] for event in body["events"]
    )
    started = next(event for event in body["events"] if event["kind"] == "WorkflowStarted")
    assert started["name"] == "echo"
    error(http.get(f"/v1.0/workflows/dapr/{new_id()}/history"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    body = error(http.get("/v1.0/workflows/example/x/history"), 501, "ERR_NOT_SUPPORTED")
    assert body["operation"] == "history"


def test_wait_long_polls_until_the_status(http: httpx.Client) -> None:
    iid = start(http, "waiter")
    running = wait_for(http, iid, "RUNNING")
    assert running["runtimeStatus"] == "RUNNING"
    with httpx.Client(base_url=str(http.base_url), timeout=30) as other:
        other.post(f"/v1.0/workflows/dapr/{iid}/raiseEvent/go", json="late")
    done = http.get(f"/v1.0/workflows/dapr/{iid}/wait", params={"timeout": 20})
    assert done.status_code == 200
    assert done.json()["runtimeStatus"] == "COMPLETED"


def test_wait_times_out_with_the_last_state(http: httpx.Client) -> None:
    iid = start(http, "waiter")
    wait_for(http, iid, "RUNNING")
    began = time.monotonic()
    body = error(
        http.get(f"/v1.0/workflows/dapr/{iid}/wait", params={"timeout": 0.3}), 408, "ERR_WAIT_TIMEOUT"
    )
    assert time.monotonic() - began >= 0.3
    assert body["state"]["runtimeStatus"] == "RUNNING"
    assert body["state"]["instanceID"] == iid
    http.post(f"/v1.0/workflows/dapr/{iid}/terminate")


def test_wait_refuses_bad_parameters(http: httpx.Client) -> None:
    body = error(http.get("/v1.0/workflows/dapr/x/wait?until=SOON"), 400, "ERR_INVALID_ARGUMENT")
    assert "until" in body["message"] and "COMPLETED" in body["message"]
    body = error(http.get("/v1.0/workflows/dapr/x/wait?timeout=-1"), 400, "ERR_INVALID_ARGUMENT")
    assert "timeout" in body["message"]
    error(http.get("/v1.0/workflows/dapr/x/wait?timeout=100000"), 400, "ERR_INVALID_ARGUMENT")
    error(http.get(f"/v1.0/workflows/dapr/{new_id()}/wait?timeout=1"), 404, "ERR_INSTANCE_ID_NOT_FOUND")


def test_cancel(http: httpx.Client) -> None:
    iid = start(http, "waiter")
    wait_for(http, iid, "RUNNING")
    response = http.post(f"/v1.0/workflows/dapr/{iid}/cancel", params={"reason": "changed my mind"})
    assert (response.status_code, response.json()) == (202, {})
    assert wait_for(http, iid, "CANCELED")["runtimeStatus"] == "CANCELED"
    body = error(http.post("/v1.0/workflows/example/x/cancel"), 501, "ERR_NOT_SUPPORTED")
    assert body["operation"] == "cancel"


def test_extensions_live_under_v1_only(http: httpx.Client) -> None:
    for path in ("/v1.0-beta1/workflows/dapr", "/v1.0-beta1/components", "/v1.0-alpha1/healthz"):
        assert http.get(path).status_code in (404, 405), path


def test_components(http: httpx.Client) -> None:
    body = http.get("/v1.0/components").json()
    by_name = {item["name"]: item for item in body["components"]}
    assert set(by_name) == {"broken", "dapr", "example"}
    assert by_name["dapr"]["type"] == "workflow.builtin"
    assert "pause" in by_name["dapr"]["features"]
    assert by_name["example"] == {
        "name": "example",
        "type": "workflow.example",
        "features": ["list", "purge", "terminate"],
    }


def test_healthz_and_openapi(http: httpx.Client) -> None:
    health = http.get("/v1.0/healthz")
    assert health.status_code == 204 and health.content == b""
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    for prefix in ("/v1.0", "/v1.0-beta1", "/v1.0-alpha1"):
        assert f"{prefix}/workflows/{{component}}/{{workflow_name}}/start" in paths
        assert f"{prefix}/workflows/{{component}}/{{instance_id}}/raiseEvent/{{event_name}}" in paths
    assert "/v1.0/workflows/{component}/{instance_id}/wait" in paths
    assert not any(path.startswith("/v1.0-beta1/components") for path in paths)
    assert paths["/v1.0-alpha1/workflows/{component}/{instance_id}"]["get"]["deprecated"] is True
    assert http.get("/docs").status_code == 404  # no UI that would load scripts from the internet


# -- limits ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with small limits: 1 KiB bodies, depth 5, waits of at most 2 s."""
    folder = tmp_path_factory.mktemp("small")
    config = ServerConfig(max_body_bytes=1024, max_json_depth=5, max_wait_seconds=2)
    with (
        LiveServer(write_components(folder / "components"), folder, config=config) as server,
        server.client() as client,
    ):
        yield client


def test_body_larger_than_the_limit_is_413(small: httpx.Client) -> None:
    assert small.post("/v1.0/workflows/dapr/echo/start", content=b"1" * 1024).status_code == 202
    body = error(
        small.post("/v1.0/workflows/dapr/echo/start", content=b"1" * 1025), 413, "ERR_REQUEST_TOO_LARGE"
    )
    assert "1024 bytes" in body["message"]


def test_chunked_body_larger_than_the_limit_is_413(small: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"[" + b"0," * 100 + b"0]"

    error(small.post("/v1.0/workflows/dapr/echo/start", content=chunks()), 413, "ERR_REQUEST_TOO_LARGE")


def test_json_depth_is_limited(small: httpx.Client) -> None:
    assert small.post("/v1.0/workflows/dapr/echo/start", json=[[[[[1]]]]]).status_code == 202
    body = error(
        small.post("/v1.0/workflows/dapr/echo/start", json=[[[[[[1]]]]]]), 400, "ERR_MALFORMED_REQUEST"
    )
    assert "at most 5 levels" in body["message"]
    deep = ("[" * 100_000 + "]" * 100_000).encode()[:1000]
    error(
        small.post(
            "/v1.0/workflows/dapr/echo/start", content=deep, headers={"content-type": "application/json"}
        ),
        400,
        "ERR_MALFORMED_REQUEST",
    )


def test_json_nested_past_the_interpreter_is_refused(tmp_path: Path) -> None:
    config = ServerConfig(max_body_bytes=4 * 1024 * 1024, max_json_depth=10**6)
    with (
        LiveServer(write_components(tmp_path / "c"), tmp_path, config=config) as server,
        server.client() as client,
    ):
        deep = "[" * 200_000 + "]" * 200_000
        body = error(
            client.post("/v1.0/workflows/dapr/echo/start", content=deep), 400, "ERR_MALFORMED_REQUEST"
        )
        assert "nested too deeply" in body["message"]


def test_wait_bound_follows_the_config(small: httpx.Client) -> None:
    body = error(small.get("/v1.0/workflows/dapr/x/wait?timeout=3"), 400, "ERR_INVALID_ARGUMENT")
    assert "2" in body["message"]
    maximum = small.get("/openapi.json").json()["paths"]["/v1.0/workflows/{component}/{instance_id}/wait"]
    timeout = next(p for p in maximum["get"]["parameters"] if p["name"] == "timeout")
    assert timeout["schema"]["maximum"] == 2


def test_payload_round_trips_through_json(small: httpx.Client) -> None:
    payload = {"text": "ünïcode ✓", "n": 1.5, "list": [True, None]}
    response = small.post("/v1.0/workflows/dapr/echo/start", json=payload)
    done = small.get(
        f"/v1.0/workflows/dapr/{response.json()['instanceID']}/wait", params={"timeout": 2}
    ).json()
    assert json.loads(done["properties"]["dapr.workflow.output"]) == payload
