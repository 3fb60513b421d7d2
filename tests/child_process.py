"""A child process whose output lines are collected, so tests wait on what it prints, never on a clock.

Shared by the server tests (``turnout serve``) and the gRPC tests (the server
and workers written with the Dapr SDK). A top-level module with a name of its
own: the test folders each have a conftest module, and only a unique name is
safe to import from several of them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any


class ChildProcess:
    """Start ``args``; read its stdout and stderr on threads; wait for a line that matches."""

    TIMEOUT = 30.0
    """Seconds a wait may take by default."""

    def __init__(
        self, args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.args = args
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._open_streams = 0
        self.process: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    def spawn(self) -> None:
        """Start the process; its output is collected from now on."""
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._open_streams = 2
        for stream in (self.process.stdout, self.process.stderr):
            reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._open_streams -= 1
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        """The first output line matching ``pattern``; fails with the output if none comes or it exits."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for m in map(regex.search, self.lines) if m), None)

        with self._changed:
            self._changed.wait_for(
                lambda: found() is not None or self._open_streams == 0, timeout or self.TIMEOUT
            )
            match = found()
        if match is None:
            raise AssertionError(f"no output matching {pattern!r} from {self.args[:3]}:\n{self.output}")
        return match

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status, once it has exited and its output is read to the end."""
        assert self.process is not None
        code = self.process.wait(timeout or self.TIMEOUT)
        for reader in self._readers:
            reader.join(timeout or self.TIMEOUT)
        return code

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(self.TIMEOUT)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.wait()
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(self.TIMEOUT)
