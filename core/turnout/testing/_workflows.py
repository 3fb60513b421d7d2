"""The workflows the conformance suite runs, for engines that run Turnout code.

Each one plays a *role* that the suite relies on. Engines that do not run
Turnout code (Step Functions, Logic Apps) deploy workflows of their own that
behave the same way and name them in :class:`~turnout.testing.ConformanceTarget`.
The contract of each role is in the docstring of its name constant below.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .._tasks import WorkflowCancelled, when_any
from .._workflows import ActivityContext, WorkflowContext, Workflows

ECHO = "conformance_echo"
"""Completes at once with its input as its output."""

WAITER = "conformance_waiter"
"""Waits for the external event ``go`` and completes with that event's data."""

SLEEPER = "conformance_sleeper"
"""Stays RUNNING (a timer of an hour, or the event ``wake``) until terminated or cancelled.

When cancelled, it sets its custom status to ``{"cancelled": <reason>}`` before
it ends, which shows that cancel (unlike terminate) lets workflow code run.
"""

FAILING = "conformance_failing"
"""Fails at once with ``ValueError(FAILURE_MESSAGE)``."""

ACTIVITY = "conformance_activity"
"""Calls the activity ``conformance_double`` on its (integer) input and completes with the result."""

CUSTOM_STATUS = "conformance_custom_status"
"""Sets its input as its custom status, waits for the event ``go``, then completes with its input."""

PARENT = "conformance_parent"
"""Runs a child workflow and completes with the child's id and output.

Input: ``{"workflow": <name>, "input": <child input>}``. The child's instance
id is ``<parent id>-child``. Output: ``{"instance_id": <child id>, "output":
<child output>}``.
"""

DOUBLE_ACTIVITY = "conformance_double"
"""The activity of :data:`ACTIVITY`: returns twice its input."""

EVENT_NAME = "go"
"""The event that :data:`WAITER` and :data:`CUSTOM_STATUS` wait for."""

FAILURE_MESSAGE = "conformance: this workflow fails on purpose"
"""The message of the ValueError that :data:`FAILING` raises."""

SLEEP_FOR = timedelta(hours=1)
"""How long :data:`SLEEPER` sleeps: longer than any test."""


def child_instance_id(parent_instance_id: str) -> str:
    """The id :data:`PARENT` gives its child."""
    return f"{parent_instance_id}-child"


def conformance_workflows(workflows: Workflows | None = None) -> Workflows:
    """A :class:`turnout.Workflows` holding the conformance workflows.

    Pass your own registry to add them to it (the names all start with
    ``conformance_``); by default a new registry is returned.
    """
    wf = workflows if workflows is not None else Workflows()

    @wf.activity(name=DOUBLE_ACTIVITY)
    def double(ctx: ActivityContext, value: int) -> int:
        return value * 2

    @wf.workflow(name=ECHO)
    def echo(ctx: WorkflowContext, value: Any) -> Any:
        return value

    @wf.workflow(name=WAITER)
    def waiter(ctx: WorkflowContext, value: Any) -> Any:
        data = yield ctx.wait_for_external_event(EVENT_NAME)
        return data

    @wf.workflow(name=SLEEPER)
    def sleeper(ctx: WorkflowContext, value: Any) -> Any:
        wake = ctx.wait_for_external_event("wake")
        try:
            winner = yield when_any([wake, ctx.create_timer(SLEEP_FOR)])
        except WorkflowCancelled as cancelled:
            ctx.set_custom_status({"cancelled": cancelled.reason})
            raise
        return "woken" if winner is wake else "slept"

    @wf.workflow(name=FAILING)
    def failing(ctx: WorkflowContext, value: Any) -> Any:
        raise ValueError(FAILURE_MESSAGE)

    @wf.workflow(name=ACTIVITY)
    def activity(ctx: WorkflowContext, value: int) -> Any:
        result = yield ctx.call_activity(DOUBLE_ACTIVITY, input=value)
        return result

    @wf.workflow(name=CUSTOM_STATUS)
    def custom_status(ctx: WorkflowContext, value: Any) -> Any:
        ctx.set_custom_status(value)
        yield ctx.wait_for_external_event(EVENT_NAME)
        return value

    @wf.workflow(name=PARENT)
    def parent(ctx: WorkflowContext, value: dict[str, Any]) -> Any:
        child_id = child_instance_id(ctx.instance_id)
        output = yield ctx.call_child_workflow(
            value["workflow"], input=value.get("input"), instance_id=child_id
        )
        return {"instance_id": child_id, "output": output}

    return wf
