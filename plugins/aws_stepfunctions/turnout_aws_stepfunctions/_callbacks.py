"""raise_event on Step Functions: find the task waiting for a task token in the execution's history.

Step Functions has no external events; its way to wait for the outside world
is the callback pattern: a Task state whose resource ends in
``.waitForTaskToken`` pauses until someone calls SendTaskSuccess or
SendTaskFailure with the token Step Functions gave that task. The convention
that ties a Turnout event to such a task (documented in
docs/engines/aws-stepfunctions.md):

- **The event name is the Task state's name.** ``raise_event(id, "approval",
  data)`` completes the oldest open ``.waitForTaskToken`` task of the state
  named ``approval`` with ``data`` as its result (SendTaskSuccess).
- **The event ``<state>.failure`` fails that task** (SendTaskFailure), with
  data ``{"error": ..., "cause": ...}`` (both optional), a string (the cause),
  or nothing. A state whose own name ends in ``.failure`` still gets its
  events: an exact state name always wins.
- **The task passes its token** in its ``Parameters`` under a key named
  ``TaskToken`` or ``token`` (any case, at any depth, e.g.
  ``"MessageBody": {"TaskToken.$": "$$.Task.Token"}``). Step Functions records
  the resolved parameters in the ``TaskScheduled`` event, which is where the
  adapter reads the token: no queue or outside channel is involved.

Everything here is pure: it reads history events as boto3 returns them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from turnout import InvalidArgument

from ._mapping import details_of

FAILURE_SUFFIX = ".failure"
"""An event named ``<state>.failure`` fails the task of ``<state>`` (SendTaskFailure)."""

DEFAULT_FAILURE_ERROR = "Rejected"
"""The error of a task failed by an event whose data names none."""

TOKEN_KEYS = frozenset({"tasktoken", "token"})
"""Parameter names (compared without case) under which a task passes its token."""

MAX_ERROR = 256
MAX_CAUSE = 32_768
MAX_OUTPUT = 262_144

_WAIT_SUFFIX = ".waitForTaskToken"
_CLOSING = frozenset(
    {
        "TaskSucceeded",
        "TaskFailed",
        "TaskTimedOut",
        "TaskSubmitFailed",
        "TaskStartFailed",
        "TaskStateAborted",
        "TaskStateExited",
    }
)
_EXECUTION_OPENED = frozenset({"ExecutionStarted", "ExecutionRedriven"})
_EXECUTION_CLOSED = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)


@dataclass(frozen=True)
class WaitingTask:
    """A ``.waitForTaskToken`` task that has been scheduled and has not finished."""

    event_id: int
    state: str
    """The Task state's name: the event name that reaches it."""
    token: str | None
    """The task token found in its parameters, or None when the task passes it under another key."""
    resource: str


