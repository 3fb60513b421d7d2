"""A W3C traceparent sent with a start over HTTP continues the caller's trace into the workflow."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from .conftest import FLOWS, LiveServer, ServeProcess, new_id

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


def test_otel_variables_configure_export_under_opentelemetry_instrument(tmp_path: Path) -> None:
    """The usual deployment: `opentelemetry-instrument turnout serve` with OTEL_* variables exports spans."""
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    if not instrument.exists():
        pytest.skip("opentelemetry-distro is not installed (pip install opentelemetry-distro)")
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "turnout-test",
    }
    process = ServeProcess("--workflows", f"{FLOWS}:wf", cwd=tmp_path, env=env)
    process.args = [str(instrument), *process.args]
    with process:
        iid = new_id()
        with httpx.Client(base_url=process.url, timeout=30) as http:
            started = http.post(
                f"/v1.0/workflows/dapr/echo/start?instanceID={iid}",
                json="exported",
                headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
            )
            assert started.status_code == 202, started.text
            assert http.get(f"/v1.0/workflows/dapr/{iid}/wait", params={"timeout": 10}).status_code == 200
        process.signal()
        assert process.wait() == 0
    # The console exporter prints each span as JSON: the caller's trace reaches the turns.
    output = process.output
    assert f'"trace_id": "0x{TRACE_ID}"' in output
    assert '"name": "turnout start"' in output and '"name": "turn echo"' in output
