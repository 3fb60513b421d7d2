"""Dapr's workflow RPCs (service ``dapr.proto.runtime.v1.Dapr``) against ``turnout serve --grpc-port``.

They go through the generic management API, so they drive in-process
workflows and the SDK worker's remote ones alike; errors carry the gRPC
status of Dapr's table (dapr-workflow-api.md 1.3).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient
from dapr.proto.runtime.v1 import dapr_pb2_grpc, workflow_pb2
from sidecar_support import Process, Server

WAIT = 30.0


@pytest.fixture(scope="module")
def stub(server: Server, worker: Process) -> Iterator[dapr_pb2_grpc.DaprStub]:
    with grpc.insecure_channel(server.endpoint) as channel:
        yield dapr_pb2_grpc.DaprStub(channel)


def new_id() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"


def status_of(stub: dapr_pb2_grpc.DaprStub, instance_id: str) -> workflow_pb2.GetWorkflowResponse:
    return stub.GetWorkflowBeta1(
        workflow_pb2.GetWorkflowRequest(instance_id=instance_id, workflow_component="dapr")
    )


def wait_started(server: Server, instance_id: str) -> None:
    """Wait until the instance runs (Dapr's gRPC API has no wait: the sidecar protocol's is used)."""
    sdk = DaprWorkflowClient(host="127.0.0.1", port=str(server.grpc_port))
    try:
        sdk.wait_for_workflow_start(instance_id, timeout_in_seconds=WAIT)
    finally:
        sdk.close()


def wait_finished(server: Server, instance_id: str) -> None:
    """Wait until the instance ends."""
    sdk = DaprWorkflowClient(host="127.0.0.1", port=str(server.grpc_port))
    try:
        sdk.wait_for_workflow_completion(instance_id, timeout_in_seconds=WAIT)
    finally:
        sdk.close()


@pytest.mark.parametrize("workflow", ["gate", "approval"], ids=["in-process", "remote-worker"])
def test_the_whole_lifecycle(server: Server, stub: dapr_pb2_grpc.DaprStub, workflow: str) -> None:
    instance_id = new_id()
    started = stub.StartWorkflowBeta1(
        workflow_pb2.StartWorkflowRequest(
            instance_id=instance_id,
            workflow_component="dapr",
            workflow_name=workflow,
            input=json.dumps("approve").encode(),
        )
    )
    assert started.instance_id == instance_id
    wait_started(server, instance_id)
    state = status_of(stub, instance_id)
    assert state.runtime_status == "RUNNING"
    assert state.workflow_name == workflow
    assert state.properties["dapr.workflow.input"] == '"approve"'
    assert state.created_at.seconds > 0

    stub.PauseWorkflowBeta1(
        workflow_pb2.PauseWorkflowRequest(instance_id=instance_id, workflow_component="dapr")
    )
    assert status_of(stub, instance_id).runtime_status == "SUSPENDED"
    stub.ResumeWorkflowBeta1(
        workflow_pb2.ResumeWorkflowRequest(instance_id=instance_id, workflow_component="dapr")
    )
    assert status_of(stub, instance_id).runtime_status == "RUNNING"

    stub.RaiseEventWorkflowBeta1(
        workflow_pb2.RaiseEventWorkflowRequest(
            instance_id=instance_id,
            workflow_component="dapr",
            event_name="approve",
            event_data=b'{"ok": true}',
        )
    )
    wait_finished(server, instance_id)
    state = status_of(stub, instance_id)
    assert state.runtime_status == "COMPLETED"
    assert json.loads(state.properties["dapr.workflow.output"])  # each workflow shapes its own output

    stub.PurgeWorkflowBeta1(
        workflow_pb2.PurgeWorkflowRequest(instance_id=instance_id, workflow_component="dapr")
    )
    with pytest.raises(grpc.RpcError) as gone:
        status_of(stub, instance_id)
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND


def test_terminate_and_the_alpha1_forms(server: Server, stub: dapr_pb2_grpc.DaprStub) -> None:
    instance_id = new_id()
    stub.StartWorkflowAlpha1(
        workflow_pb2.StartWorkflowRequest(instance_id=instance_id, workflow_name="waiting")
    )  # no component: the only one is meant, as in Dapr 1.15+
    wait_started(server, instance_id)
    stub.TerminateWorkflowAlpha1(workflow_pb2.TerminateWorkflowRequest(instance_id=instance_id))
    state = stub.GetWorkflowAlpha1(workflow_pb2.GetWorkflowRequest(instance_id=instance_id))
    assert state.runtime_status == "TERMINATED"


def test_a_scheduled_start(stub: dapr_pb2_grpc.DaprStub) -> None:
    instance_id = new_id()
    stub.StartWorkflowBeta1(
        workflow_pb2.StartWorkflowRequest(
            instance_id=instance_id,
            workflow_name="gate",
            input=b'"x"',
            options={"dapr.workflow.start_time": "2999-01-01T00:00:00Z"},
        )
    )
    state = status_of(stub, instance_id)
    assert state.runtime_status == "PENDING"
    assert state.properties["turnout.scheduled_start_at"].startswith("2999-01-01")


@pytest.mark.parametrize(
    ("call", "request_", "code", "error_code"),
    [
        (
            "GetWorkflowBeta1",
            workflow_pb2.GetWorkflowRequest(instance_id="no-such-instance"),
            grpc.StatusCode.NOT_FOUND,
            "ERR_INSTANCE_ID_NOT_FOUND",
        ),
        (
            "TerminateWorkflowBeta1",
            workflow_pb2.TerminateWorkflowRequest(instance_id="no-such-instance"),
            grpc.StatusCode.NOT_FOUND,
            "ERR_INSTANCE_ID_NOT_FOUND",
        ),
        (
            "PurgeWorkflowBeta1",
            workflow_pb2.PurgeWorkflowRequest(instance_id="no-such-instance"),
            grpc.StatusCode.NOT_FOUND,
            "ERR_INSTANCE_ID_NOT_FOUND",
        ),
        (
            "StartWorkflowBeta1",
            workflow_pb2.StartWorkflowRequest(instance_id="bad id!", workflow_name="gate"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ERR_INSTANCE_ID_INVALID",
        ),
        (
            "StartWorkflowBeta1",
            workflow_pb2.StartWorkflowRequest(workflow_name=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ERR_WORKFLOW_NAME_MISSING",
        ),
        (
            "RaiseEventWorkflowBeta1",
            workflow_pb2.RaiseEventWorkflowRequest(instance_id="x", event_name=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ERR_WORKFLOW_EVENT_NAME_MISSING",
        ),
        (
            "GetWorkflowBeta1",
            workflow_pb2.GetWorkflowRequest(instance_id="x", workflow_component="nope"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ERR_WORKFLOW_COMPONENT_NOT_FOUND",
        ),
    ],
)
def test_errors_map_to_dapr_status_codes(
    stub: dapr_pb2_grpc.DaprStub, call: str, request_: object, code: grpc.StatusCode, error_code: str
) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        getattr(stub, call).with_call(request_)
    assert failed.value.code() is code, failed.value.details()
    assert ("dapr-error-code", error_code) in tuple(failed.value.trailing_metadata() or ())


def test_the_rest_of_the_dapr_api_is_unimplemented(stub: dapr_pb2_grpc.DaprStub) -> None:
    from dapr.proto.runtime.v1 import state_pb2

    with pytest.raises(grpc.RpcError) as failed:
        stub.GetState(state_pb2.GetStateRequest(store_name="s", key="k"))
    assert failed.value.code() is grpc.StatusCode.UNIMPLEMENTED
