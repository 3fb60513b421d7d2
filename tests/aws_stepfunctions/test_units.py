"""The adapter's pure parts, without a server: the status table, history reading, errors, retries, files."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from turnout import (
    ComponentError,
    EngineError,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    RuntimeStatus,
    TurnoutError,
)
from turnout._build import build_components
from turnout._plugins import load_registry
from turnout._specs import read_specs
from turnout_aws_stepfunctions._aws import THROTTLING_CODES, AwsCalls
from turnout_aws_stepfunctions._callbacks import (
    choose,
    execution_closed,
    failure_fields,
    find_token,
    success_output,
    waiting_tasks,
)
from turnout_aws_stepfunctions._definitions import check_machine_name, workflow_name
from turnout_aws_stepfunctions._mapping import STATUS, aws_statuses, execution_arn, to_history, to_state

from .conftest import ROLE, write_component

TYPE = "workflow.aws.stepfunctions"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def client(endpoint: str = "http://127.0.0.1:9") -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )


# -- the status table ------------------------------------------------------------------------


def test_status_table_covers_every_status_of_the_api() -> None:
    """STATUS has exactly the execution statuses in botocore's model of Step Functions."""
    model = boto3.client("stepfunctions", region_name="us-east-1").meta.service_model
    assert set(STATUS) == set(model.shape_for("ExecutionStatus").enum)


def test_status_table_values() -> None:
    assert dict(STATUS) == {
        "RUNNING": RuntimeStatus.RUNNING,
        "SUCCEEDED": RuntimeStatus.COMPLETED,
        "FAILED": RuntimeStatus.FAILED,
        "TIMED_OUT": RuntimeStatus.FAILED,
        "ABORTED": RuntimeStatus.TERMINATED,
        "PENDING_REDRIVE": RuntimeStatus.PENDING,
    }
    assert aws_statuses([RuntimeStatus.FAILED]) == {"FAILED", "TIMED_OUT"}
    assert aws_statuses([RuntimeStatus.SUSPENDED]) == frozenset()
    assert aws_statuses(None) is None


def described(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "executionArn": execution_arn(MACHINE, "i1"),
        "stateMachineArn": MACHINE,
        "name": "i1",
        "status": status,
        "startDate": T0,
        "input": '{"a": 1}',
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "extra", "runtime", "failure"),
    [
        ("RUNNING", {}, RuntimeStatus.RUNNING, None),
        ("SUCCEEDED", {"output": '{"b": 2}'}, RuntimeStatus.COMPLETED, None),
        ("FAILED", {"error": "Boom", "cause": "it broke"}, RuntimeStatus.FAILED, ("Boom", "it broke")),
        ("FAILED", {"error": "Rejected"}, RuntimeStatus.FAILED, ("Rejected", "Rejected")),
        ("TIMED_OUT", {}, RuntimeStatus.FAILED, ("States.Timeout", "TimeoutSeconds")),
        ("ABORTED", {"error": "Turnout.Terminated", "cause": "why"}, RuntimeStatus.TERMINATED, None),
        ("PENDING_REDRIVE", {"redriveCount": 1}, RuntimeStatus.PENDING, None),
    ],
)
def test_describe_execution_becomes_a_state(
    status: str, extra: dict[str, Any], runtime: RuntimeStatus, failure: tuple[str, str] | None
) -> None:
    stop = {} if status in ("RUNNING", "PENDING_REDRIVE") else {"stopDate": T0 + timedelta(seconds=3)}
    state = to_state(described(status, **extra, **stop), "orders", TYPE)
    assert (state.instance_id, state.workflow_name, state.runtime_status) == ("i1", "orders", runtime)
    assert state.input == {"a": 1}
    assert state.created_at == T0 and state.created_at.tzinfo is not None
    assert state.last_updated_at == (T0 + timedelta(seconds=3) if stop else T0)
    assert state.output == ({"b": 2} if status == "SUCCEEDED" else None)
    if failure is None:
        assert state.failure is None
    else:
        assert state.failure is not None
        assert state.failure.error_type == failure[0]
        assert failure[1] in state.failure.message
    assert state.properties["executionArn"].endswith(":execution:orders:i1")
    assert state.properties["status"] == status
    if status == "ABORTED":
        assert (state.properties["error"], state.properties["cause"]) == ("Turnout.Terminated", "why")


