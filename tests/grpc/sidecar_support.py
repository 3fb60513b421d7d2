"""Processes for the gRPC tests: ``turnout serve --grpc-port 0`` and workers written with the Dapr SDK.

Every process reports when it is ready on its output (the server the ports it
listens on, a worker ``worker ready``); the tests wait for those lines, never
for a fixed time. A module of its own (not conftest.py): several test folders
have a conftest module, and only a unique name is safe to import.
"""

from __future__ import annotations

import sys
from pathlib import Path

from child_process import ChildProcess

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SDK_APP = HERE / "sdk_app.py"
TURNOUT = str(Path(sys.executable).with_name("turnout"))
READY_TIMEOUT = 60.0

STARTED: list[Process] = []
"""Every process started, so that a failing test leaves none running (see conftest.py)."""


class Process(ChildProcess):
    """A child process of a gRPC test, recorded so that a failing test leaves none running."""

    TIMEOUT = READY_TIMEOUT

    def start(self) -> Process:
        self.spawn()
        STARTED.append(self)
        return self


class Server(Process):
    """``turnout serve`` with gRPC on a free port."""

    GRPC = r"serving the gRPC API on (\S+):(\d+)"
    HTTP = r"serving the workflow API on (\S+)"

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__([TURNOUT, "serve", "--http-port", "0", "--grpc-port", "0", *args], cwd=cwd, env=env)
        self.grpc_port = 0
        self.url = ""

    def start(self) -> Server:
        super().start()
        self.url = self.wait_for(self.HTTP).group(1)  # printed once both servers listen
        self.grpc_port = int(self.wait_for(self.GRPC).group(2))
        return self

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def start_worker(server: Server, cwd: Path, env: dict[str, str] | None = None) -> Process:
    """The SDK app as a worker of ``server``, ready (its work-item stream is open)."""
    worker_env = {"DAPR_GRPC_ENDPOINT": server.endpoint, **(env or {})}
    worker = Process([sys.executable, str(SDK_APP)], cwd=cwd, env=worker_env).start()
    worker.wait_for(r"worker ready")
    return worker
