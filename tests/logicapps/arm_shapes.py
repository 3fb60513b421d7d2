"""What the ARM double answers: the 2019-05-01 JSON shapes, ARM's error shape, ``$filter`` and paging."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .double_engine import Run, TriggerHistory, Workflow
from .double_expressions import iso, parse_ticks

if TYPE_CHECKING:
    from .arm_double import ArmDouble

API_VERSION = "2019-05-01"
PAGE_SIZE = 4
"""Items per page of every list: small, so that every test exercises nextLink paging."""


class HttpError(Exception):
    """An error answer in ARM's shape: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# -- JSON shapes of 2019-05-01 ---------------------------------------------------------------


def workflow_json(double: ArmDouble, wf: Workflow) -> dict[str, Any]:
    return {
        "id": wf.resource_id,
        "name": wf.name,
        "type": "Microsoft.Logic/workflows",
        "location": wf.location,
        "tags": wf.tags,
        "properties": {
            "provisioningState": "Succeeded",
            "createdTime": iso(wf.created),
            "changedTime": iso(wf.changed),
            "state": wf.state,
            "version": wf.version,
            "accessEndpoint": f"{double.base_url}/workflows/{wf.system_id}",
            "definition": wf.definition,
            "parameters": wf.parameters,
        },
    }


def trigger_json(wf: Workflow, name: str) -> dict[str, Any]:
    trigger = wf.trigger(name) or {}
    return {
        "id": f"{wf.resource_id}/triggers/{name}",
        "name": name,
        "type": "Microsoft.Logic/workflows/triggers",
        "properties": {
            "provisioningState": "Succeeded",
            "createdTime": iso(wf.created),
            "changedTime": iso(wf.changed),
            "state": wf.state,
            "workflow": {"id": f"{wf.resource_id}/versions/{wf.version}", "name": wf.version},
            "type": trigger.get("type"),
        },
    }


def version_ref(run: Run) -> dict[str, Any]:
    return {
        "id": f"{run.workflow.resource_id}/versions/{run.version}",
        "name": run.version,
        "type": "Microsoft.Logic/workflows/versions",
    }


def run_json(double: ArmDouble, run: Run) -> dict[str, Any]:
    trigger = {
        "name": run.trigger_name,
        "outputsLink": double.content_link(run.trigger_content),
        "startTime": iso(run.created),
        "endTime": iso(run.created),
        "trackingId": run.correlation_id,
        "correlation": {"clientTrackingId": run.tracking_id},
        "code": "OK",
        "status": "Succeeded",
    }
    properties: dict[str, Any] = {
        "startTime": iso(run.created),
        "status": run.status,
        "correlation": {"clientTrackingId": run.tracking_id},
        "workflow": version_ref(run),
        "trigger": trigger,
        "outputs": run.outputs,
    }
    if run.end is not None:
        properties["endTime"] = iso(run.end)
    if run.code is not None:
        properties["code"] = run.code
    if run.error is not None:
        properties["error"] = run.error
    return {
        "id": run.resource_id,
        "name": run.name,
        "type": "Microsoft.Logic/workflows/runs",
        "properties": properties,
    }


def action_json(double: ArmDouble, run: Run, name: str) -> dict[str, Any]:
    action = run.actions[name]
    properties: dict[str, Any] = {
        "startTime": iso(action.start),
        "status": action.status,
        "trackingId": action.tracking_id,
        "correlation": {
            "actionTrackingId": action.tracking_id,
            "clientTrackingId": run.tracking_id,
        },
    }
    for key, value in (
        ("endTime", iso(action.end)),
        ("code", action.code),
        ("error", action.error),
        ("inputsLink", double.content_link(action.inputs)),
        ("outputsLink", double.content_link(action.outputs_content)),
    ):
        if value is not None:
            properties[key] = value
    return {
        "id": f"{run.resource_id}/actions/{name}",
        "name": name,
        "type": "Microsoft.Logic/workflows/runs/actions",
        "properties": properties,
    }


