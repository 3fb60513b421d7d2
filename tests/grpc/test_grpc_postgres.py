"""Two servers on one PostgreSQL store, each with its own SDK worker: one engine, shared work.

Every instance completes whichever server started it, and when one
server's worker goes away, the other server's worker takes its work (a
server with no worker lets remote instances go rather than hold them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from sidecar_support import Server, start_worker

TIMEOUT = 60

COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: pg}}
spec:
  type: state.postgresql
  version: v1
  metadata:
  - {{name: connectionString, value: "{conninfo}"}}
  - {{name: schema, value: {schema}}}
  - {{name: leaseDurationInSeconds, value: "3"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: dapr}}
spec:
  type: workflow.builtin
  version: v1
  metadata:
  - {{name: stateStore, value: pg}}
"""


@pytest.fixture
def resources(tmp_path: Path, postgres_conninfo: str) -> Iterator[Path]:
    import psycopg

    schema = f"grpc_{uuid.uuid4().hex[:10]}"
    path = tmp_path / "components.yaml"
    path.write_text(COMPONENTS.format(conninfo=postgres_conninfo, schema=schema))
    yield path
    with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_two_servers_share_one_store(tmp_path: Path, resources: Path) -> None:
    servers = [Server(tmp_path, "--resources-path", str(resources)).start() for _ in range(2)]
    workers = [start_worker(server, tmp_path) for server in servers]
    clients = [DaprWorkflowClient(host="127.0.0.1", port=str(s.grpc_port)) for s in servers]
    try:
        ids = [clients[n % 2].schedule_new_workflow("chain", input=n) for n in range(10)]
        for n, instance_id in enumerate(ids):
            state = clients[(n + 1) % 2].wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
            assert state is not None and state.runtime_status is WorkflowStatus.COMPLETED
            assert state.serialized_output == str((n + 2) ** 2)
        # Server 0 loses its worker: what it starts now is done by server 1's worker.
        workers[0].stop()
        later = [clients[0].schedule_new_workflow("fan_out", input=[n, n]) for n in range(5)]
        for n, instance_id in enumerate(later):
            state = clients[0].wait_for_workflow_completion(instance_id, timeout_in_seconds=TIMEOUT)
            assert state is not None and state.serialized_output == str(2 * n * n)
    finally:
        for client in clients:
            client.close()
        for worker in workers:
            worker.stop()
        for server in servers:
            assert server.stop() == 0, server.output
