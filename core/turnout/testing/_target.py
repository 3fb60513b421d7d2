"""What the conformance suite runs against: a started client and the workflows it may start."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

import pytest

from .._plugins import load_registry
from .._runtime import AsyncRuntime, AsyncWorkflowClient
from .._workflows import Workflows
from . import _workflows as roles
from ._workflows import conformance_workflows

ROLES = ("echo", "waiter", "sleeper", "failing", "activity", "custom_status", "parent")
"""The workflow roles a target maps to workflow names (see :mod:`turnout.testing._workflows`)."""


@dataclass
class ConformanceTarget:
    """A started client plus the names of the workflows that play each role.

    A role set to None is one the engine cannot provide; the checks that need
    it skip, with ``reasons[role]`` (or a default) as the reason. For engines
    that run Turnout code, :meth:`for_workflow_code` fills every role with the
    workflows of :func:`conformance_workflows`.

    Attributes:
        client: A client of the component under test, already started.
        echo: Completes at once with its input as its output.
        waiter: Waits for the event ``event_name`` and completes with its data.
        sleeper: Stays RUNNING until terminated or cancelled; on cancel it sets its custom
            status to ``{"cancelled": <reason>}`` before it ends.
        failing: Fails at once with ``failure_message`` (of type ``failure_error_type``).
        activity: Completes with twice its integer input, computed by an activity.
        custom_status: Sets its input as custom status, waits for ``event_name``, returns its input.
        parent: Runs the child ``input["workflow"]`` with ``input["input"]`` and the id
            ``<parent id>-child``; completes with ``{"instance_id": ..., "output": ...}``.
        event_name: The event the waiter and custom-status workflows wait for.
        failure_message: Text that the failing workflow's failure message contains.
        failure_error_type: Its ``failure.error_type``, or None if the engine reports no type.
        timeout: Seconds any single state change may take before a check fails.
        clock_skew: Seconds the engine's clock may differ from this machine's.
        latency: For engines that act on a call at once (like the built-in one): seconds
            within which an idle engine shows the effect of a call; None: not checked.
        restart: For durable engines: stops the component and starts it again on the same
            state, returning the new client (None: the restart check skips).
        reasons: Why a role (or ``restart``) is None, by name, shown in the skip message.
    """

    client: AsyncWorkflowClient
    echo: str | None = None
    waiter: str | None = None
    sleeper: str | None = None
    failing: str | None = None
    activity: str | None = None
    custom_status: str | None = None
    parent: str | None = None
    event_name: str = roles.EVENT_NAME
    failure_message: str = roles.FAILURE_MESSAGE
    failure_error_type: str | None = "ValueError"
    timeout: float = 15.0
    clock_skew: float = 1.0
    latency: float | None = None
    restart: Callable[[], Awaitable[AsyncWorkflowClient]] | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_workflow_code(cls, client: AsyncWorkflowClient, **options: Any) -> ConformanceTarget:
        """A target whose engine runs :func:`conformance_workflows`; ``options`` override fields."""
        names: dict[str, Any] = {
            "echo": roles.ECHO,
            "waiter": roles.WAITER,
            "sleeper": roles.SLEEPER,
            "failing": roles.FAILING,
            "activity": roles.ACTIVITY,
            "custom_status": roles.CUSTOM_STATUS,
            "parent": roles.PARENT,
        }
        names.update(options)
        return cls(client=client, **names)

    @property
    def component_type(self) -> str:
        """The ``spec.type`` of the component under test."""
        return self.client.component.component_type

    def role(self, name: str) -> str:
        """The workflow that plays ``name``; skips the calling test when the target has none."""
        if name not in ROLES:
            raise ValueError(f"unknown role '{name}'; roles are: {', '.join(ROLES)}")
        workflow = getattr(self, name)
        if workflow is None:
            reason = self.reasons.get(name) or "no workflow for it is configured"
            pytest.skip(f"{self.component_type} target has no '{name}' workflow: {reason}")
        return str(workflow)

    def describe(self) -> str:
        """One line naming the component and the roles it plays, for failure messages."""
        played = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.name in ROLES]
        return f"{self.component_type} ({', '.join(played)})"


def in_ci() -> bool:
    """True when the ``CI`` environment variable says this is a CI run (``true`` or ``1``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_server(reason: str) -> NoReturn:
    """Skip the test because a server it needs is not there; in CI (``CI=true``), fail it.

    Use it in a target fixture when the engine's server (a Temporal dev
    server, moto, a database) cannot be reached or started, so that a CI
    machine that lost its server is noticed instead of silently skipping.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing server fails the run instead of skipping)", pytrace=False)
    pytest.skip(reason)


@asynccontextmanager
async def open_client(
    resources: str | os.PathLike[str] | None = None,
    *,
    working_dir: str | os.PathLike[str],
    component: str | None = None,
    plugins: tuple[object, ...] = (),
    workflows: Workflows | None = None,
) -> AsyncIterator[AsyncWorkflowClient]:
    """Run an :class:`~turnout.AsyncRuntime` with the conformance workflows; yield a client.

    Args:
        resources: A component YAML file or folder; None runs the built-in engine.
        working_dir: Where relative paths (SQLite files) go; use ``tmp_path``.
        component: The workflow component to test, when the resources hold several.
        plugins: Plugin modules to register besides the installed ones (for a
            plugin that is not installed, e.g. while developing it).
        workflows: The workflow code to host; by default :func:`conformance_workflows`.
    """
    registry = load_registry(extra_plugins=plugins) if plugins else None
    hosted = workflows if workflows is not None else conformance_workflows()
    async with AsyncRuntime(resources, hosted, working_dir=working_dir, registry=registry) as runtime:
        yield runtime.client(component)
