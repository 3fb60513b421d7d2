"""Temporal's data as Turnout sees it: statuses, payloads, failures and history events.

Pure functions over Temporal's protobuf messages, kept apart from the
component so that each mapping is one table that a test can hold against
Temporal's own enums.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent as TemporalEvent
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.converter import default as default_converter

from turnout import FailureDetails, HistoryEvent, RuntimeStatus, WorkflowState

S = WorkflowExecutionStatus

STATUS_MAP: Mapping[int, RuntimeStatus | None] = {
    S.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED: None,  # never in a describe answer: refused as unknown
    S.WORKFLOW_EXECUTION_STATUS_RUNNING: RuntimeStatus.RUNNING,  # PENDING while before its start delay
    S.WORKFLOW_EXECUTION_STATUS_COMPLETED: RuntimeStatus.COMPLETED,
    S.WORKFLOW_EXECUTION_STATUS_FAILED: RuntimeStatus.FAILED,
    S.WORKFLOW_EXECUTION_STATUS_CANCELED: RuntimeStatus.CANCELED,
    S.WORKFLOW_EXECUTION_STATUS_TERMINATED: RuntimeStatus.TERMINATED,
    S.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW: RuntimeStatus.CONTINUED_AS_NEW,
    S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: RuntimeStatus.FAILED,  # failure.error_type "TimeoutError"
    S.WORKFLOW_EXECUTION_STATUS_PAUSED: RuntimeStatus.SUSPENDED,
}
"""Temporal's execution status (by number, so PAUSED = 8 reads on any SDK) to Turnout's.

The one table of the adapter; docs/engines/temporal.md shows it, and a test
checks that it covers every value of Temporal's enum.
"""

VISIBILITY_NAMES: Mapping[int, str] = {
    S.WORKFLOW_EXECUTION_STATUS_RUNNING: "Running",
    S.WORKFLOW_EXECUTION_STATUS_COMPLETED: "Completed",
    S.WORKFLOW_EXECUTION_STATUS_FAILED: "Failed",
    S.WORKFLOW_EXECUTION_STATUS_CANCELED: "Canceled",
    S.WORKFLOW_EXECUTION_STATUS_TERMINATED: "Terminated",
    S.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW: "ContinuedAsNew",
    S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT: "TimedOut",
    S.WORKFLOW_EXECUTION_STATUS_PAUSED: "Paused",
}
"""How the visibility query language spells each status (``ExecutionStatus = 'Running'``)."""


def visibility_clause(status: RuntimeStatus, now: str) -> str:
    """A visibility query clause for one Turnout status, derived from :data:`STATUS_MAP`.

    ``now`` (ISO 8601, UTC) splits Temporal's Running into PENDING (before the
    start delay ends) and RUNNING, as :func:`runtime_status` does.
    """
    if status is RuntimeStatus.PENDING:
        return f"(ExecutionStatus = 'Running' AND ExecutionTime > '{now}')"
    names = [VISIBILITY_NAMES[value] for value, mapped in STATUS_MAP.items() if mapped is status]
    clause = "ExecutionStatus IN (" + ", ".join(f"'{name}'" for name in names) + ")"
    if status is RuntimeStatus.RUNNING:
        return f"({clause} AND ExecutionTime <= '{now}')"
    return clause


CUSTOM_STATUS_MEMO = "turnout.customStatus"
"""The memo key where Turnout's workflows publish their custom status."""

TIMED_OUT_MESSAGE = "the workflow execution timed out (workflowExecutionTimeout or Temporal's run timeout)"

NONDETERMINISM_CODE = "[TMPRL1100]"
"""How Temporal's SDKs mark a non-determinism failure in its message."""

# Temporal's SDK names the error NondeterminismError; Turnout's is NonDeterminismError.
_ERROR_TYPE_NAMES = {"NondeterminismError": "NonDeterminismError"}


class UnknownStatus(ValueError):
    """A status number this adapter does not know (a newer server): refused, never guessed."""

    def __init__(self, value: int) -> None:
        super().__init__(
            f"Temporal reported workflow execution status {value}, which this version of "
            "turnout-temporal does not know; upgrade turnout-temporal"
        )
        self.value = value


def runtime_status(info: WorkflowExecutionInfo, now: datetime | None = None) -> RuntimeStatus:
    """Turnout's status for an execution: :data:`STATUS_MAP`, plus PENDING before a start delay ends.

    Only an instance's first run is PENDING: later runs (continue-as-new, a
    retry) may begin after a backoff too, but the instance is running.
    """
    status = STATUS_MAP.get(int(info.status))
    if status is None:
        raise UnknownStatus(int(info.status))
    first_run = not info.first_run_id or info.first_run_id == info.execution.run_id
    if status is RuntimeStatus.RUNNING and first_run and info.HasField("execution_time"):
        begins = timestamp(info.execution_time)
        if begins > (now or datetime.now(UTC)):
            return RuntimeStatus.PENDING
    return status


