"""A loopback TCP proxy that holds every chunk for a while each way: a network's round trip, here.

On one machine a round trip to PostgreSQL costs 0.05 ms, so latency measures
only CPU; in production the database is on another machine, 0.2-1 ms away,
and every round trip a step makes is paid again. Linux's ``netem`` would add
the delay in the kernel, but it needs a kernel module these machines lack
and would slow every loopback user; this proxy delays only the connections
of the system under test. Chunks keep their order and are not held back by
one another: each leaves ``delay`` after it arrived, as on a wire.

Standard library only (the orchestrator runs it in the peers' venv).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import socket
import threading
import time

_PR_SET_TIMERSLACK = 29


def _tight_timer() -> None:
    """Ask Linux to wake this thread within 1 us of its sleep, not the default 50 us late."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)


class DelayProxy:
    """Listens on a free loopback port; every connection goes on to ``target``, ``delay`` late each way."""

    def __init__(self, target: tuple[str, int], delay_seconds: float) -> None:
        self.target = target
        self.delay = delay_seconds
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="delay-proxy", daemon=True).start()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        # shutdown, not only close: it wakes the threads blocked on these sockets, and sends FIN.
        for s in (self._listener, *sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            self._pipe(client, upstream)
            self._pipe(upstream, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Two threads: one reads and stamps each chunk, the other sends it when its time comes."""
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        ready = threading.Condition()

        def read() -> None:
            while True:
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                with ready:
                    queue.append((time.perf_counter() + self.delay, data))
                    ready.notify()
                if not data:
                    return

        def send() -> None:
            _tight_timer()
            while True:
                with ready:
                    while not queue:
                        ready.wait()
                    due, data = queue.popleft()
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                try:
                    if not data:
                        sink.shutdown(socket.SHUT_WR)  # the other side closed: pass it on, in order
                        return
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, name="delay-proxy-read", daemon=True).start()
        threading.Thread(target=send, name="delay-proxy-send", daemon=True).start()
