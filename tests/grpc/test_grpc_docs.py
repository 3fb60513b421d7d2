"""docs/grpc.md stays true: its example app runs, as the page says, against ``turnout serve --grpc-port``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sidecar_support import ROOT, Server

PAGE = ROOT / "docs" / "grpc.md"
STUB = re.compile(r"```python\n(import grpc\n.*?DaprStub.*?)^```$", re.MULTILINE | re.DOTALL)
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
RUN = re.compile(
    r"```console\n\$ DAPR_GRPC_ENDPOINT=localhost:50001 python (\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL
)


def test_the_page_starts_the_server_as_tested() -> None:
    text = PAGE.read_text()
    assert "$ turnout serve --grpc-port 50001\n" in text
    assert "Turnout is serving the gRPC API on 127.0.0.1:50001 (plaintext)" in text


def test_the_example_app_runs_as_shown(tmp_path: Path) -> None:
    text = PAGE.read_text()
    name, code = EXAMPLE.search(text).groups()  # type: ignore[union-attr]
    ran, expected = RUN.search(text).groups()  # type: ignore[union-attr]
    assert ran == name
    (tmp_path / name).write_text(code)
    server = Server(tmp_path).start()
    try:
        done = subprocess.run(
            [sys.executable, name],
            cwd=tmp_path,
            env={"DAPR_GRPC_ENDPOINT": server.endpoint, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        stub_code = STUB.search(text).group(1).replace("localhost:50001", server.endpoint)  # type: ignore[union-attr]
        stub = subprocess.run(
            [sys.executable, "-c", stub_code], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    finally:
        assert server.stop() == 0, server.output
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected.strip()
    # The Dapr API example starts an "order" that no worker runs any more (the app stopped its own).
    assert stub.returncode == 0, stub.stderr
    assert stub.stdout.strip() == "PENDING"
