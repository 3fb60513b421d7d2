"""The scheduler: a durable workflow that starts a definition's instances when its schedule says.

One instance per definition name (``<name>__schedule``, see ``_starts``) runs
the workflow ``<workflow name>:schedule``. It is ordinary Turnout workflow
code, so it runs on every engine that runs Turnout workflows: durable timers
for ``every``, ``cron`` and ``after``, waits for external events for ``on``
and 0.8 event starts, and the start activity for each run, under an id derived
from the fire time (or drawn deterministically for event runs), so a run is
started once however often a step is retried. It continues as new after a
batch of runs, so its history stays short; what it must remember travels in
its input.

Time-based runs get ``{}`` as input; a 1.0 ``schedule.on`` run gets the list
of the CloudEvents that triggered it (as the spec says); a 0.8 event start
state's run is started with ``{}`` and the triggering events are raised into
it, so its start state consumes them as it always does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import turnout

from ._definition import Definition, Settings
from ._faults import Fault, failure_exception
from ._schedule import Schedule, schedule_keys
from ._starts import (
    START_ACTIVITY,
    START_RETRY,
    STATUS_ACTIVITY,
    fresh_run_id,
    own_name,
    start_request,
    timed_run_id,
)

log = logging.getLogger("turnout.declarative")
Steps = Generator[Any, Any, Any]

#: Runs (or triggering events) one generation of a scheduler handles before it continues as new.
RUNS_PER_GENERATION = 100
#: Status checks of an ``after`` run one generation makes before it continues as new.
POLLS_PER_GENERATION = 100
#: How often an ``after`` scheduler looks whether its run has finished: from the first wait to the last.
POLL_FIRST = timedelta(seconds=1)
POLL_MAX = timedelta(minutes=1)
_TERMINAL = {status.value for status in turnout.TERMINAL_STATUSES}


def scheduler_function(
    definition: Definition, workflow_name: str, schedule: Schedule, settings: Settings
) -> Callable[..., Steps]:
    """The scheduler workflow of ``definition``, registered as ``workflow_name``: a generator function."""

    def scheduler(ctx: turnout.WorkflowContext, state: Any = None) -> Steps:
        state = dict(state or {})
        try:
            if schedule.kind in ("every", "cron"):
                return (yield from _timed(ctx, definition, workflow_name, schedule, state))
            if schedule.kind == "after":
                return (yield from _after(ctx, definition, workflow_name, schedule, state))
            if schedule.kind == "on":
                return (yield from _on_events(ctx, definition, workflow_name, settings))
            return (yield from _event_start(ctx, definition, workflow_name, state))
        except Fault as exc:  # a filter's expression failed on an event: the spec's fault, as for an instance
            raise failure_exception(exc.fault) from None

    scheduler.__name__ = scheduler.__qualname__ = f"declarative_schedule:{workflow_name}"
    scheduler.__doc__ = f"Starts instances of '{workflow_name}' as its schedule ({schedule.kind}) says."
    return scheduler


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _timed(
    ctx: turnout.WorkflowContext,
    definition: Definition,
    workflow_name: str,
    schedule: Schedule,
    state: dict[str, Any],
) -> Steps:
    """``every``, ``cron``, 0.8 ``interval``: a run at each fire time; fires missed meanwhile make one run."""
    # Periods count from a whole second, so that run ids (fire times) read well.
    started = ctx.current_utc_datetime.replace(microsecond=0)
    anchor = _moment(state["anchor"]) if "anchor" in state else started
    fired = int(state.get("fired", 0))
    due = _moment(state["next"]) if "next" in state else schedule.following(ctx.current_utc_datetime, anchor)
    for _ in range(RUNS_PER_GENERATION):
        if due is None or (schedule.count is not None and fired >= schedule.count):
            ctx.set_custom_status({"fired": fired, "next": None})
            return {"fired": fired}  # the schedule has no fire time left
        ctx.set_custom_status({"fired": fired, "next": _iso(due)})
        if due > ctx.current_utc_datetime:
            yield ctx.create_timer(due)
        run = start_request(workflow_name, {}, timed_run_id(own_name(definition), due))
        yield ctx.call_activity(START_ACTIVITY, input=run, retry=START_RETRY)
        fired += 1
        due = schedule.following(max(due, ctx.current_utc_datetime), anchor)
    if due is None:
        return {"fired": fired}
    ctx.continue_as_new({"anchor": _iso(anchor), "fired": fired, "next": _iso(due)})
    return None


def _after(
    ctx: turnout.WorkflowContext,
    definition: Definition,
    workflow_name: str,
    schedule: Schedule,
    state: dict[str, Any],
) -> Steps:
    """``after``: a run now, and each next one that long after the previous one has finished."""
    assert schedule.period is not None
    fired = int(state.get("fired", 0))
    running: str | None = state.get("running")
    poll = timedelta(seconds=float(state.get("poll", POLL_FIRST.total_seconds())))
    polls = 0
    for _ in range(RUNS_PER_GENERATION):
        if running is None:
            running = timed_run_id(own_name(definition), ctx.current_utc_datetime)
            yield ctx.call_activity(
                START_ACTIVITY, input=start_request(workflow_name, {}, running), retry=START_RETRY
            )
            fired += 1
            poll = POLL_FIRST
        ctx.set_custom_status({"fired": fired, "running": running})
        while True:
            status = yield ctx.call_activity(STATUS_ACTIVITY, input=running, retry=START_RETRY)
            if status is None or status in _TERMINAL:
                break
            if polls >= POLLS_PER_GENERATION:
                ctx.continue_as_new({"fired": fired, "running": running, "poll": poll.total_seconds()})
                return None
            yield ctx.create_timer(poll)
            polls += 1
            poll = min(poll * 2, POLL_MAX)
        running = None
        ctx.set_custom_status({"fired": fired, "next": _iso(ctx.current_utc_datetime + schedule.period)})
        yield ctx.create_timer(schedule.period)
    ctx.continue_as_new({"fired": fired})
    return None


def _taken(waits: dict[str, turnout.Task[Any]]) -> bool:
    """Whether a wait has taken an event not handled yet: it would be lost if the run continued as new.

    Events that no wait has taken yet are carried over by the engine.
    """
    return any(task.is_complete for task in waits.values())


def _on_events(
    ctx: turnout.WorkflowContext, definition: Definition, workflow_name: str, settings: Settings
) -> Steps:
    """1.0 ``schedule.on``: a run each time the consumption strategy is met; its input is the events."""
    from ._v1_run import _Interpreter, _Scope

    interpreter = _Interpreter(ctx, definition, settings, None)
    on = schedule_keys(definition.document["schedule"])["on"]
    mode = next(m for m in ("one", "any", "all") if m in on)
    filters = [on["one"]] if mode == "one" else list(on[mode])
    variables = interpreter.variables(_Scope())
    waits: dict[str, turnout.Task[Any]] = {}
    ctx.set_custom_status({"listening": sorted({str(f["with"]["type"]) for f in filters})})
    handled = 0
    while handled < RUNS_PER_GENERATION or _taken(waits):
        handled += 1
        try:
            events = yield from interpreter._consume(
                filters, mode, on.get("until"), "/schedule/on", None, variables, waits
            )
        except Fault as exc:  # a filter's expression failed on an event: that event starts nothing
            if not ctx.is_replaying:
                log.warning("%s: dropped an event: %s", ctx.instance_id, exc.fault.get("detail"))
            continue
        run = start_request(workflow_name, events, fresh_run_id(ctx, own_name(definition)))
        yield ctx.call_activity(START_ACTIVITY, input=run, retry=START_RETRY)
    ctx.continue_as_new(None)
    return None


def _event_start(
    ctx: turnout.WorkflowContext, definition: Definition, workflow_name: str, state: dict[str, Any]
) -> Steps:
    """0.8 event start state: matching events start instances, and are raised into them.

    With ``exclusive: true`` (the default) each matching event starts one
    instance. With ``exclusive: false`` the state needs one event of each of
    its definitions: they are gathered here, by the values of their
    correlation attributes, and an instance starts once a group is complete.
    """
    from ._v08_events import _UNJUDGED, EventInbox, as_cloud_event
    from ._v08_model import EventState
    from ._v08_parse import parse_workflow

    workflow = parse_workflow(definition.document, definition.source)
    start = workflow.state(workflow.start_state)
    assert isinstance(start, EventState)
    names = list(dict.fromkeys(name for on in start.on_events for name in on.event_refs))
    wanted = [workflow.event(name) for name in names]
    types = sorted({str(event.type) for event in wanted})
    inbox = EventInbox(ctx, workflow, None)  # for its matching rules only: no correlation bound
    pending: dict[str, dict[str, Any]] = dict(state.get("pending") or {})
    waits: dict[str, turnout.Task[Any]] = {}
    ctx.set_custom_status({"listening": types})
    handled = 0
    while handled < RUNS_PER_GENERATION or _taken(waits):
        handled += 1
        for event_type in types:
            if event_type not in waits:
                waits[event_type] = ctx.wait_for_external_event(event_type)
        winner = yield turnout.when_any([waits[t] for t in types])
        event_type = next(t for t in types if waits[t] is winner)
        del waits[event_type]
        event = as_cloud_event(event_type, winner.get_result())
        matched = [d for d in wanted if inbox.matches(d, event, _UNJUDGED)]
        if not matched:
            if not ctx.is_replaying:
                log.info(
                    "%s: dropped a %r event (source %r, id %r): it matches no event of start state %r",
                    ctx.instance_id,
                    event_type,
                    event.get("source"),
                    event.get("id"),
                    start.name,
                )
            continue
        if start.exclusive:
            group = [event]
        else:
            key = json.dumps(
                sorted(
                    (rule.context_attribute_name, event.get(rule.context_attribute_name))
                    for rule in matched[0].correlation
                    if rule.context_attribute_value is None
                )
            )
            gathered = pending.setdefault(key, {})
            for found in matched:
                gathered.setdefault(found.name, event)
            if not all(name in gathered for name in names):
                continue
            del pending[key]
            group = list({json.dumps(e, sort_keys=True): e for e in (gathered[n] for n in names)}.values())
        run = start_request(
            workflow_name, {}, fresh_run_id(ctx, own_name(definition)), [(str(e["type"]), e) for e in group]
        )
        yield ctx.call_activity(START_ACTIVITY, input=run, retry=START_RETRY)
    ctx.continue_as_new({"pending": pending})
    return None