def test_unknown_status_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="'PAUSED', which this version"):
        to_state(described("PAUSED"), "orders", TYPE)


def test_unquoted_string_output_from_moto_is_that_string() -> None:
    assert to_state(described("SUCCEEDED", output="done"), "orders", TYPE).output == "done"


def test_execution_arn_of_qualified_machines() -> None:
    assert execution_arn(f"{MACHINE}:prod", "x") == "arn:aws:states:us-east-1:123456789012:execution:orders:x"


# -- reading the history for raise_event --------------------------------------------------


def event(event_id: int, previous: int, kind: str, **details: Any) -> dict[str, Any]:
    key = {
        "TaskStateEntered": "stateEnteredEventDetails",
        "TaskStateExited": "stateExitedEventDetails",
        "TaskScheduled": "taskScheduledEventDetails",
    }.get(kind, kind[0].lower() + kind[1:] + "EventDetails")
    return {"id": event_id, "previousEventId": previous, "type": kind, "timestamp": T0, key: details}


def scheduled(
    event_id: int, previous: int, token: str, resource: str = "sendMessage.waitForTaskToken"
) -> Any:
    parameters = json.dumps({"QueueUrl": "q", "MessageBody": {"TaskToken": token}})
    return event(
        event_id, previous, "TaskScheduled", resource=resource, resourceType="sqs", parameters=parameters
    )


def test_waiting_tasks_in_parallel_branches_with_a_retry() -> None:
    """Two branches wait under one name; a third task was retried; a plain task is never a candidate."""
    history = [
        event(1, 0, "ExecutionStarted"),
        event(2, 1, "ParallelStateEntered", name="P"),
        event(3, 2, "TaskStateEntered", name="approve"),
        scheduled(4, 3, "t-a"),
        event(5, 2, "TaskStateEntered", name="approve"),
        scheduled(6, 5, "t-b"),
        event(7, 6, "TaskStarted"),
        event(8, 7, "TaskSucceeded"),  # branch b done
        event(9, 8, "TaskStateExited", name="approve"),
        event(10, 2, "TaskStateEntered", name="ship"),
        scheduled(11, 10, "t-c1"),
        event(12, 11, "TaskFailed"),
        scheduled(13, 12, "t-c2"),  # the retry: still waiting
        event(14, 2, "TaskStateEntered", name="plain"),
        scheduled(15, 14, "t-d", resource="invoke"),
    ]
    waiting = waiting_tasks(history)
    assert [(t.state, t.token) for t in waiting] == [("approve", "t-a"), ("ship", "t-c2")]
    assert not execution_closed(history)
    assert execution_closed([*history, event(16, 15, "ExecutionFailed")])
    assert not execution_closed(
        [*history, event(16, 15, "ExecutionFailed"), event(17, 16, "ExecutionRedriven")]
    )


def test_event_names_choose_tasks() -> None:
    history = [
        event(1, 0, "TaskStateEntered", name="approve"),
        scheduled(2, 1, "t1"),
        event(3, 0, "TaskStateEntered", name="odd.failure"),
        scheduled(4, 3, "t2"),
    ]
    waiting = waiting_tasks(history)
    tasks, success = choose("approve", waiting)
    assert ([t.token for t in tasks], success) == (["t1"], True)
    tasks, success = choose("approve.failure", waiting)
    assert ([t.token for t in tasks], success) == (["t1"], False)
    tasks, success = choose("odd.failure", waiting)  # an exact state name wins over the suffix
    assert ([t.token for t in tasks], success) == (["t2"], True)
    assert choose("other", waiting) == ([], True)


@pytest.mark.parametrize(
    ("parameters", "token"),
    [
        ({"MessageBody": {"TaskToken": "a"}}, "a"),
        ({"Payload": {"nested": [{"token": "b"}]}}, "b"),
        ({"MessageBody": json.dumps({"taskToken": "c"})}, "c"),
        ({"MessageBody": "no token here"}, None),
        (json.dumps({"TASKTOKEN": "d"}), "d"),
        ("not json", None),
    ],
)
def test_find_token(parameters: Any, token: str | None) -> None:
    assert find_token(parameters) == token


