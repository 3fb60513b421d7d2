"""``turnout serve --grpc-port``: refused configurations exit 2 before anything listens."""

from __future__ import annotations

import socket
from pathlib import Path

from sidecar_support import TURNOUT, Process


def test_a_grpc_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = Process([TURNOUT, "serve", "--http-port", "0", "--grpc-port", str(port)], cwd=tmp_path).start()
        assert proc.process is not None
        assert proc.process.wait(60) == 2
    proc.wait_for(r"Error: cannot serve gRPC: cannot listen on 127.0.0.1:\d+")
    assert "serving the workflow API" not in proc.output
