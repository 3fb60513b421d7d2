"""Dapr's gRPC workflow API over a component that is not the built-in engine (the adapter template's).

The RPCs go through the generic management API, so any engine answers them,
and what an engine cannot do is refused with UNIMPLEMENTED, naming it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, workflow_pb2
from sidecar_support import ROOT

from turnout import AsyncRuntime
from turnout._plugins import load_registry
from turnout._server._config import ServerConfig
from turnout._server._grpc import GrpcOptions, start_grpc_server

EXAMPLE_YAML = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: example
spec:
  type: workflow.example
  version: v1
  metadata:
  - name: workflows
    value: {greet: echo, broken: fail, forever: sleep}
"""


def _template_plugin() -> object:
    template = str(ROOT / "plugins" / "_template")
    if template not in sys.path:
        sys.path.insert(0, template)
    return importlib.import_module("turnout_example._plugin")


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[dapr_pb2_grpc.DaprStub]:
    (tmp_path / "example.yaml").write_text(EXAMPLE_YAML)
    registry = load_registry(extra_plugins=(_template_plugin(),))
    async with AsyncRuntime(tmp_path / "example.yaml", registry=registry, working_dir=tmp_path) as runtime:
        server, port = await start_grpc_server(runtime, ServerConfig(), GrpcOptions(port=0), [])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield dapr_pb2_grpc.DaprStub(channel)
        finally:
            await server.stop(None)


async def test_any_component_answers(stub: dapr_pb2_grpc.DaprStub) -> None:
    started = await stub.StartWorkflowBeta1(
        workflow_pb2.StartWorkflowRequest(workflow_component="example", workflow_name="greet", input=b'"hi"')
    )
    state = await stub.GetWorkflowBeta1(
        workflow_pb2.GetWorkflowRequest(instance_id=started.instance_id, workflow_component="example")
    )
    assert state.runtime_status == "COMPLETED"
    assert state.properties["dapr.workflow.output"] == '"hi"'

    broken = await stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(workflow_name="broken"))
    state = await stub.GetWorkflowBeta1(workflow_pb2.GetWorkflowRequest(instance_id=broken.instance_id))
    assert state.runtime_status == "FAILED"
    assert state.properties["dapr.workflow.failure.error_type"] == "ExampleFailure"

    forever = await stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(workflow_name="forever"))
    await stub.TerminateWorkflowBeta1(workflow_pb2.TerminateWorkflowRequest(instance_id=forever.instance_id))
    await stub.PurgeWorkflowBeta1(workflow_pb2.PurgeWorkflowRequest(instance_id=forever.instance_id))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetWorkflowBeta1(workflow_pb2.GetWorkflowRequest(instance_id=forever.instance_id))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND


async def test_what_an_engine_cannot_do_is_unimplemented(stub: dapr_pb2_grpc.DaprStub) -> None:
    forever = await stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(workflow_name="forever"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.PauseWorkflowBeta1(workflow_pb2.PauseWorkflowRequest(instance_id=forever.instance_id))
    assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "workflow.example" in (refused.value.details() or "")
    assert ("dapr-error-code", "ERR_NOT_SUPPORTED") in tuple(refused.value.trailing_metadata() or ())
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(workflow_name="nope"))
    assert unknown.value.code() is grpc.StatusCode.INVALID_ARGUMENT
