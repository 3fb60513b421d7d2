"""Processes for the gRPC tests: ``turnout serve --grpc-port 0`` and workers written with the Dapr SDK.

Every process reports when it is ready on its output (the server the ports it
listens on, a worker ``worker ready``); the tests wait for those lines, never
for a fixed time. A module of its own (not conftest.py): several test folders
have a conftest module, and only a unique name is safe to import.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SDK_APP = HERE / "sdk_app.py"
TURNOUT = str(Path(sys.executable).with_name("turnout"))
READY_TIMEOUT = 60.0

STARTED: list[Process] = []
"""Every process started, so that a failing test leaves none running (see conftest.py)."""


class Process:
    """A child process whose output lines are collected, to wait on conditions over them."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._open = 0
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Process:
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        STARTED.append(self)
        self._open = 2
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        return self

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._open -= 1
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = READY_TIMEOUT) -> re.Match[str]:
        """The first output line matching ``pattern``; fails with the output if none comes."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for m in map(regex.search, self.lines) if m), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or self._open == 0, timeout)
            match = found()
        if match is None:
            raise AssertionError(f"no output matching {pattern!r} from {self.args[:3]}:\n{self.output}")
        return match

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(READY_TIMEOUT)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(READY_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(READY_TIMEOUT)


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