def test_failure_event_data_shapes() -> None:
    assert failure_fields(None) == ("Rejected", None)
    assert failure_fields("over budget") == ("Rejected", "over budget")
    assert failure_fields({"error": "Denied"}) == ("Denied", None)
    assert failure_fields({"cause": {"why": 1}}) == ("Rejected", '{"why": 1}')
    for bad, field in [
        ({"error": "E", "reason": "x"}, "failure event data"),
        ({"error": ""}, "failure event data 'error'"),
        ({"error": "x" * 257}, "failure event data 'error'"),
        (42, "failure event data"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            failure_fields(bad)
        assert caught.value.field == field


def test_success_output_is_limited_to_256_kib() -> None:
    assert success_output({"ok": "é"}) == '{"ok":"é"}'
    with pytest.raises(InvalidArgument, match="at most 262144 bytes"):
        success_output("x" * 262_144)


def test_history_events_decode_their_json() -> None:
    events = to_history(
        [
            event(2, 1, "TaskStateEntered", name="go", input='{"a":1}'),
            event(1, 0, "ExecutionStarted", input="{}"),
        ]
    )
    assert [(e.sequence, e.kind, e.name) for e in events] == [
        (1, "ExecutionStarted", None),
        (2, "TaskStateEntered", "go"),
    ]
    assert events[1].data == {"name": "go", "input": {"a": 1}, "previousEventId": 1}


# -- the call layer: throttling, error translation, no leaks --------------------------------


def test_throttling_is_retried_with_growing_back_off() -> None:
    stubbed = client()
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    calls = AwsCalls(stubbed, TYPE, sleep=sleep, base_delay=0.1, max_delay=5.0)
    with Stubber(stubbed) as stub:
        for code in ("ThrottlingException", "TooManyRequestsException", "ThrottlingException"):
            stub.add_client_error("list_state_machines", service_error_code=code, http_status_code=400)
        stub.add_response("list_state_machines", {"stateMachines": []})
        assert asyncio.run(calls.call("list_state_machines")) == {"stateMachines": []}
        stub.assert_no_pending_responses()
    assert len(delays) == 3
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 0.1 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    asyncio.run(calls.close())


def test_throttling_gives_up_with_a_retryable_engine_error() -> None:
    stubbed = client()

    async def sleep(seconds: float) -> None:
        pass

    calls = AwsCalls(stubbed, TYPE, sleep=sleep, max_attempts=3)
    with Stubber(stubbed) as stub:
        for _ in range(3):
            stub.add_client_error("describe_execution", service_error_code="ThrottlingException")
        with pytest.raises(EngineError) as caught:
            asyncio.run(calls.call("describe_execution", executionArn=execution_arn(MACHINE, "x")))
    assert caught.value.retryable
    assert "throttled by AWS after 3 attempts" in str(caught.value)
    assert "ThrottlingException" in THROTTLING_CODES
    asyncio.run(calls.close())


@pytest.mark.parametrize(
    ("code", "status", "expected", "retryable", "fragment"),
    [
        ("ExecutionDoesNotExist", 400, InstanceNotFound, None, "no workflow instance 'x'"),
        ("ExecutionAlreadyExists", 400, InstanceExists, None, "already exists"),
        ("InternalFailure", 500, EngineError, True, "InternalFailure: server said no"),
        ("AccessDeniedException", 400, EngineError, False, "states:StartExecution"),
        ("ValidationException", 400, EngineError, False, "ValidationException"),
    ],
)
def test_aws_errors_become_turnout_errors(
    code: str, status: int, expected: type[TurnoutError], retryable: bool | None, fragment: str
) -> None:
    stubbed = client()
    calls = AwsCalls(stubbed, TYPE)
    errors = {
        "ExecutionDoesNotExist": lambda exc: InstanceNotFound("x"),
        "ExecutionAlreadyExists": lambda exc: InstanceExists("x"),
    }
    with Stubber(stubbed) as stub:
        stub.add_client_error(
            "start_execution",
            service_error_code=code,
            service_message="server said no",
            http_status_code=status,
        )
        with pytest.raises(expected) as caught:
            asyncio.run(calls.call("start_execution", stateMachineArn=MACHINE, name="x", errors=errors))
    assert fragment in str(caught.value)
    assert type(caught.value.__cause__).__module__.startswith("botocore")  # raised from the SDK's error
    if retryable is not None:
        assert caught.value.retryable is retryable
    asyncio.run(calls.close())


def test_no_server_is_a_retryable_engine_error() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    calls = AwsCalls(client(f"http://127.0.0.1:{port}"), TYPE)
    with pytest.raises(EngineError) as caught:
        asyncio.run(calls.call("list_state_machines"))
    assert caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)
    asyncio.run(calls.close())


async def test_runtime_start_without_a_server_fails_cleanly(tmp_path: Path) -> None:
    """open() against nothing: an EngineError, the component closed, no botocore error escaping."""
    import turnout

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    resources = write_component(
        tmp_path,
        {"region": "us-east-1", "endpoint": f"http://127.0.0.1:{port}", "accessKey": "a", "secretKey": "b"},
    )
    runtime = turnout.AsyncRuntime(resources, working_dir=tmp_path)
    with pytest.raises(EngineError) as caught:
        await runtime.start()
    assert caught.value.operation == "list_state_machines"
    assert caught.value.retryable


# -- definitions files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "name"),
    [("orders.asl.json", "orders"), ("orders.asl.yaml", "orders"), ("a-b_c.json", "a-b_c"), ("x.yml", "x")],
)
def test_workflow_name_of_a_file(file: str, name: str) -> None:
    assert workflow_name(Path(file)) == name


