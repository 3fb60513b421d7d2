"""The shared wire code: Dapr's times and state JSON (both ways), payloads, error bodies, sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from turnout import (
    EngineError,
    FailureDetails,
    InstanceNotFound,
    InvalidArgument,
    RuntimeStatus,
    Unsupported,
    WaitTimeout,
    WorkflowState,
)
from turnout._cli_serve import ByteSize
from turnout._server._errors import RemoteError, error_body, error_from_response
from turnout._server._protocol import (
    MalformedRequest,
    decode_payload,
    format_time,
    parse_statuses,
    parse_time,
    state_from_json,
    state_to_json,
)

T0 = datetime(2023, 1, 12, 21, 31, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (T0, "2023-01-12T21:31:13Z"),
        (T0.replace(microsecond=120_000), "2023-01-12T21:31:13.120Z"),
        (T0.replace(microsecond=123_456), "2023-01-12T21:31:13.123456Z"),
        (T0.astimezone(timezone(timedelta(hours=2))), "2023-01-12T21:31:13Z"),
    ],
)
def test_times_are_protojson_rfc3339_utc(value: datetime, text: str) -> None:
    assert format_time(value) == text
    assert parse_time(text) == value


def test_parse_time_needs_a_zone() -> None:
    with pytest.raises(InvalidArgument, match="RFC 3339"):
        parse_time("2023-01-12T21:31:13", field="startAt")
    assert parse_time("2023-01-12T21:31:13.123456789Z").microsecond == 123456


def test_state_json_round_trips_and_leaves_out_empty_fields() -> None:
    state = WorkflowState(
        instance_id="i-1",
        workflow_name="w",
        runtime_status=RuntimeStatus.FAILED,
        created_at=T0,
        last_updated_at=T0,
        input={"a": 1},
        output="ignored because it failed",
        custom_status="half way",
        failure=FailureDetails(error_type="ValueError", message="bad", stack_trace="Traceback ..."),
        parent_instance_id="p-1",
        properties={"engine.fact": "x"},
    )
    body = state_to_json(state)
    assert body["properties"] == {
        "engine.fact": "x",
        "turnout.parent_instance_id": "p-1",
        "dapr.workflow.input": '{"a":1}',
        "dapr.workflow.custom_status": '"half way"',
        "dapr.workflow.failure.error_type": "ValueError",
        "dapr.workflow.failure.error_message": "bad",
        "dapr.workflow.failure.stack_trace": "Traceback ...",
    }
    back = state_from_json(body)
    assert back == state.model_copy(update={"output": None})
    bare = WorkflowState(
        instance_id="i", workflow_name="", runtime_status="RUNNING", created_at=T0, last_updated_at=T0
    )
    assert state_to_json(bare) == {
        "instanceID": "i",
        "createdAt": "2023-01-12T21:31:13Z",
        "lastUpdatedAt": "2023-01-12T21:31:13Z",
        "runtimeStatus": "RUNNING",
    }


def test_a_raw_text_property_from_dapr_reads_as_text() -> None:
    body = {
        **state_to_json(
            WorkflowState(
                instance_id="i",
                workflow_name="w",
                runtime_status="COMPLETED",
                created_at=T0,
                last_updated_at=T0,
            )
        )
    }
    body["properties"] = {"dapr.workflow.output": "plain text, not JSON"}
    assert state_from_json(body).output == "plain text, not JSON"


@pytest.mark.parametrize(
    ("body", "content_type", "value"),
    [
        (b"", "application/json", None),
        (b" [1, 2] ", None, [1, 2]),
        (b"hello", None, "hello"),
        (b"hello", "text/plain", "hello"),
        (b"Infinity", None, "Infinity"),
        (b'"quoted"', "application/vnd.api+json", "quoted"),
    ],
)
def test_payloads(body: bytes, content_type: str | None, value: object) -> None:
    assert decode_payload(body, content_type, max_depth=3, what="input") == value


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"hello", "application/json; charset=utf-8", "not valid JSON"),
        (b"\xc3\x28", None, "not UTF-8"),
        (b"[[[[1]]]]", None, "at most 3 levels"),
        (b'{"a": {"b": {"c": {}}}}', None, "at most 3 levels"),
    ],
)
def test_bad_payloads(body: bytes, content_type: str | None, fragment: str) -> None:
    with pytest.raises(MalformedRequest, match=fragment):
        decode_payload(body, content_type, max_depth=3, what="input")


def test_statuses_parse_repeated_or_comma_separated() -> None:
    assert parse_statuses(["running,Failed", "COMPLETED"], field="status") == [
        RuntimeStatus.RUNNING,
        RuntimeStatus.FAILED,
        RuntimeStatus.COMPLETED,
    ]
    assert parse_statuses([], field="status") is None
    with pytest.raises(InvalidArgument, match="invalid until 'DONE'"):
        parse_statuses("DONE", field="until")


def test_error_bodies() -> None:
    assert error_body(InstanceNotFound("i-1"), "get")[0] == 404
    status, body = error_body(Unsupported("workflow.x", "pause", "no pause API"), "pause")
    assert (status, body["errorCode"], body["componentType"], body["operation"]) == (
        501,
        "ERR_NOT_SUPPORTED",
        "workflow.x",
        "pause",
    )
    status, body = error_body(EngineError("workflow.x", "start", "refused"), "start", "order")
    assert (status, body["errorCode"]) == (500, "ERR_START_WORKFLOW")
    assert body["message"] == "error starting workflow 'order': workflow.x: start failed: refused"
    status, body = error_body(RuntimeError("boom"), None)
    assert (status, body["errorCode"]) == (500, "ERR_INTERNAL")
    state = WorkflowState(
        instance_id="i", workflow_name="w", runtime_status="RUNNING", created_at=T0, last_updated_at=T0
    )
    status, body = error_body(WaitTimeout("i", 1.0, state), "wait")
    assert (status, body["state"]["runtimeStatus"]) == (408, "RUNNING")


def test_errors_read_back_by_the_client() -> None:
    error = error_from_response(404, b'{"errorCode":"ERR_INSTANCE_ID_NOT_FOUND","message":"gone"}')
    assert isinstance(error, RemoteError)
    assert (error.code, error.http_status, error.message) == ("ERR_INSTANCE_ID_NOT_FOUND", 404, "gone")
    plain = error_from_response(502, b"<html>bad gateway</html>")
    assert (plain.code, plain.http_status) == ("HTTP_502", 502)
    assert "bad gateway" in plain.message


@pytest.mark.parametrize(
    ("text", "size"), [("4194304", 4194304), ("4MiB", 4 * 1024**2), ("512 KiB", 512 * 1024), ("1MB", 10**6)]
)
def test_byte_sizes(text: str, size: int) -> None:
    assert ByteSize().convert(text, None, None) == size
