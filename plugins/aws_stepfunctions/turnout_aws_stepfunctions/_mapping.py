"""Step Functions answers as Turnout models: the status table, states, list items and history.

Everything here is a pure function of what boto3 returned, so it is tested
without a server. :data:`STATUS` is the one place where Step Functions'
execution statuses meet Dapr's runtime statuses; a test checks that it covers
every status in botocore's model of the API, so a status AWS adds later is
noticed rather than guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from turnout import EngineError, FailureDetails, HistoryEvent, RuntimeStatus, WorkflowState

STATUS: Mapping[str, RuntimeStatus] = MappingProxyType(
    {
        "RUNNING": RuntimeStatus.RUNNING,
        "SUCCEEDED": RuntimeStatus.COMPLETED,
        "FAILED": RuntimeStatus.FAILED,
        # The execution ran past its TimeoutSeconds: a failure, with error States.Timeout.
        "TIMED_OUT": RuntimeStatus.FAILED,
        # Stopped by StopExecution (Turnout's terminate) or from the console.
        "ABORTED": RuntimeStatus.TERMINATED,
        # A redrive of a failed, timed-out or aborted execution was accepted and has not
        # started yet: the instance will run again, so it is neither running nor finished.
        "PENDING_REDRIVE": RuntimeStatus.PENDING,
    }
)
"""Step Functions execution status -> Turnout runtime status (exhaustive)."""

OPEN_STATUSES = frozenset({"RUNNING", "PENDING_REDRIVE"})
"""Execution statuses of an execution that has not finished."""

_QUALIFIED = re.compile(r"^(?P<base>arn:[^:]+:states:[^:]*:[^:]*:stateMachine:[^:]+)(?::[^:]+)?$")
_JSON_FIELDS = ("input", "output", "parameters", "result")


def runtime_status(aws_status: str, component_type: str) -> RuntimeStatus:
    """Look ``aws_status`` up in :data:`STATUS`; a status this version does not know is an EngineError."""
    try:
        return STATUS[aws_status]
    except KeyError:
        known = ", ".join(STATUS)
        raise EngineError(
            component_type,
            "describe_execution",
            f"Step Functions reported the execution status {aws_status!r}, which this version of "
            f"turnout-aws-stepfunctions does not know (it knows {known}); upgrade the adapter",
        ) from None


def aws_statuses(wanted: Iterable[RuntimeStatus] | None) -> frozenset[str] | None:
    """The Step Functions statuses that map to any of ``wanted`` (None: no filter)."""
    if wanted is None:
        return None
    chosen = set(wanted)
    return frozenset(aws for aws, status in STATUS.items() if status in chosen)


def base_arn(state_machine_arn: str) -> str:
    """The state machine ARN without a version or alias qualifier (executions belong to it)."""
    match = _QUALIFIED.match(state_machine_arn)
    return match.group("base") if match else state_machine_arn


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives the execution ``name`` of a state machine (it is deterministic)."""
    prefix, _, machine = base_arn(state_machine_arn).rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime (botocore gives the machine's local zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_json(text: str | None) -> Any:
    """A JSON document from Step Functions, or None when absent.

    Step Functions always answers JSON text; moto answers a string output
    without its quotes (``done`` for ``"done"``), so text that is not JSON is
    taken as that string rather than refused.
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _failure(description: Mapping[str, Any]) -> FailureDetails | None:
    status = description.get("status")
    error = description.get("error") or None
    cause = description.get("cause") or None
    if status == "TIMED_OUT":
        return FailureDetails(
            error_type=error or "States.Timeout",
            message=cause or "the execution ran longer than its state machine's TimeoutSeconds",
        )
    if status == "FAILED":
        return FailureDetails(
            error_type=error or "States.Unknown", message=cause or error or "the execution failed"
        )
    return None


def _properties(item: Mapping[str, Any]) -> dict[str, str]:
    properties = {"executionArn": item["executionArn"], "status": item["status"]}
    for key in (
        "stateMachineArn",
        "stateMachineVersionArn",
        "stateMachineAliasArn",
        "mapRunArn",
        "redriveCount",
        "redriveStatus",
        "redriveStatusReason",
        "itemCount",
    ):
        if item.get(key) is not None:
            properties[key] = str(item[key])
    if item.get("redriveDate") is not None:
        properties["redriveDate"] = utc(item["redriveDate"]).isoformat()
    if item.get("status") == "ABORTED":
        # terminate's reason: StopExecution's error and cause (not a failure).
        for key in ("error", "cause"):
            if item.get(key):
                properties[key] = str(item[key])
    return properties


def _times(item: Mapping[str, Any]) -> tuple[datetime, datetime]:
    created = utc(item["startDate"])
    updated = max(
        [created, *(utc(item[key]) for key in ("redriveDate", "stopDate") if item.get(key) is not None)]
    )
    return created, updated


def to_state(description: Mapping[str, Any], workflow_name: str, component_type: str) -> WorkflowState:
    """A DescribeExecution answer as a WorkflowState, with input, output and failure filled in."""
    created, updated = _times(description)
    properties = _properties(description)
    for key in ("input", "output"):
        details = description.get(f"{key}Details") or {}
        if details.get("included") is False:
            properties[f"{key}Included"] = "false"
    return WorkflowState(
        instance_id=description["name"],
        workflow_name=workflow_name,
        runtime_status=runtime_status(description["status"], component_type),
        created_at=created,
        last_updated_at=updated,
        input=parse_json(description.get("input")),
        output=parse_json(description.get("output")) if description.get("status") == "SUCCEEDED" else None,
        failure=_failure(description),
        properties=properties,
    )


def summary_state(item: Mapping[str, Any], workflow_name: str, component_type: str) -> WorkflowState:
    """A ListExecutions item as a WorkflowState: status and times only (get fills in the rest)."""
    created, updated = _times(item)
    properties = _properties(item)
    properties["summary"] = "true"
    return WorkflowState(
        instance_id=item["name"],
        workflow_name=workflow_name,
        runtime_status=runtime_status(item["status"], component_type),
        created_at=created,
        last_updated_at=updated,
        properties=properties,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def details_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``...EventDetails`` part of a history event (each event has at most one), or {}."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return dict(value)
    return {}


def to_history(events: Iterable[Mapping[str, Any]]) -> list[HistoryEvent]:
    """GetExecutionHistory events as Turnout history events, oldest first.

    ``kind`` is Step Functions' event type (``TaskStateEntered``,
    ``ExecutionSucceeded``...), ``name`` the state's name where the event has
    one, and ``data`` the event's details with its JSON texts (input, output,
    task parameters) decoded, plus ``previousEventId``.
    """
    result = []
    for event in sorted(events, key=lambda e: e["id"]):
        details = details_of(event)
        data: dict[str, Any] = {}
        for key, value in details.items():
            if key in _JSON_FIELDS and isinstance(value, str):
                try:
                    data[key] = json.loads(value)
                    continue
                except json.JSONDecodeError:
                    pass
            data[key] = _plain(value)
        data["previousEventId"] = event.get("previousEventId", 0)
        name = details.get("name")
        result.append(
            HistoryEvent(
                sequence=event["id"],
                timestamp=utc(event["timestamp"]),
                kind=event["type"],
                name=name if isinstance(name, str) else None,
                data=data,
            )
        )
    return result
