"""The workloads as Temporal workflows and activities (kept apart for Temporal's sandbox).

Temporal re-imports a workflow's module inside its deterministic sandbox, so
this module imports nothing but the SDK and the standard library.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

TIMEOUT = timedelta(seconds=60)


@activity.defn
async def inc(x: int) -> int:
    """A trivial activity: the cost measured is the server round trips, not the work."""
    return x + 1


@workflow.defn
class ThreeSteps:
    """W1: three sequential activities."""

    @workflow.run
    async def run(self, x: int) -> int:
        """Each activity waits for the one before it."""
        for _ in range(3):
            x = await workflow.execute_activity(inc, x, start_to_close_timeout=TIMEOUT)
        return x


@workflow.defn
class FanOut:
    """W2: n activities at once, gathered."""

    @workflow.run
    async def run(self, n: int) -> int:
        """All scheduled in one workflow task, then awaited together."""
        results = await asyncio.gather(
            *(workflow.execute_activity(inc, i, start_to_close_timeout=TIMEOUT) for i in range(n))
        )
        return sum(results)
