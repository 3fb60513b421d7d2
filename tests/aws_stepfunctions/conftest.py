"""A moto server that really executes state machines, started once for these tests and stopped after.

moto interprets Amazon States Language only once its config key
``stepfunctions.execute_state_machine`` is on; it is set through
``POST /moto-api/config`` before any state machine is created (state
machines created before the switch live in another backend and are never
run). Without moto, the tests skip with the reason, and with ``CI=true``
they fail (``turnout.testing.missing_server``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout import AsyncRuntime, AsyncWorkflowClient, RuntimeStatus
from turnout.testing import missing_server

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/turnout-tests"
START_TIMEOUT = 60.0
"""Seconds moto's server may take to answer (about 1 s alone, a few more on a busy machine)."""
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "asl"


@dataclass
class MotoServer:
    """A running ``moto.server`` on a loopback port."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, service: str) -> Any:
        """A boto3 client of this server with test credentials and no retries."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )

    def metadata(self, **extra: Any) -> dict[str, Any]:
        """Component metadata pointing at this server."""
        return {
            "region": REGION,
            "endpoint": self.endpoint,
            "accessKey": "testing",
            "secretKey": "testing",
            **extra,
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, body: dict[str, Any] | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return bytes(answer.read())


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's server on a free loopback port, executing state machines; stopped after the session."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        missing_server(
            f"moto's server is not installed ({exc}): pip install -e 'plugins/aws_stepfunctions[test]'"
        )
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    # The interpreter's service integrations (SQS...) call back to localhost:$MOTO_PORT.
    env = {**os.environ, "MOTO_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        delay = 0.05
        while True:
            if process.poll() is not None:
                missing_server(f"moto_server exited with code {process.returncode}: {_tail(log)}")
            try:
                _request(f"{endpoint}/moto-api/config")
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    missing_server(f"moto_server did not answer at {endpoint} within {START_TIMEOUT:g}s")
                time.sleep(delay)  # polling a starting server, bounded by the deadline above
                delay = min(delay * 2, 0.5)
        # Before any state machine exists: the switch selects the executing backend.
        _request(
            f"{endpoint}/moto-api/config",
            {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        )
        yield MotoServer(endpoint, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def sfn(moto_server: MotoServer) -> Any:
    """A boto3 Step Functions client of the test server."""
    return moto_server.client("stepfunctions")


@pytest.fixture(scope="session")
def queue_url(moto_server: MotoServer) -> str:
    """An SQS queue on the test server that .waitForTaskToken tasks send their tokens to."""
    return str(moto_server.client("sqs").create_queue(QueueName="turnout-callbacks")["QueueUrl"])


def unique(prefix: str) -> str:
    """A state machine or instance name no other test uses (the server lives for the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def callback_task(queue: str, **fields: Any) -> dict[str, Any]:
    """A Task state that sends its token over SQS and waits for it (the raise_event convention)."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"TaskToken.$": "$$.Task.Token", "input.$": "$"}},
        **fields,
    }


def write_component(tmp_path: Path, metadata: dict[str, Any], name: str = "sfn") -> Path:
    """A component file of type workflow.aws.stepfunctions under ``tmp_path/components``."""
    folder = tmp_path / "components"
    folder.mkdir(exist_ok=True)
    document = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {
            "type": "workflow.aws.stepfunctions",
            "version": "v1",
            "metadata": [{"name": key, "value": value} for key, value in metadata.items()],
        },
    }
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return folder


def write_definitions(tmp_path: Path, definitions: dict[str, dict[str, Any]]) -> Path:
    """ASL files ``<workflow>.asl.json`` in ``tmp_path/asl``; returns the folder."""
    folder = tmp_path / "asl"
    folder.mkdir(exist_ok=True)
    for workflow, document in definitions.items():
        (folder / f"{workflow}.asl.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


@asynccontextmanager
async def open_client(tmp_path: Path, metadata: dict[str, Any]) -> AsyncIterator[AsyncWorkflowClient]:
    """A started runtime with one Step Functions component; yields its client."""
    resources = write_component(tmp_path, metadata)
    async with AsyncRuntime(resources, working_dir=tmp_path) as runtime:
        yield runtime.client("sfn")


@asynccontextmanager
async def deployed(
    moto_server: MotoServer, tmp_path: Path, definitions: dict[str, dict[str, Any]], **extra: Any
) -> AsyncIterator[AsyncWorkflowClient]:
    """A client whose component creates ``definitions`` (workflow name -> ASL) at start-up."""
    folder = write_definitions(tmp_path, definitions)
    metadata = moto_server.metadata(roleArn=ROLE, definitions=str(folder / "*.asl.json"), **extra)
    async with open_client(tmp_path, metadata) as client:
        yield client


TIMEOUT = 20.0
"""Seconds any one execution in these tests may take (the longest Wait state is 2 s)."""


async def finish(client: AsyncWorkflowClient, instance_id: str, expected: RuntimeStatus) -> Any:
    """Poll get (DescribeExecution) until the execution ends, within a deadline; check its status.

    Faster than the generic ``wait`` (whose polls back off to one second),
    because these executions take milliseconds to a couple of seconds.
    """
    deadline = time.monotonic() + TIMEOUT
    delay = 0.01
    while True:
        state = await client.get(instance_id)
        assert state is not None, f"no instance {instance_id}"
        if state.runtime_status.is_terminal:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{instance_id} did not finish within {TIMEOUT:g}s (status {state.runtime_status})")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    assert state.runtime_status is expected, (state.runtime_status, state.failure, state.output)
    return state


async def until_scheduled(client: AsyncWorkflowClient, instance_id: str) -> None:
    """Poll the history, within a deadline, until a task of the execution is scheduled."""
    deadline = time.monotonic() + TIMEOUT
    delay = 0.01
    while not any(event.kind == "TaskScheduled" for event in await client.history(instance_id)):
        if time.monotonic() > deadline:
            pytest.fail(f"{instance_id}: no task was scheduled within {TIMEOUT:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
