"""Serverless Workflow 0.8 events: matching CloudEvents to definitions, correlation, delivery.

A CloudEvent reaches an instance as ``raise_event(instance_id, name=<type>,
data=<the CloudEvent>)``. Turnout delivers events by name only, so several
0.8 event definitions may share one name (the spec's ``order`` example has
three, told apart by ``source``). The :class:`EventInbox` therefore keeps one
wait per CloudEvent type, takes every event of that type, and decides itself:

- an event that matches no consumed definition of the workflow (type, source,
  correlation) is dropped: an event for another order never advances this one;
- an event the workflow produced itself (by its id) is dropped, so an
  ``eventRef`` action never takes its own trigger for the result;
- any other event is kept until a state asks for it, in arrival order.

Correlation follows the spec: an attribute with a ``contextAttributeValue``
must have that value; one without takes its value from the first event
consumed, and later events must carry the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Mapping
from typing import Any

import turnout

from ._expressions import is_expression
from ._v08_model import EventDef, Workflow08

log = logging.getLogger("turnout.declarative")
_UNJUDGED = object()  # "no state data yet": correlation values written as expressions are not checked


def as_cloud_event(type_: str, data: Any) -> dict[str, Any]:
    """The CloudEvent a raised event carries; bare data is wrapped as the event's data."""
    if isinstance(data, Mapping) and "type" in data and ("specversion" in data or "source" in data):
        return dict(data)
    return {"specversion": "1.0", "type": type_, "data": data}


def source_matches(pattern: str | None, source: Any) -> bool:
    """Whether an event's source fits a definition's ``source``.

    No source in the definition accepts any. ``*`` matches anything and ``+``
    one path segment (``newpatient/+`` accepts ``newpatient/1``); otherwise
    the two must be equal.
    """
    if pattern is None:
        return True
    if not isinstance(source, str):
        return False
    if "*" not in pattern and "+" not in pattern:
        return pattern == source
    regex = "".join("[^/]+" if char == "+" else ".*" if char == "*" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, source) is not None


#: The key of the input a continued run gets when events or correlation values carry over.
CONTINUED = "$turnout.continueAs"


def continued_input(data: Any, events: list[dict[str, Any]], correlation: dict[str, Any]) -> Any:
    """The input of the run that ``continueAs`` starts: ``data``, wrapped with what the inbox carries over.

    Events the instance had received but not consumed live in the inbox's
    buffer, not in the engine (the inbox's waits took them), so the engine's
    ``save_events`` cannot carry them: they travel in the new run's input,
    with the correlation values. With nothing to carry the input is ``data`` itself.
    """
    if not events and not correlation:
        return data
    return {CONTINUED: {"data": data, "events": events, "correlation": correlation}}


def split_continued(raw: Any) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """``(data, events, correlation)`` of a run's input; the inverse of :func:`continued_input`."""
    if isinstance(raw, Mapping) and set(raw) == {CONTINUED} and isinstance(raw[CONTINUED], Mapping):
        carried = raw[CONTINUED]
        return carried.get("data"), list(carried.get("events") or []), dict(carried.get("correlation") or {})
    return raw, [], {}


def payload(definition: EventDef, event: Mapping[str, Any]) -> Any:
    """What the workflow sees of a consumed event: its data, or the whole event (``dataOnly: false``)."""
    return event.get("data") if definition.data_only else dict(event)


class EventInbox:
    """The instance's consumed events: one wait per type, a buffer, correlation keys.

    Deterministic: everything here is derived from the events the history
    delivered, in order, so a replay rebuilds the same buffer and keys.
    """

    def __init__(self, ctx: turnout.WorkflowContext, workflow: Workflow08, evaluate: Any) -> None:
        self._ctx = ctx
        self._workflow = workflow
        self._evaluate = evaluate  # (expression, data) -> value, for contextAttributeValue expressions
        self._waits: dict[str, turnout.Task[Any]] = {}
        self._buffer: list[dict[str, Any]] = []
        self.correlation: dict[str, Any] = {}
        self.produced_ids: set[str] = set()

    # -- matching -----------------------------------------------------------------------------

    def _correlates(self, definition: EventDef, event: Mapping[str, Any], data: Any) -> bool:
        for rule in definition.correlation:
            name = rule.context_attribute_name
            if name not in event:
                return False
            expected = rule.context_attribute_value
            if expected is not None:
                if is_expression(expected):
                    if data is _UNJUDGED:
                        continue  # depends on the state data: judged when a state asks for the event
                    expected = self._evaluate(expected, data)
                if event[name] != expected:
                    return False
            elif name in self.correlation and self.correlation[name] != event[name]:
                return False
        return True

    def matches(self, definition: EventDef, event: Mapping[str, Any], data: Any = None) -> bool:
        """Whether ``event`` is an instance of ``definition`` for this instance."""
        return (
            definition.kind == "consumed"
            and event.get("type") == definition.type
            and source_matches(definition.source, event.get("source"))
            and self._correlates(definition, event, data)
        )

    def _wanted(self, event: Mapping[str, Any]) -> bool:
        if event.get("id") is not None and event.get("id") in self.produced_ids:
            return False
        # Value expressions depend on the state data: judged when a state asks, not here.
        return any(self.matches(d, event, _UNJUDGED) for d in self._workflow.events if d.kind == "consumed")

    def _drain(self) -> None:
        for type_, task in list(self._waits.items()):
            if not task.is_complete:
                continue
            del self._waits[type_]
            if task.is_failed:
                continue
            event = as_cloud_event(type_, task.get_result())
            if self._wanted(event):
                self._buffer.append(event)
            elif not self._ctx.is_replaying:
                log.info(
                    "%s: dropped a %r event (source %r, id %r): it matches no event this instance consumes",
                    self._ctx.instance_id,
                    type_,
                    event.get("source"),
                    event.get("id"),
                )

    # -- continuing as new ---------------------------------------------------------------------

    def unconsumed(self) -> list[dict[str, Any]]:
        """The events received and not yet taken by a state, in arrival order (for ``continueAs``)."""
        self._drain()
        return list(self._buffer)

    def resume(self, events: list[dict[str, Any]], correlation: dict[str, Any]) -> None:
        """Start from what a previous run carried over: its unconsumed events and correlation values."""
        self._buffer = [*events, *self._buffer]
        self.correlation.update(correlation)

    # -- taking events -------------------------------------------------------------------------

    def take(
        self, names: list[str], data: Any, wait: Any
    ) -> Generator[turnout.Task[Any], Any, tuple[str, dict[str, Any]]]:
        """Wait for the first event matching one of the definitions ``names``; returns (name, event).

        ``wait(task)`` is the interpreter's wait, which adds the active deadlines.
        """
        definitions = [self._workflow.event(name) for name in names]
        while True:
            self._drain()
            for index, event in enumerate(self._buffer):
                for definition in definitions:
                    if self.matches(definition, event, data):
                        del self._buffer[index]
                        for rule in definition.correlation:
                            if rule.context_attribute_value is None:
                                self.correlation.setdefault(
                                    rule.context_attribute_name, event.get(rule.context_attribute_name)
                                )
                        self._forget_uncorrelated()
                        return definition.name, event
            tasks = []
            for type_ in sorted({d.type for d in definitions if d.type}):
                if type_ not in self._waits:
                    self._waits[type_] = self._ctx.wait_for_external_event(type_)
                tasks.append(self._waits[type_])
            yield from wait(turnout.when_any(tasks))

    def _forget_uncorrelated(self) -> None:
        """Drop buffered events whose correlation keys now contradict the instance's."""
        self._buffer = [event for event in self._buffer if self._wanted(event)]
