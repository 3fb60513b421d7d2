"""Group commit for calls that arrive together: many starts (or reads) in one transaction.

A store pays per transaction (a round trip to PostgreSQL, a commit), not per
row. Requests that arrive while a batch is under way wait for it and go
together as the next batch; a request that arrives alone goes at once. So a
single call waits for nobody, and under load the batches grow by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the request type
R = TypeVar("R")


class Batcher(Generic[I, R]):
    """Runs ``run(items)`` for the requests queued so far, one batch at a time.

    ``run`` returns one result per item, in order; an item's result may be an
    exception, which is raised to that item's caller only. An exception raised
    by ``run`` itself fails the whole batch.
    """

    def __init__(
        self, run: Callable[[list[I]], Awaitable[list[R | BaseException]]], *, limit: int = 256
    ) -> None:
        self._run = run
        self._limit = limit  # a bound on the rows one transaction holds in memory at once
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        """Queue ``item`` and wait for its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._limit], self._queue[self._limit :]
                try:
                    results = await self._run([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue  # its caller gave up waiting
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        except asyncio.CancelledError:
            for _, future in self._queue:  # the loop is going away: nobody will run these
                future.cancel()
            self._queue = []
            raise
        finally:
            self._drainer = None
