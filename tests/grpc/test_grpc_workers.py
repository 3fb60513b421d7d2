"""Remote workers come and go: work a worker took and never answered goes to the next one.

A worker is killed (SIGKILL, no goodbye) while it runs an activity; another
one connects and the instance completes, the activity done by the newcomer.
Work started while no worker is connected waits for one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from sidecar_support import Server, start_worker

from turnout._server._runner import GRPC_STOP_GRACE

TIMEOUT = 60


def test_a_worker_killed_mid_activity_loses_nothing(tmp_path: Path) -> None:
    gate = tmp_path / "never-created"
    with_server = Server(tmp_path).start()
    try:
        first = start_worker(with_server, tmp_path, env={"SLOW_ACTIVITY_GATE": str(gate)})
        client = DaprWorkflowClient(host="127.0.0.1", port=str(with_server.grpc_port))
        try:
            instance_id = client.schedule_new_workflow("slow", input="parcel")
            first.wait_for(r"gated activity started: parcel")
            first.kill()
            # Started while no worker is connected: it waits for the next one.
            waiting_id = client.schedule_new_workflow("chain", input=1)
            second = start_worker(with_server, tmp_path)
            try:
                state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
                assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED
                assert second.process is not None
                assert json.loads(state.serialized_output or "null") == f"parcel done by {second.process.pid}"
                waited = client.wait_for_workflow_completion(waiting_id, timeout_in_seconds=TIMEOUT)
                assert waited is not None and waited.serialized_output == "9"
            finally:
                second.stop()
        finally:
            client.close()
    finally:
        assert with_server.stop() == 0, with_server.output
    assert "unanswered work item(s) handed over" in with_server.output


def test_several_workers_share_the_work(tmp_path: Path) -> None:
    with_server = Server(tmp_path).start()
    workers = [start_worker(with_server, tmp_path) for _ in range(2)]
    client = DaprWorkflowClient(host="127.0.0.1", port=str(with_server.grpc_port))
    try:
        ids = [client.schedule_new_workflow("fan_out", input=list(range(n))) for n in range(1, 9)]
        outputs = [
            client.wait_for_workflow_completion(i, timeout_in_seconds=TIMEOUT).serialized_output  # type: ignore[union-attr]
            for i in ids
        ]
        assert outputs == [str(sum(v * v for v in range(n))) for n in range(1, 9)]
    finally:
        client.close()
        for worker in workers:
            worker.stop()
        assert with_server.stop() == 0, with_server.output
    assert "(2 connected)" in with_server.output


def test_remote_instances_survive_a_server_crash(tmp_path: Path) -> None:
    """SIGKILL the server while a remote instance has an event to apply; a new server finishes it.

    The new server finds the event in the inbox as it starts, and must hand
    the turn to a worker, never run it itself (the workflow is not registered
    in the server, so a local turn would fail the instance).
    """
    first = Server(tmp_path).start()
    worker = start_worker(first, tmp_path)
    client = DaprWorkflowClient(host="127.0.0.1", port=str(first.grpc_port))
    try:
        instance_id = client.schedule_new_workflow("waiting", input=None)
        client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
        worker.kill()
        client.raise_workflow_event(instance_id, "go", data=1)  # no worker: it waits in the inbox
    finally:
        client.close()
    first.kill()
    second = Server(tmp_path).start()  # the same working folder: the same SQLite store
    client = DaprWorkflowClient(host="127.0.0.1", port=str(second.grpc_port))
    try:
        state = client.get_workflow_state(instance_id)
        assert state is not None and state.runtime_status is WorkflowStatus.RUNNING
        worker = start_worker(second, tmp_path)
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
        assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED
        assert state.serialized_output == "2"
    finally:
        client.close()
        worker.stop()
        assert second.stop() == 0, second.output


def test_a_worker_gone_mid_turn_loses_nothing(tmp_path: Path) -> None:
    """A raw stream takes a workflow turn and goes away without answering; a real worker gets the turn."""
    from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as service
    from dapr.ext.workflow._durabletask.internal import protos as pb

    with_server = Server(tmp_path).start()
    client = DaprWorkflowClient(host="127.0.0.1", port=str(with_server.grpc_port))
    try:
        with grpc.insecure_channel(with_server.endpoint) as channel:
            items = service.TaskHubSidecarServiceStub(channel).GetWorkItems(pb.GetWorkItemsRequest())
            instance_id = client.schedule_new_workflow("chain", input=2)
            item = next(iter(items))
            assert item.workflowRequest.instanceId == instance_id
            assert item.workflowRequest.newEvents[0].HasField("workflowStarted")
            items.cancel()  # gone mid-turn, the turn unanswered
        worker = start_worker(with_server, tmp_path)
        try:
            state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
            assert state is not None and state.serialized_output == "16"
        finally:
            worker.stop()
    finally:
        client.close()
        assert with_server.stop() == 0, with_server.output
    assert "1 unanswered work item(s) handed over" in with_server.output


def test_the_server_stops_promptly_with_workers_connected(tmp_path: Path) -> None:
    """SIGTERM ends the workers' streams at once rather than after the grace period of calls in flight."""
    with_server = Server(tmp_path).start()
    worker = start_worker(with_server, tmp_path)
    try:
        started = time.monotonic()
        assert with_server.stop() == 0, with_server.output
        assert time.monotonic() - started < GRPC_STOP_GRACE - 0.5
    finally:
        worker.stop()


def test_a_raw_worker_answers_with_complete_workflow_task(tmp_path: Path) -> None:
    """The protocol by hand: take a turn from the stream, answer with the CompleteWorkflowTask alias."""
    from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as service
    from dapr.ext.workflow._durabletask.internal import protos as pb
    from google.protobuf import empty_pb2, wrappers_pb2

    with_server = Server(tmp_path).start()
    client = DaprWorkflowClient(host="127.0.0.1", port=str(with_server.grpc_port))
    try:
        with grpc.insecure_channel(with_server.endpoint) as channel:
            sidecar = service.TaskHubSidecarServiceStub(channel)
            sidecar.Hello(empty_pb2.Empty())
            items = sidecar.GetWorkItems(pb.GetWorkItemsRequest())
            instance_id = client.schedule_new_workflow("by_hand", input={"n": 1})
            item = next(iter(items))
            started = [e for e in item.workflowRequest.newEvents if e.HasField("executionStarted")]
            assert started[0].executionStarted.name == "by_hand"
            assert started[0].executionStarted.input.value == '{"n":1}'
            done = pb.WorkflowAction(
                id=0,
                completeWorkflow=pb.CompleteWorkflowAction(
                    workflowStatus=pb.ORCHESTRATION_STATUS_COMPLETED,
                    result=wrappers_pb2.StringValue(value="7"),
                ),
            )
            sidecar.CompleteWorkflowTask(
                pb.WorkflowResponse(
                    instanceId=instance_id, actions=[done], completionToken=item.completionToken
                )
            )
            state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
            assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED
            assert state.serialized_output == "7"
            items.cancel()
    finally:
        client.close()
        assert with_server.stop() == 0, with_server.output