def test_state_machine_names() -> None:
    assert check_machine_name("orders-v2_x") is None
    assert check_machine_name("has space") is not None
    assert check_machine_name("a:b") is not None
    assert check_machine_name("x" * 81) is not None


PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


@pytest.mark.parametrize(
    ("files", "definitions", "extra", "fragment"),
    [
        ({}, "missing/*.asl.json", {}, "matches no file"),
        ({}, "nothing.asl.json", {}, "no definition file 'nothing.asl.json'"),
        ({"bad.asl.json": "{oops"}, "*.asl.json", {}, "bad.asl.json is not valid JSON"),
        ({"bad.asl.yaml": "a: [b"}, "*.asl.yaml", {}, "is not valid YAML"),
        ({"list.asl.json": "[1]"}, "*.asl.json", {}, "is not an Amazon States Language definition"),
        ({"no states.asl.json": json.dumps(PASS)}, "*.asl.json", {}, "cannot name a state machine"),
        (
            {"one/orders.asl.json": json.dumps(PASS), "two/orders.json": json.dumps(PASS)},
            '["one/*.asl.json", "two/*.json"]',
            {},
            "both define the workflow 'orders'",
        ),
        (
            {"orders.asl.json": json.dumps(PASS)},
            "*.asl.json",
            {"stateMachines": {"orders": MACHINE}},
            "stateMachines already maps",
        ),
    ],
)
def test_bad_definitions_stop_start_up_naming_the_file(
    tmp_path: Path, files: dict[str, str], definitions: str, extra: dict[str, Any], fragment: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    metadata = {"region": "us-east-1", "roleArn": ROLE, "definitions": definitions, **extra}
    folder = write_component(tmp_path, metadata)
    with pytest.raises(ComponentError) as caught:
        build_components(read_specs(folder, load_registry()), working_dir=tmp_path, workflows=None)
    errors = getattr(caught.value, "errors", None) or [caught.value]
    assert len(errors) == 1, caught.value
    error = errors[0]
    assert fragment in error.reason, error.message
    assert error.component == "sfn"
    assert error.field is not None and error.field.endswith("definitions")
    assert error.file is not None and error.file.endswith("sfn.yaml")


def test_yaml_definitions_are_read(tmp_path: Path) -> None:
    (tmp_path / "flow.asl.yaml").write_text("StartAt: P\nStates:\n  P: {Type: Pass, End: true}\n")
    folder = write_component(tmp_path, {"region": "us-east-1", "roleArn": ROLE, "definitions": "*.asl.yaml"})
    built = build_components(read_specs(folder, load_registry()), working_dir=tmp_path, workflows=None)
    component = built["sfn"][1]
    assert [d.workflow for d in component._definitions] == ["flow"]
    assert component._definitions[0].document == PASS
