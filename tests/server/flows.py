"""Workflows the server tests start, over HTTP, from the CLI and from a subprocess.

Loaded by path (``--workflows tests/server/flows.py:wf``) as well as imported.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import turnout

wf = turnout.Workflows()


@wf.activity
def identity(ctx: turnout.ActivityContext, data: Any) -> Any:
    """Returns its input."""
    return data


@wf.activity
def boom(ctx: turnout.ActivityContext, message: str) -> None:
    """Fails with ``message``."""
    raise ValueError(message)


@wf.workflow
def echo(ctx: turnout.WorkflowContext, data: Any) -> Generator[turnout.Task[Any], Any, Any]:
    """Completes with its input (through an activity)."""
    result = yield ctx.call_activity(identity, input=data)
    return result


@wf.workflow
def waiter(ctx: turnout.WorkflowContext, data: Any) -> Generator[turnout.Task[Any], Any, Any]:
    """Waits for the event ``go``; completes with the input and the event's data."""
    ctx.set_custom_status({"stage": "waiting"})
    got = yield ctx.wait_for_external_event("go")
    ctx.set_custom_status({"stage": "done"})
    return {"input": data, "got": got}


@wf.workflow
def fail(ctx: turnout.WorkflowContext, message: str) -> Generator[turnout.Task[Any], Any, Any]:
    """Fails: its activity raises ValueError(message)."""
    yield ctx.call_activity(boom, input=message or "broken on purpose")
    return None


@wf.workflow(name="OrderProcessingWorkflow")
def order_processing(ctx: turnout.WorkflowContext, order: Any) -> Generator[turnout.Task[Any], Any, Any]:
    """The workflow of Dapr's docs: waits for ApprovalEvent, then completes with the order."""
    ctx.set_custom_status("waiting for approval")
    approval = yield ctx.wait_for_external_event("ApprovalEvent")
    return {"order": order, "approval": approval}
