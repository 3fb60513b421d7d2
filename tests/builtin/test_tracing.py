"""OpenTelemetry: a span per management call, per turn and per activity, in one linked tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import turnout

trace = pytest.importorskip("opentelemetry.trace")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

wf = turnout.Workflows()
SEEN: dict[str, int] = {}


@wf.activity
def record(ctx: turnout.ActivityContext, x: int) -> int:
    """Activities see their own span as the current one."""
    SEEN[f"{ctx.instance_id}/{ctx.task_id}"] = trace.get_current_span().get_span_context().trace_id
    return x + 1


@wf.workflow
def kid(ctx: turnout.WorkflowContext, x: int) -> Any:
    return (yield ctx.call_activity(record, input=x))


@wf.workflow
def traced(ctx: turnout.WorkflowContext, x: int) -> Any:
    a = yield ctx.call_activity(record, input=x)
    b = yield ctx.call_child_workflow(kid, input=a)
    return b


def test_the_caller_trace_continues_through_turns_activities_and_children(
    span_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    exporter = span_exporter
    tracer = trace.get_tracer("test")
    with turnout.Runtime(workflows=wf, working_dir=tmp_path) as rt:
        client = rt.client()
        with tracer.start_as_current_span("caller") as caller:
            iid = client.start(traced, 1, instance_id="t1")
        assert client.wait(iid, timeout=10).output == 3
    spans = {s.context.span_id: s for s in exporter.get_finished_spans()}
    trace_id = caller.get_span_context().trace_id
    mine = [s for s in spans.values() if s.context.trace_id == trace_id]
    names = sorted(s.name for s in mine)
    assert names.count("turnout start") == 1
    assert names.count("activity record") == 2
    assert "turn traced" in names and "turn kid" in names
    by_name = {s.name: s for s in mine}

    def parent_name(name: str) -> str:
        parent = by_name[name].parent
        assert parent is not None, f"{name} has no parent"
        return spans[parent.span_id].name

    assert parent_name("turnout start") == "caller"
    assert all(spans[s.parent.span_id].name == "turnout start" for s in mine if s.name == "turn traced")
    assert all(
        s.parent is not None and spans[s.parent.span_id].name.startswith("turn ")
        for s in mine
        if s.name == "activity record"
    )
    assert all(spans[s.parent.span_id].name == "turn traced" for s in mine if s.name == "turn kid")
    assert SEEN["t1/0"] == trace_id  # the activity's own code runs inside its span


def test_management_calls_have_spans(span_exporter: InMemorySpanExporter, tmp_path: Path) -> None:
    exporter = span_exporter
    with turnout.Runtime(workflows=wf, working_dir=tmp_path) as rt:
        client = rt.client()
        iid = client.start(kid, 1)
        client.wait(iid, timeout=10)
        client.get(iid)
        client.history(iid)
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"turnout start", "turnout get", "turnout history"} <= names
    get_span = next(s for s in exporter.get_finished_spans() if s.name == "turnout get")
    assert get_span.attributes is not None and get_span.attributes["turnout.instance_id"] == iid


LATE_PROVIDER = """
import sys

import turnout
from fresh_process import twice, wf

with turnout.Runtime(workflows=wf) as rt:
    assert rt.client().wait(rt.client().start(twice, 1), timeout=30).output == 2
    untraced = sorted(m for m in sys.modules if m.startswith("opentelemetry"))

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert rt.client().wait(rt.client().start(twice, 2), timeout=30).output == 4
print(untraced, sorted({s.name for s in exporter.get_finished_spans()}))
"""


def test_an_untraced_process_never_imports_opentelemetry_and_a_provider_set_later_is_used(
    tmp_path: Path,
) -> None:
    from fresh_process import run_script

    # Importing the API costs every process start; nothing had asked for a span.
    out = run_script(tmp_path, LATE_PROVIDER)
    assert out.strip() == "[] ['activity double', 'turn twice', 'turnout start']", out
