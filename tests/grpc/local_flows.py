"""Workflows hosted in the server's own process, beside the SDK worker's remote ones."""

from __future__ import annotations

from typing import Any

import turnout

wf = turnout.Workflows()


@wf.activity
def double(ctx: turnout.ActivityContext, value: int) -> int:
    return value * 2


@wf.workflow
def mixed(ctx: turnout.WorkflowContext, value: int) -> Any:
    """In-process code that calls an activity only the remote worker has, and one of its own."""
    squared = yield ctx.call_activity("square", input=value)
    doubled = yield ctx.call_activity(double, input=squared)
    child = yield ctx.call_child_workflow("child", input=value)
    return {"squared": squared, "doubled": doubled, "remote_child": child}


@wf.workflow
def gate(ctx: turnout.WorkflowContext, name: str) -> Any:
    """Waits for one event: for the Dapr runtime API's tests."""
    value = yield ctx.wait_for_external_event(name)
    return {"got": value}


@wf.workflow
def tripled(ctx: turnout.WorkflowContext, value: int) -> int:
    """In-process child of a remote parent (sdk_app.py's "parent_of_local")."""
    doubled = yield ctx.call_activity(double, input=value)
    return doubled + value