def timestamp(value: Any) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return value.ToDatetime(tzinfo=UTC)


# -- payloads --------------------------------------------------------------------------------

_CONVERTER = default_converter().payload_converter


def encode(value: Any) -> Payload:
    """A JSON value as Temporal's ``json/plain`` payload (what every Temporal SDK reads by default)."""
    return _CONVERTER.to_payloads([value])[0]


def encode_args(value: Any) -> list[Any]:
    """Turnout's single input as Temporal arguments: none for None, else one."""
    return [] if value is None else [value]


def decode(payload: Payload) -> Any:
    """A payload as a JSON value: JSON as it is, bytes as base64 text, anything else described."""
    encoding = payload.metadata.get("encoding", b"").decode("utf-8", "replace")
    if encoding in ("json/plain", "binary/null"):
        return _CONVERTER.from_payloads([payload])[0]
    if encoding == "binary/plain":
        return base64.b64encode(payload.data).decode("ascii")
    # protobuf, encrypted or custom encodings: shown, not interpreted.
    return {"encoding": encoding, "data": base64.b64encode(payload.data).decode("ascii")}


def decode_first(payloads: Payloads | Iterable[Payload]) -> Any:
    """The first payload's value (Turnout's single input, output or event data), or None."""
    items = list(payloads.payloads if isinstance(payloads, Payloads) else payloads)
    return decode(items[0]) if items else None


def memo_value(info: WorkflowExecutionInfo, key: str) -> Any:
    """One memo entry of an execution, decoded; None when absent."""
    if not info.HasField("memo") or key not in info.memo.fields:
        return None
    return decode(info.memo.fields[key])


# -- failures --------------------------------------------------------------------------------


def error_type(failure: Failure) -> str:
    """The type name of a Temporal failure: the application's own type, else the kind of failure."""
    kind = failure.WhichOneof("failure_info")
    if kind == "application_failure_info" and failure.application_failure_info.type:
        name = failure.application_failure_info.type
        return _ERROR_TYPE_NAMES.get(name, name)
    if NONDETERMINISM_CODE in failure.message:
        return "NonDeterminismError"  # failed by the SDK's core, which sets no type
    return {
        "timeout_failure_info": "TimeoutError",
        "canceled_failure_info": "CanceledError",
        "terminated_failure_info": "TerminatedError",
        "server_failure_info": "ServerError",
        "reset_workflow_failure_info": "ResetWorkflowError",
        "activity_failure_info": "ActivityError",
        "child_workflow_execution_failure_info": "ChildWorkflowError",
        "nexus_operation_execution_failure_info": "NexusOperationError",
    }.get(kind or "", "ApplicationError")


def failure_details(failure: Failure) -> FailureDetails:
    """Turnout's failure details from Temporal's Failure message."""
    return FailureDetails(
        error_type=error_type(failure),
        message=failure.message,
        stack_trace=failure.stack_trace or None,
    )


# -- states ----------------------------------------------------------------------------------


def state_from_info(
    info: WorkflowExecutionInfo,
    *,
    now: datetime | None = None,
    last_event: TemporalEvent | None = None,
    input: Any = None,
    paused_at: datetime | None = None,
) -> WorkflowState:
    """A WorkflowState from describe (or list) data, completed by the run's last history event.

    ``last_event`` (the newest event of the run) gives the output or failure
    of a closed run and the time of the last change of an open one; list
    items have none, so their ``last_updated_at`` is the close (or start) time.
    """
    status = runtime_status(info, now)
    created = timestamp(info.start_time)
    updated = created
    if info.HasField("close_time"):
        updated = max(updated, timestamp(info.close_time))
    if last_event is not None and last_event.HasField("event_time"):
        updated = max(updated, timestamp(last_event.event_time))
    if paused_at is not None:
        updated = max(updated, paused_at)
    scheduled = None
    if info.HasField("execution_time"):
        begins = timestamp(info.execution_time)
        if (begins - created).total_seconds() > 0.001:
            scheduled = begins
    properties = {
        "temporal.runId": info.execution.run_id,
        "temporal.taskQueue": info.task_queue,
        "temporal.status": WorkflowExecutionStatus.Name(info.status).removeprefix(
            "WORKFLOW_EXECUTION_STATUS_"
        ),
        "temporal.historyLength": str(info.history_length),
    }
    if info.first_run_id and info.first_run_id != info.execution.run_id:
        properties["temporal.firstRunId"] = info.first_run_id
    output, failure = None, None
    if last_event is not None and (status.is_terminal or status is RuntimeStatus.CONTINUED_AS_NEW):
        # Only a closed run's last event is its close event (a later read may see newer events).
        output, failure = _outcome(last_event, properties)
    if info.status == S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT and failure is None:
        failure = FailureDetails(error_type="TimeoutError", message=TIMED_OUT_MESSAGE)
    parent = info.parent_execution.workflow_id if info.HasField("parent_execution") else None
    return WorkflowState(
        instance_id=info.execution.workflow_id,
        workflow_name=info.type.name,
        runtime_status=status,
        created_at=created,
        last_updated_at=updated,
        input=input,
        output=output,
        failure=failure,
        custom_status=memo_value(info, CUSTOM_STATUS_MEMO),
        parent_instance_id=parent or None,
        scheduled_start_at=scheduled,
        properties=properties,
    )


