"""Dapr's JSON on the wire, shared by the server and the CLI client.

The server renders Turnout's models with these functions and the client reads
them back with their inverses, so the two can never disagree on a field name,
a time format or how a payload is encoded. Nothing here imports FastAPI or
httpx.

Dapr's shapes (``dapr-workflow-api.md`` section 1): a state is ``instanceID``,
``workflowName``, ``createdAt``, ``lastUpdatedAt`` (RFC 3339, UTC),
``runtimeStatus`` and ``properties``, a map of strings in which the input,
output and custom status are JSON text. Zero values are left out, as
protojson does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .._errors import InvalidArgument, TurnoutError
from .._models import (
    FailureDetails,
    HistoryEvent,
    RuntimeStatus,
    WorkflowDefinition,
    WorkflowPage,
    WorkflowState,
)

DAPR_PREFIXES = ("/v1.0", "/v1.0-beta1", "/v1.0-alpha1")
"""Every Dapr route is served under each of these (stable, beta, deprecated alpha)."""

EXTENSION_PREFIX = "/v1.0"
"""Turnout's own routes (list, history, wait, cancel, components, health) exist under this prefix only."""

INPUT = "dapr.workflow.input"
OUTPUT = "dapr.workflow.output"
CUSTOM_STATUS = "dapr.workflow.custom_status"
ERROR_TYPE = "dapr.workflow.failure.error_type"
ERROR_MESSAGE = "dapr.workflow.failure.error_message"
STACK_TRACE = "dapr.workflow.failure.stack_trace"
PARENT = "turnout.parent_instance_id"
SCHEDULED_START = "turnout.scheduled_start_at"
_DAPR_KEYS = frozenset({INPUT, OUTPUT, CUSTOM_STATUS, ERROR_TYPE, ERROR_MESSAGE, STACK_TRACE})


class MalformedRequest(TurnoutError):
    """The request body cannot be read as the route needs it (Dapr's ``ERR_MALFORMED_REQUEST``)."""

    code = "ERR_MALFORMED_REQUEST"
    http_status = 400


def status_path(component: str, instance_id: str, prefix: str = EXTENSION_PREFIX) -> str:
    """The route of an instance's status, for ``Location`` headers and clients."""
    return f"{prefix}/workflows/{quote(component, safe='')}/{quote(instance_id, safe='')}"


# ---------------------------------------------------------------------------
# times


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with 0, 3 or 6 fractional digits and a ``Z``, as protojson writes timestamps."""
    value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    micro = value.microsecond
    if micro == 0:
        fraction = ""
    elif micro % 1000 == 0:
        fraction = f".{micro // 1000:03d}"
    else:
        fraction = f".{micro:06d}"
    return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def parse_time(value: str, *, field: str = "time") -> datetime:
    """An RFC 3339 time with an offset (``Z`` or ``+02:00``) as an aware datetime."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidArgument(field, value, "an RFC 3339 time with a zone, e.g. 2030-01-02T03:04:05Z")
    return parsed


# ---------------------------------------------------------------------------
# payloads


