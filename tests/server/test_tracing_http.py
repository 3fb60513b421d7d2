"""A W3C traceparent sent with a start over HTTP continues the caller's trace into the workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import LiveServer, new_id

pytest.importorskip("opentelemetry.sdk.trace")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_traceparent_continues_into_turns_and_activities(span_exporter: object, tmp_path: Path) -> None:
    with LiveServer(None, tmp_path) as server, server.client() as http:
        iid = new_id()
        started = http.post(
            f"/v1.0/workflows/dapr/echo/start?instanceID={iid}",
            json={"hello": "trace"},
            headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        )
        assert started.status_code == 202, started.text
        done = http.get(f"/v1.0/workflows/dapr/{iid}/wait", params={"timeout": 10})
        assert done.json()["runtimeStatus"] == "COMPLETED"
    spans = span_exporter.get_finished_spans()  # type: ignore[attr-defined]
    ours = [s for s in spans if format(s.context.trace_id, "032x") == TRACE_ID]
    start = next(s for s in ours if s.name == "turnout start")
    assert format(start.parent.span_id, "016x") == CALLER_SPAN  # the caller's span is the parent
    assert any(s.name.startswith("turn ") and s.parent.span_id == start.context.span_id for s in ours)


def test_without_traceparent_a_call_starts_its_own_trace(span_exporter: object, tmp_path: Path) -> None:
    with LiveServer(None, tmp_path) as server, server.client() as http:
        assert http.post(f"/v1.0/workflows/dapr/echo/start?instanceID={new_id()}", json=1).status_code == 202
    spans = span_exporter.get_finished_spans()  # type: ignore[attr-defined]
    [start] = [s for s in spans if s.name == "turnout start"]
    same_trace = [s for s in spans if s.context.trace_id == start.context.trace_id]
    roots = [s for s in same_trace if s.parent is None]
    assert len(roots) == 1  # a new trace, rooted in this process (the server's own request span, if any)
    assert format(start.context.trace_id, "032x") != TRACE_ID
