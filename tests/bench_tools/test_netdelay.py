"""The benchmark's network stand-in (bench/netdelay.py): bytes pass both ways, in order, late by the delay.

Only the lower bound of the delay is checked: how much later than that a
chunk leaves depends on the machine, and that is what the benchmark reports
(its round trip is measured through the proxy in every run).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bench.netdelay import DelayProxy

DELAY = 0.02


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A loopback server that echoes each connection's bytes until the client half-closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()
    server.close()


def receive(conn: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        chunk = conn.recv(65536)
        assert chunk, f"the connection closed after {len(got)} of {size} bytes"
        got += chunk
    return got


def test_bytes_go_both_ways_in_order_and_a_round_trip_takes_two_delays(echo_server: tuple[str, int]) -> None:
    with DelayProxy(echo_server, DELAY) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as conn:
        sent = b"".join(i.to_bytes(4, "big") for i in range(50_000))  # several chunks' worth
        started = time.perf_counter()
        conn.sendall(sent)
        assert receive(conn, len(sent)) == sent
        assert time.perf_counter() - started >= 2 * DELAY
        for _ in range(3):  # each exchange pays the delay again, both ways
            started = time.perf_counter()
            conn.sendall(b"ping")
            assert receive(conn, 4) == b"ping"
            assert time.perf_counter() - started >= 2 * DELAY
        conn.shutdown(socket.SHUT_WR)  # a half-close reaches the server, whose close comes back
        assert conn.recv(1) == b""


def test_closing_the_proxy_cuts_its_connections(echo_server: tuple[str, int]) -> None:
    proxy = DelayProxy(echo_server, DELAY)
    with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
        conn.sendall(b"x")
        assert receive(conn, 1) == b"x"
        proxy.close()
        conn.settimeout(10)
        assert conn.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
