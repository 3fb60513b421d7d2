"""The thread runner behind plain ``def`` activities: results, errors, parallelism, its limit, shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from turnout_builtin._threads import ThreadRunner


async def test_results_and_errors_come_back_to_their_callers() -> None:
    runner = ThreadRunner(4, "test")

    def boom() -> None:
        raise ValueError("no")

    try:
        results = await asyncio.gather(
            *(runner.run(lambda n=n: n * n) for n in range(50)), runner.run(boom), return_exceptions=True
        )
    finally:
        runner.shutdown()
    assert results[:50] == [n * n for n in range(50)]
    assert isinstance(results[50], ValueError) and str(results[50]) == "no"


async def test_blocking_calls_run_side_by_side_up_to_the_limit() -> None:
    """Four calls that each wait for the other three finish only if four threads run at once."""
    runner = ThreadRunner(4, "test")
    together = threading.Barrier(4, timeout=10)
    running = 0
    most = 0
    lock = threading.Lock()

    def meet() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        together.wait()
        with lock:
            running -= 1
        return threading.current_thread().name

    try:
        names = await asyncio.gather(*(runner.run(meet) for _ in range(8)))  # two rounds of four
    finally:
        runner.shutdown()
    assert most == 4  # never more than the limit
    assert len(set(names)) == 4 and all(name.startswith("test-") for name in names)


async def test_shutdown_cancels_what_has_not_started() -> None:
    runner = ThreadRunner(1, "test")
    started, release = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return release.wait(10)

    first = asyncio.ensure_future(runner.run(hold))
    queued = asyncio.ensure_future(runner.run(lambda: "never"))
    assert await asyncio.to_thread(started.wait, 10)  # the one thread holds the first; the second waits
    runner.shutdown()
    release.set()
    assert await first is True
    with pytest.raises(asyncio.CancelledError):
        await queued


def test_a_runner_serves_one_live_loop_and_follows_it_when_it_closes() -> None:
    """Results go to the loop that asked: a second live loop is refused, not left waiting forever."""
    runner = ThreadRunner(2, "test")
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert first.run_until_complete(runner.run(lambda: 1)) == 1
        with pytest.raises(RuntimeError, match="one event loop"):
            second.run_until_complete(runner.run(lambda: 2))
        first.close()
        assert second.run_until_complete(runner.run(lambda: 3)) == 3
    finally:
        runner.shutdown()
        first.close()
        second.close()