def history_json(double: ArmDouble, wf: Workflow, history: TriggerHistory) -> dict[str, Any]:
    return {
        "id": f"{wf.resource_id}/triggers/{history.trigger_name}/histories/{history.name}",
        "name": history.name,
        "type": "Microsoft.Logic/workflows/triggers/histories",
        "properties": {
            "startTime": iso(history.start),
            "endTime": iso(history.end),
            "status": history.status,
            "code": "Accepted",
            "trackingId": history.run.correlation_id,
            "correlation": {"clientTrackingId": history.tracking_id},
            "outputsLink": double.content_link(history.run.trigger_content),
            "fired": True,
            "run": {
                "id": history.run.resource_id,
                "name": history.run.name,
                "type": "Microsoft.Logic/workflows/runs",
            },
        },
    }


# -- filters and paging ----------------------------------------------------------------------

_CLAUSE = re.compile(
    r"^\s*(?P<field>status|starttime|clienttrackingid)\s+(?P<op>eq|ge|gt|le|lt)\s+(?P<value>'(?:[^']|'')*'|\S+)\s*$",
    re.IGNORECASE,
)


def run_filter(text: str | None) -> Callable[[Run], bool]:
    """``$filter`` of runs: clauses on Status, StartTime and ClientTrackingId joined by ``and``."""
    if not text:
        return lambda run: True
    checks: list[Callable[[Run], bool]] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if not match:
            raise HttpError(
                400,
                "InvalidFilter",  # double's choice
                f"The filter clause '{clause}' is not supported: use status eq 'Running', "
                "startTime ge <timestamp> or ClientTrackingId eq '<id>', joined by 'and'.",
            )
        name, op, value = match["field"].lower(), match["op"].lower(), match["value"]
        if name in ("status", "clienttrackingid"):
            if op != "eq" or not value.startswith("'"):
                raise HttpError(400, "InvalidFilter", f"'{name}' supports only eq with a quoted value")
            wanted = value[1:-1].replace("''", "'")
            if name == "status":
                checks.append(lambda run, w=wanted: run.status.lower() == w.lower())
            else:
                checks.append(lambda run, w=wanted: run.tracking_id == w)
            continue
        try:
            ticks = parse_ticks(value.strip("'"))
        except ValueError:
            raise HttpError(400, "InvalidFilter", f"'{value}' is not a timestamp") from None
        compare = {
            "eq": lambda a, b: a == b,
            "ge": lambda a, b: a >= b,
            "gt": lambda a, b: a > b,
            "le": lambda a, b: a <= b,
            "lt": lambda a, b: a < b,
        }[op]
        checks.append(lambda run, t=ticks, c=compare: c(run.created, t))
    return lambda run: all(check(run) for check in checks)


def page_of(
    double: ArmDouble, path: str, items: list[Any], key: Callable[[Any], str], query: dict[str, str]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` after ``$skiptoken`` (the key of the previous page's last item)."""
    top = query.get("$top")
    size = PAGE_SIZE
    if top is not None:
        if not top.isdigit() or int(top) < 1:
            raise HttpError(
                400, "InvalidQueryParameterValue", f"'$top' must be a positive integer, not '{top}'"
            )
        size = min(int(top), PAGE_SIZE)
    start = 0
    token = query.get("$skiptoken")
    if token:
        keys = [key(item) for item in items]
        if token not in keys:
            raise HttpError(
                400, "InvalidSkipToken", f"The skip token '{token}' is not valid."
            )  # double's choice
        start = keys.index(token) + 1
    page = items[start : start + size]
    next_link = None
    if start + size < len(items):
        extra = "".join(f"&{name}={quote(query[name])}" for name in ("$filter", "$top") if name in query)
        next_link = (
            f"{double.base_url}{path}?api-version={API_VERSION}{extra}&$skiptoken={quote(key(page[-1]))}"
        )
    return page, next_link