def execution_closed(events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the history's last execution-level event ends the execution (a redrive reopens it)."""
    closed = False
    for event in sorted(events, key=lambda e: e["id"]):
        if event["type"] in _EXECUTION_CLOSED:
            closed = True
        elif event["type"] in _EXECUTION_OPENED:
            closed = False
    return closed


def waiting_tasks(events: Iterable[Mapping[str, Any]]) -> list[WaitingTask]:
    """Open ``.waitForTaskToken`` tasks, oldest first.

    Step Functions links each event to the one before it in its own branch
    (``previousEventId``): TaskStateEntered -> TaskScheduled -> TaskStarted
    -> TaskSubmitted -> TaskSucceeded. A scheduled task is closed when some
    closing event (succeeded, failed, timed out, aborted, exited) leads back
    to it before any other TaskScheduled; its state is the nearest
    ``...StateEntered`` event up the same chain. This holds inside Parallel
    branches and Map iterations, whose events interleave.
    """
    by_id = {event["id"]: event for event in events}

    def up(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
        previous = event.get("previousEventId")
        return by_id.get(previous) if previous else None

    closed: set[int] = set()
    for event in by_id.values():
        if event["type"] not in _CLOSING:
            continue
        node = up(event)
        while node is not None and node["type"] != "TaskScheduled":
            if node["type"].endswith("StateEntered"):
                node = None  # this state's task was never scheduled by this chain
                break
            node = up(node)
        if node is not None:
            closed.add(node["id"])

    found = []
    for event_id in sorted(by_id):
        event = by_id[event_id]
        if event["type"] != "TaskScheduled" or event_id in closed:
            continue
        details = details_of(event)
        resource = str(details.get("resource", ""))
        if not resource.endswith(_WAIT_SUFFIX):
            continue
        state = _state_of(event, up)
        if state is None:
            continue
        found.append(WaitingTask(event_id, state, find_token(details.get("parameters")), resource))
    return found


def _state_of(event: Mapping[str, Any], up: Any) -> str | None:
    node = up(event)
    while node is not None:
        if node["type"].endswith("StateEntered"):
            name = details_of(node).get("name")
            return name if isinstance(name, str) else None
        node = up(node)
    return None


def find_token(parameters: Any) -> str | None:
    """The task token in a task's resolved parameters (a JSON text or a decoded value), or None."""
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters)
        except json.JSONDecodeError:
            return None
    tokens: list[str] = []
    _collect_tokens(parameters, tokens, depth=0)
    return tokens[0] if tokens else None


def _collect_tokens(value: Any, tokens: list[str], depth: int) -> None:
    if depth > 32:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() in TOKEN_KEYS and isinstance(item, str) and item:
                tokens.append(item)
            else:
                _collect_tokens(item, tokens, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect_tokens(item, tokens, depth + 1)
    elif isinstance(value, str) and value[:1] in "{[":
        # A message body built with States.JsonToString still carries the token inside.
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return
        _collect_tokens(decoded, tokens, depth + 1)


def choose(name: str, waiting: list[WaitingTask]) -> tuple[list[WaitingTask], bool]:
    """The open tasks an event named ``name`` may complete, oldest first, and whether it succeeds them.

    An exact state name wins; otherwise ``<state>.failure`` targets ``<state>``
    for a failure.
    """
    exact = [task for task in waiting if task.state == name]
    if exact or not name.endswith(FAILURE_SUFFIX) or name == FAILURE_SUFFIX:
        return exact, True
    state = name[: -len(FAILURE_SUFFIX)]
    return [task for task in waiting if task.state == state], False


def success_output(data: Any) -> str:
    """The JSON text SendTaskSuccess delivers as the task's result."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_OUTPUT:
        raise InvalidArgument(
            "event data",
            f"<{len(text.encode())} bytes of JSON>",
            f"at most {MAX_OUTPUT} bytes of JSON (Step Functions' limit for a task result)",
        )
    return text


def failure_fields(data: Any) -> tuple[str, str | None]:
    """SendTaskFailure's error and cause from the data of a ``<state>.failure`` event.

    Accepted shapes: None (error ``Rejected``), a string (the cause), or an
    object with optional ``error`` (a string of at most 256 characters) and
    ``cause`` (a string, or any JSON value, sent as JSON text).
    """
    expected = (
        'null, a string (the cause), or {"error": "<at most 256 characters>", "cause": <string or JSON>}'
    )
    if data is None:
        return DEFAULT_FAILURE_ERROR, None
    if isinstance(data, str):
        error, cause = DEFAULT_FAILURE_ERROR, data
    elif isinstance(data, Mapping):
        unknown = sorted(set(data) - {"error", "cause"})
        if unknown:
            raise InvalidArgument("failure event data", data, f"{expected}; unknown key(s) {unknown}")
        error = data.get("error", DEFAULT_FAILURE_ERROR)
        if not isinstance(error, str) or not error:
            raise InvalidArgument("failure event data 'error'", error, "a non-empty string")
        raw = data.get("cause")
        cause = raw if raw is None or isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    else:
        raise InvalidArgument("failure event data", data, expected)
    if len(error) > MAX_ERROR:
        raise InvalidArgument("failure event data 'error'", error, f"at most {MAX_ERROR} characters")
    if cause is not None and len(cause) > MAX_CAUSE:
        raise InvalidArgument(
            "failure event data 'cause'", f"<{len(cause)} characters>", f"at most {MAX_CAUSE} characters"
        )
    return error, cause
