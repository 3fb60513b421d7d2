"""Connected remote workers and the work waiting for them.

A work item (a workflow turn or an activity) is submitted once and awaited;
it goes to whichever connected worker asks first, under a fresh completion
token. When that worker's stream ends before it answers, the item goes back
in the queue for another worker (or the next one to connect): a worker that
disconnects mid-turn loses nothing. An answer carrying a token that is no
longer current (a worker answering after it was given up on) is ignored.

This module imports no protocol code, so the built-in component can look
for an expected hub without loading gRPC.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("turnout.builtin.sidecar")

Attach = Callable[[Any], None]

expected_attach: contextvars.ContextVar[Attach | None] = contextvars.ContextVar(
    "turnout_builtin_sidecar_attach", default=None
)
"""Set by the gRPC hook before the runtime opens its components: each built-in
component opened in that context calls it with itself before its engine
starts, so no instance of a remote workflow is ever run (and failed) locally."""


class NoWorkers(Exception):
    """No worker is connected to take a work item: the engine lets the work go."""


@dataclass(eq=False)
class _Item:
    request: Any
    """A WorkItem without its completion token."""
    future: asyncio.Future[Any] | None
    token: str = ""
    worker: int | None = None
    attempts: int = 0


_CLOSED = _Item(None, None)
"""Put in the queue by :meth:`WorkerHub.close`, once per stream, to end them."""


@dataclass(eq=False)
class Worker:
    """One connected GetWorkItems stream."""

    id: int
    tokens: set[str] = field(default_factory=set)


class WorkerHub:
    """Hands work items to connected workers and their answers back to whoever submitted them."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._inflight: dict[str, _Item] = {}
        self._workers: dict[int, Worker] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.connected = asyncio.Event()
        """Set while at least one worker is connected."""
        self.on_connect: list[Callable[[], None]] = []
        """Called when a worker connects (engines look for the work they let go)."""

    @property
    def worker_count(self) -> int:
        """How many workers are connected now."""
        return len(self._workers)

    async def submit(self, request: Any) -> Any:
        """Queue ``request`` (a WorkItem) for the next free worker; its answer.

        NoWorkers when no worker is connected, or when the last one leaves
        before the item was answered: another process sharing the store may
        have workers, so the item is not held here.
        """
        if not self._workers:
            raise NoWorkers()
        future = asyncio.get_running_loop().create_future()
        item = _Item(request, future)
        self._queue.put_nowait(item)
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()  # abandoned (the engine stopped): nobody takes it now
            self._inflight.pop(item.token, None)

    def connect(self) -> Worker:
        """A new worker stream."""
        worker = Worker(next(self._ids))
        self._workers[worker.id] = worker
        self.connected.set()
        log.info("remote worker %d connected (%d connected)", worker.id, len(self._workers))
        for callback in self.on_connect:
            callback()
        return worker

    def disconnect(self, worker: Worker) -> None:
        """The stream ended: what it had not answered goes back to the queue."""
        self._workers.pop(worker.id, None)
        if not self._workers:
            self.connected.clear()
        requeued = 0
        for token in worker.tokens:
            item = self._inflight.pop(token, None)
            if item is not None and item.future is not None and not item.future.done():
                item.worker = None
                self._queue.put_nowait(item)
                requeued += 1
        worker.tokens.clear()
        if not self._workers:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item.future is not None and not item.future.done():
                    item.future.set_exception(NoWorkers())
        log.info(
            "remote worker %d disconnected (%d connected); %d unanswered work item(s) handed over"
            + ("" if self._workers else ", to the next worker to connect (or to another server)"),
            worker.id,
            len(self._workers),
            requeued,
        )

    def close(self) -> None:
        """The server is stopping: every stream ends now (see :meth:`next`)."""
        self._closed = True
        for _ in range(len(self._workers)):
            self._queue.put_nowait(_CLOSED)

    async def next(self, worker: Worker) -> Any | None:
        """The next work item for ``worker``, with its completion token set; None once closed."""
        while not self._closed:
            item = await self._queue.get()
            if item is _CLOSED:
                break
            if item.future is None or item.future.done():
                continue  # abandoned while it waited
            item.token = uuid.uuid4().hex
            item.worker = worker.id
            item.attempts += 1
            self._inflight[item.token] = item
            worker.tokens.add(item.token)
            sent = type(item.request)()
            sent.CopyFrom(item.request)
            sent.completionToken = item.token
            return sent
        return None

    def complete(self, token: str, response: Any) -> bool:
        """Deliver a worker's answer; False when the token is unknown or no longer current."""
        item = self._inflight.pop(token, None)
        if item is None:
            return False
        worker = self._workers.get(item.worker) if item.worker is not None else None
        if worker is not None:
            worker.tokens.discard(token)
        if item.future is None or item.future.done():
            return False
        item.future.set_result(response)
        return True
