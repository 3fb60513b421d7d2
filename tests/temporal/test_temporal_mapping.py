"""The adapter's tables and conversions, checked against Temporal's own enums and messages (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure, TimeoutFailureInfo
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.service import RPCError, RPCStatusCode

import turnout
from turnout import RuntimeStatus
from turnout_temporal import STATUS_MAP
from turnout_temporal._driver import MAX_RETRY_INTERVAL, temporal_retry_policy
from turnout_temporal._errors import engine_error
from turnout_temporal._mapping import (
    VISIBILITY_NAMES,
    UnknownStatus,
    decode,
    encode,
    error_type,
    event_kind,
    runtime_status,
    state_from_info,
    visibility_clause,
)

S = WorkflowExecutionStatus


def _info(status: int, *, start: datetime, execution: datetime | None = None) -> WorkflowExecutionInfo:
    started = Timestamp()
    started.FromDatetime(start)
    info = WorkflowExecutionInfo(
        execution=WorkflowExecution(workflow_id="wf-1", run_id="run-1"),
        type=WorkflowType(name="orders"),
        start_time=started,
        status=status,  # type: ignore[arg-type]
        task_queue="q",
    )
    if execution is not None:
        info.execution_time.FromDatetime(execution)
    return info


def test_the_status_table_covers_every_temporal_status() -> None:
    """One entry per value of Temporal's enum: a new server status cannot slip through unmapped."""
    assert set(STATUS_MAP) == set(S.values())
    assert STATUS_MAP[S.WORKFLOW_EXECUTION_STATUS_PAUSED] is RuntimeStatus.SUSPENDED
    assert STATUS_MAP[S.WORKFLOW_EXECUTION_STATUS_TIMED_OUT] is RuntimeStatus.FAILED
    assert set(VISIBILITY_NAMES) == set(S.values()) - {S.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED}
    mapped = {status for status in STATUS_MAP.values() if status is not None}
    assert mapped | {RuntimeStatus.PENDING} == set(RuntimeStatus), "a Turnout status no Temporal one maps to"


def test_pending_until_the_start_delay_ends() -> None:
    now = datetime.now(UTC)
    delayed = _info(S.WORKFLOW_EXECUTION_STATUS_RUNNING, start=now, execution=now + timedelta(minutes=5))
    assert runtime_status(delayed, now) is RuntimeStatus.PENDING
    assert runtime_status(delayed, now + timedelta(minutes=6)) is RuntimeStatus.RUNNING
    state = state_from_info(delayed, now=now)
    assert state.scheduled_start_at == now + timedelta(minutes=5)
    assert state.created_at == state.last_updated_at == now


def test_an_unknown_status_is_refused_not_guessed() -> None:
    with pytest.raises(UnknownStatus, match="status 42"):
        runtime_status(_info(42, start=datetime.now(UTC)))


@pytest.mark.parametrize("status", list(RuntimeStatus))
def test_visibility_clauses_follow_the_table(status: RuntimeStatus) -> None:
    clause = visibility_clause(status, "2030-01-01T00:00:00Z")
    assert clause.count("(") == clause.count(")")
    expected = {
        RuntimeStatus.PENDING: "ExecutionTime > '2030-01-01T00:00:00Z'",
        RuntimeStatus.RUNNING: "ExecutionTime <= '2030-01-01T00:00:00Z'",
        RuntimeStatus.SUSPENDED: "'Paused'",
        RuntimeStatus.FAILED: "'Failed', 'TimedOut'",
    }.get(status)
    if expected is not None:
        assert expected in clause


def test_retry_policy_mapping() -> None:
    none = temporal_retry_policy(None)
    assert none.maximum_attempts == 1, "no policy is one attempt (Temporal's default retries for ever)"

    policy = turnout.RetryPolicy(
        max_attempts=4,
        first_retry_interval=timedelta(seconds=2),
        backoff_coefficient=3.0,
        max_retry_interval=timedelta(seconds=10),
        non_retryable_errors=(ValueError, "KeyError"),
    )
    mapped = temporal_retry_policy(policy)
    assert (mapped.initial_interval, mapped.maximum_interval) == (timedelta(seconds=2), timedelta(seconds=10))
    assert (mapped.backoff_coefficient, mapped.maximum_attempts) == (3.0, 4)
    assert mapped.non_retryable_error_types == ["ValueError", "KeyError"]

    uncapped = temporal_retry_policy(
        turnout.RetryPolicy(max_attempts=4, first_retry_interval=timedelta(seconds=1))
    )
    assert uncapped.maximum_interval == timedelta(seconds=4), (
        "the longest wait the policy reaches (1 s * 2**2)"
    )
    huge = temporal_retry_policy(turnout.RetryPolicy(max_attempts=10_000, backoff_coefficient=10.0))
    assert huge.maximum_interval == MAX_RETRY_INTERVAL

    zero = temporal_retry_policy(turnout.RetryPolicy(first_retry_interval=timedelta(0)))
    assert zero.initial_interval == timedelta(milliseconds=1), "Temporal reads 0 as its 1 s default"
    small_cap = temporal_retry_policy(
        turnout.RetryPolicy(
            first_retry_interval=timedelta(seconds=5), max_retry_interval=timedelta(seconds=1)
        )
    )
    assert small_cap.initial_interval == small_cap.maximum_interval == timedelta(seconds=1)


def test_failure_types() -> None:
    app = Failure(message="boom", application_failure_info=ApplicationFailureInfo(type="ValueError"))
    assert error_type(app) == "ValueError"
    assert error_type(
        Failure(application_failure_info=ApplicationFailureInfo(type="NondeterminismError"))
    ) == ("NonDeterminismError"), "Turnout's spelling, whatever the SDK's"
    from_core = Failure(
        message="[TMPRL1100] Nondeterminism error: ...", application_failure_info=ApplicationFailureInfo()
    )
    assert error_type(from_core) == "NonDeterminismError"
    assert error_type(Failure(timeout_failure_info=TimeoutFailureInfo())) == "TimeoutError"
    assert error_type(Failure(application_failure_info=ApplicationFailureInfo())) == "ApplicationError"


def test_payloads() -> None:
    for value in ({"a": [1, "é", None]}, "text", 3.5, None):
        assert decode(encode(value)) == value
    assert decode(Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00\x01")) == "AAE="
    odd = decode(Payload(metadata={"encoding": b"json/protobuf"}, data=b"{}"))
    assert odd == {"encoding": "json/protobuf", "data": "e30="}


def test_event_kinds_are_temporal_names_in_pascal_case() -> None:
    assert event_kind(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) == "WorkflowExecutionStarted"
    assert event_kind(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == "ActivityTaskScheduled"
    assert event_kind(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED) == "WorkflowExecutionPaused"
    assert event_kind(999) == "Event999"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RPCError("down", RPCStatusCode.UNAVAILABLE, b""), True),
        (RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b""), True),
        (RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b""), True),
        (RPCError("no", RPCStatusCode.PERMISSION_DENIED, b""), False),
        (RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b""), False),
        (RuntimeError("Failed client connect"), False),
    ],
)
def test_engine_errors_say_whether_to_retry(error: Exception, retryable: bool) -> None:
    wrapped = engine_error(error, "get")
    assert isinstance(wrapped, turnout.EngineError)
    assert wrapped.retryable is retryable
    assert wrapped.component_type == "workflow.temporal" and wrapped.operation == "get"
    assert str(error) in wrapped.reason
