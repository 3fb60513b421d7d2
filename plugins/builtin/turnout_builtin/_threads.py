"""Blocking calls on a pool of threads, their results handed back to the event loop in bursts.

Plain ``def`` activities run here, and so do the PostgreSQL store's transactions.

``loop.run_in_executor`` costs, per call, a ``concurrent.futures.Future`` (with
its own lock and condition), a second future chained to it, and a write to the
loop's self-pipe when the call ends. For activities that take microseconds
that hand-over is most of their cost, and under load the writes wake the loop
once per activity. Here a call is a queue entry and an asyncio future; the
threads put results on a list, and the loop is woken once for everything that
finished since it last looked.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class ThreadRunner:
    """Runs blocking callables on up to ``max_threads`` threads, for one event loop.

    The threads are daemons: a process that exits does not wait for the
    activities still running (their tasks' locks lapse and another attempt runs
    them), and one that never closes its runtime is not kept alive by idle threads.
    """

    def __init__(self, max_threads: int, name: str) -> None:
        self.max_threads = max_threads
        self.name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards the three below
        self._unfinished = 0  # jobs queued or running: there are as many threads, up to the limit
        self._done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._signalled = False  # a hand-back to the loop is scheduled and has not run yet
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on a pool thread; its result, or its exception, raised here."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None and not self._loop.is_closed():
                # Results are handed to one loop: a second one would never see its own.
                raise RuntimeError(f"{self.name}: a thread runner serves one event loop at a time")
            self._loop = loop
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._unfinished += 1
            more = self._unfinished > len(self._threads) and len(self._threads) < self.max_threads
        if more:
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._jobs.put((fn, future))
        return await future

    def shutdown(self) -> None:
        """Drop the jobs not started (their callers are cancelled); the threads end after the rest."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            job[1].cancel()
            with self._lock:
                self._unfinished -= 1
        for _ in self._threads:
            self._jobs.put(_STOP)
        self._threads = []

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fn, future = job
            try:
                outcome: tuple[Any, BaseException | None] = (fn(), None)
            except BaseException as exc:  # handed to the caller, as run_in_executor would
                outcome = (None, exc)
            with self._lock:
                self._unfinished -= 1
                self._done.append((future, *outcome))
                wake = not self._signalled
                self._signalled = True
            if wake:
                assert self._loop is not None
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                    self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            self._signalled = False
            done, self._done = self._done, []
        for future, value, error in done:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
