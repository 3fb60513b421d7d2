"""The HTTP server's API token and TLS settings apply to gRPC too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, workflow_pb2
from sidecar_support import HERE, SDK_APP, Server, start_worker

TOKEN = "s3cret-token-for-tests"


def sdk_run(cwd: Path, env: dict[str, str], name: str, value: str) -> str:
    """The SDK's client in a process of its own (its settings are read from the environment once)."""
    done = subprocess.run(
        [sys.executable, str(SDK_APP), "run", name, value],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def authority(folder: Path, name: str) -> Any:
    """A CA from the server tests' PKI (tests/server/pki.py, a package beside this folder)."""
    sys.path.insert(0, str(HERE.parent))
    try:
        from server.pki import Authority
    finally:
        sys.path.remove(str(HERE.parent))
    return Authority(folder, name)


def test_a_call_without_the_token_is_refused(tmp_path: Path) -> None:
    server = Server(tmp_path, env={"TURNOUT_API_TOKEN": TOKEN}).start()
    try:
        with grpc.insecure_channel(server.endpoint) as channel:
            stub = dapr_pb2_grpc.DaprStub(channel)
            request = workflow_pb2.GetWorkflowRequest(instance_id="nobody")
            for metadata in (None, (("dapr-api-token", "wrong"),)):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.GetWorkflowBeta1(request, metadata=metadata)
                assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as passed:
                stub.GetWorkflowBeta1(request, metadata=(("dapr-api-token", TOKEN),))
            assert passed.value.code() is grpc.StatusCode.NOT_FOUND  # past the token check
            # The work-item stream is guarded too: no worker connects without the token.
            from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as service
            from dapr.ext.workflow._durabletask.internal import protos as pb

            items = service.TaskHubSidecarServiceStub(channel).GetWorkItems(pb.GetWorkItemsRequest())
            with pytest.raises(grpc.RpcError) as stream:
                next(iter(items))
            assert stream.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # The SDK sends DAPR_API_TOKEN as dapr-api-token: the worker and client work with it.
        worker = start_worker(server, tmp_path, env={"DAPR_API_TOKEN": TOKEN})
        try:
            env = {"DAPR_GRPC_ENDPOINT": server.endpoint, "DAPR_API_TOKEN": TOKEN}
            assert sdk_run(tmp_path, env, "chain", "3") == "COMPLETED 25"
        finally:
            worker.stop()
    finally:
        assert server.stop() == 0, server.output
    assert TOKEN not in server.output


def test_tls(tmp_path: Path) -> None:
    ca = authority(tmp_path, "turnout-grpc-test-ca")
    pair = ca.issue("server", server=True)
    server = Server(tmp_path, "--tls-cert", str(pair.cert), "--tls-key", str(pair.key)).start()
    try:
        assert "gRPC API on 127.0.0.1" in server.output and "(TLS)" in server.output
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.pair.cert.read_bytes())
        with grpc.secure_channel(server.endpoint, credentials) as channel:
            with pytest.raises(grpc.RpcError) as answered:
                dapr_pb2_grpc.DaprStub(channel).GetWorkflowBeta1(
                    workflow_pb2.GetWorkflowRequest(instance_id="x")
                )
            assert answered.value.code() is grpc.StatusCode.NOT_FOUND
        with grpc.insecure_channel(server.endpoint) as plain:
            with pytest.raises(grpc.RpcError) as refused:
                dapr_pb2_grpc.DaprStub(plain).GetWorkflowBeta1(
                    workflow_pb2.GetWorkflowRequest(instance_id="x"), timeout=5
                )
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        # The SDK speaks TLS to an https:// endpoint; gRPC's roots variable makes it trust the test CA.
        env = {
            "DAPR_GRPC_ENDPOINT": f"https://127.0.0.1:{server.grpc_port}",
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca.pair.cert),
        }
        worker = start_worker(server, tmp_path, env=env)
        try:
            assert sdk_run(tmp_path, env, "fan_out", "[1, 2, 3]") == "COMPLETED 14"
        finally:
            worker.stop()
    finally:
        assert server.stop() == 0, server.output


def test_mutual_tls(tmp_path: Path) -> None:
    ca = authority(tmp_path, "turnout-grpc-mtls-ca")
    pair, client = ca.issue("server", server=True), ca.issue("client", server=False)
    args = ["--tls-cert", str(pair.cert), "--tls-key", str(pair.key), "--tls-client-ca", str(ca.pair.cert)]
    server = Server(tmp_path, *args).start()
    request = workflow_pb2.GetWorkflowRequest(instance_id="x")
    try:
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=ca.pair.cert.read_bytes(),
            private_key=client.key.read_bytes(),
            certificate_chain=client.cert.read_bytes(),
        )
        with grpc.secure_channel(server.endpoint, with_cert) as channel:
            with pytest.raises(grpc.RpcError) as answered:
                dapr_pb2_grpc.DaprStub(channel).GetWorkflowBeta1(request)
            assert answered.value.code() is grpc.StatusCode.NOT_FOUND
        without = grpc.ssl_channel_credentials(root_certificates=ca.pair.cert.read_bytes())
        with grpc.secure_channel(server.endpoint, without) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                dapr_pb2_grpc.DaprStub(channel).GetWorkflowBeta1(request, timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        assert server.stop() == 0, server.output