def _outcome(event: TemporalEvent, properties: dict[str, str]) -> tuple[Any, FailureDetails | None]:
    """Output and failure of a run from its close event (nothing for an open run's last event)."""
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return decode_first(event.workflow_execution_completed_event_attributes.result), None
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        return None, failure_details(event.workflow_execution_failed_event_attributes.failure)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        return None, FailureDetails(error_type="TimeoutError", message=TIMED_OUT_MESSAGE)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        reason = event.workflow_execution_terminated_event_attributes.reason
        if reason:
            properties["temporal.terminateReason"] = reason
    return None, None


# -- history ---------------------------------------------------------------------------------


def event_kind(event_type: int) -> str:
    """``EVENT_TYPE_ACTIVITY_TASK_SCHEDULED`` as ``ActivityTaskScheduled``."""
    try:
        name = EventType.Name(event_type).removeprefix("EVENT_TYPE_")
    except ValueError:
        return f"Event{event_type}"
    return "".join(part.capitalize() for part in name.split("_"))


def history_events(events: Iterable[TemporalEvent]) -> list[HistoryEvent]:
    """Temporal's events as Turnout's: the event id as sequence, the type in PascalCase.

    ``name`` is what the event is about (workflow, activity, signal, child,
    marker or timer), ``task_id`` the Turnout step of an activity (its
    activity id), ``data`` the event's attributes as Temporal's JSON, with
    payloads decoded and the main one also under ``payload``.
    """
    activity_steps: dict[int, int] = {}  # scheduled event id -> Turnout task id
    mapped = []
    for event in events:
        attributes_name = event.WhichOneof("attributes")
        attributes: Message | None = getattr(event, attributes_name) if attributes_name else None
        data: dict[str, Any] = {}
        if attributes is not None:
            data = _decode_payloads(MessageToDict(attributes))
        name, task_id = _subject(event, attributes, activity_steps)
        payload = _main_payload(event, attributes)
        if payload is not _NONE:
            data["payload"] = payload
        mapped.append(
            HistoryEvent(
                sequence=event.event_id,
                timestamp=timestamp(event.event_time),
                kind=event_kind(event.event_type),
                name=name,
                task_id=task_id,
                data=data,
            )
        )
    return mapped


_NONE = object()


def _subject(event: TemporalEvent, attributes: Any, steps: dict[int, int]) -> tuple[str | None, int | None]:
    if attributes is None:
        return None, None
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        step = int(attributes.activity_id) if attributes.activity_id.isdigit() else None
        if step is not None:
            steps[event.event_id] = step
        return attributes.activity_type.name, step
    scheduled = getattr(attributes, "scheduled_event_id", 0)
    if scheduled and scheduled in steps:
        return None, steps[scheduled]
    for field in ("workflow_type", "activity_type"):
        if attributes.DESCRIPTOR.fields_by_name.get(field) is not None and attributes.HasField(field):
            return getattr(attributes, field).name, None
    for field in ("signal_name", "marker_name", "timer_id"):
        value = getattr(attributes, field, "")
        if value:
            return str(value), None
    return None, None


def _main_payload(event: TemporalEvent, attributes: Any) -> Any:
    if attributes is None:
        return _NONE
    for field in ("input", "result"):
        descriptor = attributes.DESCRIPTOR.fields_by_name.get(field)
        if descriptor is not None and attributes.HasField(field):
            return decode_first(getattr(attributes, field))
    return _NONE


def _decode_payloads(value: Any) -> Any:
    """Replace Temporal's JSON form of payloads (base64 metadata and data) with their values."""
    if isinstance(value, list):
        return [_decode_payloads(v) for v in value]
    if not isinstance(value, dict):
        return value
    metadata = value.get("metadata")
    if isinstance(metadata, dict) and "encoding" in metadata and set(value) <= {"metadata", "data"}:
        payload = Payload(
            metadata={k: base64.b64decode(v) for k, v in metadata.items()},
            data=base64.b64decode(value.get("data", "")),
        )
        return decode(payload)
    if set(value) == {"payloads"} and isinstance(value["payloads"], list):
        return [_decode_payloads(v) for v in value["payloads"]]
    return {k: _decode_payloads(v) for k, v in value.items()}
