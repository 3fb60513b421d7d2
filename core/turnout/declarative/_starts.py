"""Starting independent instances: for ``run.await: false``, schedules and event starts.

The authoring API has no fire-and-forget child workflow, and a scheduled run
must outlive the scheduler that started it (a child would be terminated, and
on the built-in engine purged, with it). So an independent instance is started
by an *activity*, through a :class:`Starter` (a workflow client, or anything
with its ``start``, ``get`` and ``raise_event``), under an id the caller
derives deterministically: an activity that runs twice starts the instance
once (``InstanceExists`` is success).

A definition with a schedule (1.0 ``schedule``, 0.8 ``start.schedule``) or a
0.8 event start state also gets a *scheduler*: a workflow named
``<workflow name>:schedule`` whose one instance per definition name,
``<name>__schedule``, fires the runs (see ``_scheduler``). The built-in
component starts it; :func:`start_schedule` does it on any engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import turnout

from ._definition import Definition
from ._schedule import Schedule, normalize_cron, positive_duration, schedule_keys

START_ACTIVITY = "turnout.declarative.start"
STATUS_ACTIVITY = "turnout.declarative.status"
SCHEDULER_SUFFIX = ":schedule"
"""The scheduler of workflow ``W`` is the workflow ``W:schedule``."""

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PREFIX_LIMIT = 40  # room for "__" and a time stamp or a random part within Dapr's 64 characters
_ID_NAMESPACE = uuid.UUID("5d1f0c1e-7a53-4c61-9d0e-2a3c7b6f9e11")

#: How the start activity is retried before the caller fails: a store or a server that is briefly away.
START_RETRY = turnout.RetryPolicy(
    max_attempts=8,
    first_retry_interval=timedelta(seconds=1),
    max_retry_interval=timedelta(minutes=1),
    non_retryable_errors=("NoStarterError",),
)


@runtime_checkable
class Starter(Protocol):
    """What starts and looks at independent instances; ``turnout.AsyncWorkflowClient`` is one.

    ``start`` must raise ``turnout.InstanceExists`` when the id is taken.
    """

    async def start(self, workflow: str, input: Any = None, *, instance_id: str | None = None) -> str:
        """Start ``workflow`` under ``instance_id``."""
        ...

    async def get(self, instance_id: str) -> turnout.WorkflowState | None:
        """The instance's state, or None."""
        ...

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Deliver an event to the instance."""
        ...


class NoStarterError(RuntimeError):
    """An instance had to be started and the registry has no :class:`Starter`."""


class ClientStarter:
    """A :class:`Starter` bound to a workflow client once there is one.

    ``register`` needs the starter before the runtime runs, and the client
    exists only after: pass ``ClientStarter()`` to ``register``, then
    ``starter.bind(runtime.client(name))`` (an *async* client: the activities
    run on the runtime's loop).
    """

    def __init__(self, client: Starter | None = None) -> None:
        self._client = client

    def bind(self, client: Starter | None) -> None:
        """Start instances through ``client`` from now on (None: through nothing, until bound again)."""
        self._client = client

    def _bound(self) -> Starter:
        if self._client is None:
            raise NoStarterError(
                "this ClientStarter is not bound to a client yet: call starter.bind(runtime.client(...)) "
                "once the runtime runs"
            )
        return self._client

    async def start(self, workflow: str, input: Any = None, *, instance_id: str | None = None) -> str:
        """Start through the bound client."""
        return await self._bound().start(workflow, input, instance_id=instance_id)

    async def get(self, instance_id: str) -> turnout.WorkflowState | None:
        """Read through the bound client."""
        return await self._bound().get(instance_id)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise through the bound client."""
        await self._bound().raise_event(instance_id, name, data)


# -- ids -------------------------------------------------------------------------------------------


def instance_prefix(name: str) -> str:
    """The start of every id a definition's scheduler gives: the name, kept to Dapr's id characters.

    Other characters become ``-``; a name longer than 40 characters is cut and
    ends with 8 hex digits of its SHA-256, so ids stay unique and short.
    """
    safe = _ID_UNSAFE.sub("-", name) or "workflow"
    if len(safe) > _PREFIX_LIMIT:
        safe = f"{safe[:31]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return safe


def own_name(definition: Definition) -> str:
    """The name the document gives itself (1.0 ``document.name``, 0.8 ``id``), even under another name.

    The built-in engine registers each version as ``name@version``; the
    scheduler and its runs are named after the definition, not the version.
    """
    document = definition.document
    if definition.dialect == "1.0":
        return str(document["document"]["name"])
    return str(document.get("id", document.get("key", definition.name)))


def scheduler_id(name: str) -> str:
    """The instance id of the scheduler of definition ``name``: ``<name>__schedule``."""
    return f"{instance_prefix(name)}__schedule"


def timed_run_id(name: str, fire_at: datetime) -> str:
    """A scheduled run's id: ``<name>__<UTC fire time>``, e.g. ``report__20261126T150000Z``."""
    stamp = fire_at.strftime("%Y%m%dT%H%M%S")
    if fire_at.microsecond % 1000:
        stamp += f"{fire_at.microsecond:06d}"
    elif fire_at.microsecond:
        stamp += f"{fire_at.microsecond // 1000:03d}"
    return f"{instance_prefix(name)}__{stamp}Z"


def fresh_run_id(ctx: turnout.WorkflowContext, name: str) -> str:
    """A new id for an instance the workflow starts, the same on replay: ``<name>__<20 hex digits>``.

    Drawn from ``ctx.new_uuid()`` and the workflow clock, so a run that
    continues as new (whose uuids start over) never draws an id again.
    """
    seed = f"{ctx.new_uuid()}/{ctx.current_utc_datetime.isoformat()}"
    return f"{instance_prefix(name)}__{uuid.uuid5(_ID_NAMESPACE, seed).hex[:20]}"


def start_request(
    workflow: str, input: Any, instance_id: str, events: list[tuple[str, Any]] | None = None
) -> dict[str, Any]:
    """The start activity's input; ``events`` are raised into the new instance once it exists."""
    return {"workflow": workflow, "input": input, "instance_id": instance_id, "events": events or []}


# -- the activities ----------------------------------------------------------------------------


def install_starts(workflows: turnout.Workflows, starter_of: Callable[[], Starter | None]) -> None:
    """Register the start and status activities; ``starter_of()`` is asked each time (bound late)."""

    def starter() -> Starter:
        found = starter_of()
        if found is None:
            raise NoStarterError(
                "this registry has no starter: pass register(..., starter=...) (a turnout.AsyncWorkflowClient"
                " or turnout.declarative.ClientStarter) so that declarative workflows can start instances"
            )
        return found

    async def start(ctx: turnout.ActivityContext, request: dict[str, Any]) -> str:
        instance_id = str(request["instance_id"])
        with contextlib.suppress(turnout.InstanceExists):  # an earlier attempt of this activity started it
            await starter().start(str(request["workflow"]), request.get("input"), instance_id=instance_id)
        # Raised again if an attempt died after raising them: an instance ignores what it does not wait for.
        for name, data in request.get("events") or []:
            await starter().raise_event(instance_id, str(name), data)
        return instance_id

    async def status(ctx: turnout.ActivityContext, instance_id: str) -> str | None:
        state = await starter().get(instance_id)
        return None if state is None else state.runtime_status.value

    workflows.activity(start, name=START_ACTIVITY)
    workflows.activity(status, name=STATUS_ACTIVITY)


# -- what a definition needs -----------------------------------------------------------------------


def schedule_of(definition: Definition) -> Schedule | None:
    """The definition's schedule (1.0 ``schedule``, 0.8 ``start.schedule`` or event start), or None.

    The definition was validated when it was loaded, so this does not fail.
    """
    document = definition.document
    if definition.dialect == "1.0":
        spec = document.get("schedule")
        if not isinstance(spec, Mapping):
            return None
        spec = schedule_keys(spec)
        if "every" in spec or "after" in spec:
            kind = "every" if "every" in spec else "after"
            return Schedule(kind, period=positive_duration(spec[kind]))
        if "cron" in spec:
            return Schedule("cron", cron=normalize_cron(spec["cron"]))
        return Schedule("on")
    from ._v08_model import EventState
    from ._v08_parse import parse_workflow

    workflow = parse_workflow(document, definition.source)
    if workflow.start_schedule is not None:
        return workflow.start_schedule.schedule()
    if isinstance(workflow.state(workflow.start_state), EventState):
        return Schedule("event")
    return None


def awaitless_runs(document: Any, path: str = "") -> Iterator[str]:
    """The JSON pointers of the ``run`` tasks with ``await: false`` in a 1.0 document."""
    if isinstance(document, Mapping):
        run = document.get("run")
        if isinstance(run, Mapping) and run.get("await") is False and "workflow" in run:
            yield f"{path}/run/await"
        for key, value in document.items():
            yield from awaitless_runs(value, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from awaitless_runs(value, f"{path}/{index}")


def starts_instances(definition: Definition) -> bool:
    """Whether the definition starts instances itself: a schedule, an event start, ``run.await: false``."""
    if schedule_of(definition) is not None:
        return True
    return definition.dialect == "1.0" and next(awaitless_runs(definition.document), None) is not None


# -- the scheduler instance ------------------------------------------------------------------------


async def start_schedule(
    client: turnout.AsyncWorkflowClient, definition: Definition, *, workflow_name: str | None = None
) -> str | None:
    """Start the scheduler of ``definition`` (registered as ``workflow_name``); returns its instance id.

    The scheduler's id, ``<name>__schedule``, is the same for every version,
    so there is one per definition name: when it runs another version's
    scheduler, that one is terminated and replaced (the runs it started are
    independent instances and go on). When it already runs this version's
    scheduler, or a scheduler of this version was stopped by hand, it is left
    as it is (a failed one is started again). A definition without a schedule
    stops the scheduler an older version left running and returns None. An
    instance of another workflow under that id is never touched: InstanceExists.

    Events that should start instances (1.0 ``schedule.on``, a 0.8 event
    start state) are raised to the returned id, under their CloudEvent type.
    """
    workflow_name = workflow_name or definition.name
    instance_id = scheduler_id(own_name(definition))
    scheduler = workflow_name + SCHEDULER_SUFFIX
    current = await client.get(instance_id)
    foreign = current is not None and not current.workflow_name.endswith(SCHEDULER_SUFFIX)
    running = current is not None and not current.runtime_status.is_terminal
    if schedule_of(definition) is None:
        if running and not foreign:
            await client.terminate(instance_id, f"the latest version, {workflow_name}, has no schedule")
        return None
    if current is not None and foreign:  # not a scheduler: not ours to replace
        raise turnout.InstanceExists(instance_id, current.runtime_status.value)
    if current is not None:
        if current.workflow_name == scheduler and current.runtime_status is not turnout.RuntimeStatus.FAILED:
            return instance_id
        if running:
            await client.terminate(instance_id, f"superseded by {scheduler}")
    with contextlib.suppress(turnout.InstanceExists):  # another worker started it meanwhile
        await client.start(scheduler, None, instance_id=instance_id, replace=current is not None)
    return instance_id
