"""The official Dapr workflow SDK (``dapr.ext.workflow``), unchanged, against ``turnout serve --grpc-port``.

The app (sdk_app.py) runs its ``WorkflowRuntime`` in a worker process; the
tests drive it with ``DaprWorkflowClient``, as a Dapr user would, and check
results and statuses through the SDK and through Turnout's HTTP API (one
engine behind both).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from sidecar_support import Process, Server

TIMEOUT = 30


@pytest.fixture(scope="module")
def client(server: Server, worker: Process) -> Iterator[DaprWorkflowClient]:
    sdk = DaprWorkflowClient(host="127.0.0.1", port=str(server.grpc_port))
    try:
        yield sdk
    finally:
        sdk.close()


def run(client: DaprWorkflowClient, name: str, value: object) -> object:
    instance_id = client.schedule_new_workflow(name, input=value)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None
    assert state.runtime_status is WorkflowStatus.COMPLETED, state.failure_details
    return state.serialized_output


def test_activity_chaining(client: DaprWorkflowClient) -> None:
    assert run(client, "chain", 3) == "25"  # (3 + 1 + 1) ** 2


def test_fan_out_fan_in(client: DaprWorkflowClient) -> None:
    assert run(client, "fan_out", [1, 2, 3, 4, 5]) == "55"


def test_a_durable_timer(client: DaprWorkflowClient) -> None:
    waited = float(str(run(client, "timer", 0.3)))
    assert waited >= 0.3


def test_an_external_event(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("approval", input="order-1")
    client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
    client.raise_workflow_event(instance_id, "approve", data={"by": "ann"})
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED
    assert state.serialized_output == '{"order": "order-1", "decision": {"by": "ann"}}'


def test_child_workflows(client: DaprWorkflowClient) -> None:
    assert run(client, "parent", 1) == "[20, 30]"


def test_a_retry_policy(client: DaprWorkflowClient) -> None:
    key = uuid.uuid4().hex[:8]
    assert run(client, "retrying", key) == f'"{key} after 3 attempts"'


def test_continue_as_new(client: DaprWorkflowClient) -> None:
    assert run(client, "counter", 0) == "3"


def test_an_event_wait_with_a_timeout(client: DaprWorkflowClient) -> None:
    assert str(run(client, "deadline", 0.2)).startswith('"no answer (')
    instance_id = client.schedule_new_workflow("deadline", input=30)
    client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
    client.raise_workflow_event(instance_id, "answer", data="yes")
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.serialized_output == '"answer: yes"'


def test_a_scheduled_start(client: DaprWorkflowClient) -> None:
    start_at = datetime.now(UTC) + timedelta(seconds=0.5)
    instance_id = client.schedule_new_workflow("chain", input=0, start_at=start_at)
    state = client.get_workflow_state(instance_id)
    assert state is not None and state.runtime_status is WorkflowStatus.PENDING
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.serialized_output == "4"
    assert state.last_updated_at >= start_at.replace(tzinfo=None)  # the SDK gives naive UTC times


def test_terminate(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("waiting", input=None)
    client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
    client.terminate_workflow(instance_id)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.runtime_status is WorkflowStatus.TERMINATED


def test_suspend_and_resume(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("waiting", input=None)
    client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
    client.pause_workflow(instance_id)
    state = client.get_workflow_state(instance_id)
    assert state is not None and state.runtime_status is WorkflowStatus.SUSPENDED
    client.raise_workflow_event(instance_id, "go", data=41)  # buffered while suspended
    client.resume_workflow(instance_id)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED
    assert state.serialized_output == "42"
    assert state.serialized_custom_status == "waiting for go"


def test_purge(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("chain", input=1)
    client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    client.purge_workflow(instance_id)
    assert client.get_workflow_state(instance_id) is None


def test_a_failing_workflow_reports_its_failure(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("no_such_workflow", input=None)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.runtime_status is WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert "no_such_workflow" in state.failure_details.message


def test_history_and_instance_ids(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("chain", input=2)
    client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    kinds = [event.event_type.name for event in client.get_workflow_history(instance_id)]
    assert kinds.count("TASK_SCHEDULED") == 3 and kinds.count("TASK_COMPLETED") == 3
    assert kinds[-1] == "EXECUTION_COMPLETED"
    assert instance_id in client.list_workflow_instance_ids(page_size=1000).instance_ids


def test_the_http_api_sees_the_same_instances(server: Server, client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("chain", input=3)
    client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    body = httpx.get(f"{server.url}/v1.0/workflows/dapr/{instance_id}").json()
    assert body["runtimeStatus"] == "COMPLETED"
    assert body["workflowName"] == "chain"
    assert body["properties"]["dapr.workflow.output"] == "25"


def test_in_process_workflows_use_remote_activities_and_children(client: DaprWorkflowClient) -> None:
    # "mixed" is registered in the server (local_flows.py); "square" and "child" only in the worker.
    assert run(client, "mixed", 3) == '{"squared":9,"doubled":18,"remote_child":40}'


def test_remote_workflows_call_in_process_children(client: DaprWorkflowClient) -> None:
    assert run(client, "parent_of_local", 5) == "15"


def test_patches_are_kept_across_turns(client: DaprWorkflowClient) -> None:
    instance_id = client.schedule_new_workflow("patched", input=None)
    client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
    client.raise_workflow_event(instance_id, "go", data=1)
    state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
    assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED, state.failure_details
    assert state.serialized_output == '"new/new/1"'


def test_bad_instance_ids_are_refused_as_everywhere(client: DaprWorkflowClient) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client.schedule_new_workflow("chain", input=1, instance_id="not a valid id!")
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    instance_id = client.schedule_new_workflow("chain", input=1, instance_id=f"dup-{uuid.uuid4().hex[:8]}")
    with pytest.raises(grpc.RpcError) as taken:
        client.schedule_new_workflow("chain", input=1, instance_id=instance_id)
    assert taken.value.code() is grpc.StatusCode.ALREADY_EXISTS