def encode_json(value: Any) -> str:
    """Compact JSON text, as stored in a state's ``properties``."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _decode_property(text: str) -> Any:
    """The value of a JSON-text property; text that is not JSON (a raw Dapr payload) stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def is_json_media_type(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/*+json`` (parameters ignored)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def decode_payload(body: bytes, content_type: str | None, *, max_depth: int, what: str) -> Any:
    """A raw start or event body as a value, as Dapr takes it: JSON, or else the text itself.

    An empty body is no payload (None). A body that says it is JSON (by its
    content type) must be JSON; any other body that is not JSON is taken as a
    string, because Dapr stores the raw text. Nesting deeper than
    ``max_depth`` is refused, so a hostile body cannot exhaust the stack.
    """
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedRequest(
            f"the {what} is nested too deeply: at most {max_depth} levels of arrays and objects"
        ) from None
    except ValueError as exc:
        if is_json_media_type(content_type):
            raise MalformedRequest(
                f"the {what} is not valid JSON ({exc}); send JSON, or send plain text "
                "without 'Content-Type: application/json' to pass it as a string"
            ) from None
        return text
    check_depth(value, max_depth, what=what)
    return value


def check_depth(value: Any, max_depth: int, *, what: str) -> None:
    """Refuse JSON nested more than ``max_depth`` arrays or objects deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            raise MalformedRequest(
                f"the {what} is nested too deeply: at most {max_depth} levels of arrays and objects"
            )
        stack.extend((child, depth + 1) for child in children)


# ---------------------------------------------------------------------------
# states


def state_to_json(state: WorkflowState) -> dict[str, Any]:
    """A state as Dapr's GET answers it; Turnout's extra facts go in ``properties`` under ``turnout.``."""
    properties = {key: value for key, value in state.properties.items() if key not in _DAPR_KEYS}
    if state.parent_instance_id:
        properties[PARENT] = state.parent_instance_id
    if state.scheduled_start_at is not None:
        properties[SCHEDULED_START] = format_time(state.scheduled_start_at)
    if state.input is not None:
        properties[INPUT] = encode_json(state.input)
    if state.custom_status is not None:
        properties[CUSTOM_STATUS] = encode_json(state.custom_status)
    if state.failure is not None:
        properties[ERROR_TYPE] = state.failure.error_type
        properties[ERROR_MESSAGE] = state.failure.message
        if state.failure.stack_trace:
            properties[STACK_TRACE] = state.failure.stack_trace
    elif state.output is not None:
        properties[OUTPUT] = encode_json(state.output)
    body: dict[str, Any] = {"instanceID": state.instance_id}
    if state.workflow_name:
        body["workflowName"] = state.workflow_name
    body["createdAt"] = format_time(state.created_at)
    body["lastUpdatedAt"] = format_time(state.last_updated_at)
    body["runtimeStatus"] = state.runtime_status.value
    if properties:
        body["properties"] = properties
    return body


def state_from_json(body: dict[str, Any]) -> WorkflowState:
    """The inverse of :func:`state_to_json` (payloads come back as values)."""
    properties = dict(body.get("properties") or {})
    failure = None
    if ERROR_TYPE in properties or ERROR_MESSAGE in properties:
        failure = FailureDetails(
            error_type=properties.pop(ERROR_TYPE, ""),
            message=properties.pop(ERROR_MESSAGE, ""),
            stack_trace=properties.pop(STACK_TRACE, None),
        )
    payloads = {key: properties.pop(key) for key in (INPUT, OUTPUT, CUSTOM_STATUS) if key in properties}
    scheduled = properties.pop(SCHEDULED_START, None)
    return WorkflowState(
        instance_id=body["instanceID"],
        workflow_name=body.get("workflowName", ""),
        runtime_status=RuntimeStatus(body["runtimeStatus"]),
        created_at=parse_time(body["createdAt"], field="createdAt"),
        last_updated_at=parse_time(body["lastUpdatedAt"], field="lastUpdatedAt"),
        input=_decode_property(payloads[INPUT]) if INPUT in payloads else None,
        output=_decode_property(payloads[OUTPUT]) if OUTPUT in payloads else None,
        custom_status=_decode_property(payloads[CUSTOM_STATUS]) if CUSTOM_STATUS in payloads else None,
        failure=failure,
        parent_instance_id=properties.pop(PARENT, None),
        scheduled_start_at=parse_time(scheduled, field=SCHEDULED_START) if scheduled else None,
        properties=properties,
    )


def page_to_json(page: WorkflowPage) -> dict[str, Any]:
    """One page of ``list``: ``items`` (Dapr states) and ``nextPageToken`` when there is more."""
    body: dict[str, Any] = {"items": [state_to_json(state) for state in page.items]}
    if page.next_page_token:
        body["nextPageToken"] = page.next_page_token
    return body


def page_from_json(body: dict[str, Any]) -> WorkflowPage:
    """The inverse of :func:`page_to_json`."""
    return WorkflowPage(
        items=[state_from_json(item) for item in body.get("items", [])],
        next_page_token=body.get("nextPageToken"),
    )


def event_to_json(event: HistoryEvent) -> dict[str, Any]:
    """One history event, in the API's camelCase."""
    body: dict[str, Any] = {
        "sequence": event.sequence,
        "timestamp": format_time(event.timestamp),
        "kind": event.kind,
    }
    if event.name is not None:
        body["name"] = event.name
    if event.task_id is not None:
        body["taskID"] = event.task_id
    if event.data:
        body["data"] = event.data
    return body


def history_to_json(instance_id: str, events: list[HistoryEvent]) -> dict[str, Any]:
    """An instance's history: ``instanceID`` and its ``events``, oldest first."""
    return {"instanceID": instance_id, "events": [event_to_json(event) for event in events]}


def history_from_json(body: dict[str, Any]) -> list[HistoryEvent]:
    """The inverse of :func:`history_to_json`."""
    return [
        HistoryEvent(
            sequence=item["sequence"],
            timestamp=parse_time(item["timestamp"], field="timestamp"),
            kind=item["kind"],
            name=item.get("name"),
            task_id=item.get("taskID"),
            data=item.get("data") or {},
        )
        for item in body.get("events", [])
    ]


def parse_statuses(values: list[str] | str | None, *, field: str) -> list[RuntimeStatus] | None:
    """Statuses given as repeated values or comma-separated (``RUNNING,FAILED``), any case."""
    if values is None:
        return None
    raw = [values] if isinstance(values, str) else values
    names = [name.strip() for value in raw for name in value.split(",") if name.strip()]
    if not names:
        return None
    statuses = []
    for name in names:
        try:
            statuses.append(RuntimeStatus(name.upper()))
        except ValueError:
            allowed = ", ".join(status.value for status in RuntimeStatus)
            raise InvalidArgument(field, name, f"one of {allowed}") from None
    return statuses


def definition_to_json(definition: WorkflowDefinition) -> dict[str, Any]:
    """A stored definition, camelCase as the other bodies; ``document`` only when it was read."""
    body: dict[str, Any] = {
        "name": definition.name,
        "version": definition.version,
        "dialect": definition.dialect,
        "workflowName": definition.workflow_name,
        "createdAt": format_time(definition.created_at),
    }
    if definition.document is not None:
        body["document"] = definition.document
    return body


def definition_from_json(body: dict[str, Any]) -> WorkflowDefinition:
    """The inverse of :func:`definition_to_json`."""
    return WorkflowDefinition(
        name=body["name"],
        version=body["version"],
        dialect=body["dialect"],
        workflow_name=body["workflowName"],
        created_at=parse_time(body["createdAt"], field="createdAt"),
        document=body.get("document"),
    )
