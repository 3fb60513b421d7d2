"""DBOS (``dbos`` on PyPI), one workload per process (run by ``python -m bench``).

Written the two ways DBOS's docs write it, and the orchestrator keeps the
better figure of the two for each workload (``--style``):

- ``async``: ``@DBOS.workflow()`` and ``@DBOS.step()`` on coroutines,
  ``DBOS.start_workflow_async`` to run many at once, and ``asyncio.gather``
  over steps started in a fixed order for the fan-out (the docs' pattern for
  parallel steps in one workflow).
- ``sync``: plain functions, ``DBOS.start_workflow`` (a thread per workflow)
  to run many at once, and for the fan-out a queue registered with
  ``DBOS.register_queue`` on which the workflow enqueues its 100 steps and
  waits for their handles (the docs' queue tutorial).

The system database is the URL the orchestrator prepared: a fresh SQLite
file or a fresh PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import logging
import time
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

T_BEFORE_DBOS = time.perf_counter()

from dbos import DBOS, DBOSConfig  # noqa: E402  (between two clocks, for the start-up breakdown)

T_AFTER_DBOS = time.perf_counter()

FAN_OUT_QUEUE = "bench-fan-out"


@DBOS.step()
async def inc(x: int) -> int:
    """A trivial step: the cost measured is the checkpointing, not the work."""
    return x + 1


@DBOS.workflow()
async def three_steps(x: int) -> int:
    """W1: three sequential steps."""
    x = await inc(x)
    x = await inc(x)
    x = await inc(x)
    return x


@DBOS.workflow()
async def fan_out(n: int) -> int:
    """W2: n steps started in a deterministic order, then gathered."""
    tasks = [asyncio.create_task(inc(i)) for i in range(n)]
    return sum(await asyncio.gather(*tasks))


@DBOS.step()
def inc_sync(x: int) -> int:
    """The sync style's trivial step."""
    return x + 1


@DBOS.workflow()
def three_steps_sync(x: int) -> int:
    """W1, sync style."""
    x = inc_sync(x)
    x = inc_sync(x)
    x = inc_sync(x)
    return x


@DBOS.workflow()
def fan_out_sync(n: int) -> int:
    """W2, sync style: the steps enqueued on a queue, then their handles waited on in order."""
    queue = DBOS.retrieve_queue(FAN_OUT_QUEUE)
    assert queue is not None, "the fan-out queue is registered at launch"
    handles = [queue.enqueue(inc_sync, i) for i in range(n)]
    return sum(h.get_result() for h in handles)


def launch(url: str) -> None:
    """Configure and launch DBOS on the system database the orchestrator prepared, with its queue."""
    config: DBOSConfig = {"name": "turnout-bench", "system_database_url": url, "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(FAN_OUT_QUEUE)  # the defaults a user of the queue tutorial gets


def run_one_sync(workflow: Any, arg: int) -> Any:
    """Start a workflow and wait for its result, sync style."""
    return DBOS.start_workflow(workflow, arg).get_result()


def sync_workload(workload: str, t0: float | None, url: str) -> dict[str, Any] | None:
    """The four workloads in the sync style (start-up emits its own line)."""
    imported = since(t0)
    opening = time.perf_counter()
    launch(url)
    opened = time.perf_counter()
    if workload == "startup":
        output = run_one_sync(three_steps_sync, 1)
        done = time.perf_counter()
        check([output], lambda _: 4, "start-up")
        emit(startup_record(t0, imported, opened - opening, done - opened))
        return None
    for _ in range(WARM_UP):
        run_one_sync(three_steps_sync, 0)
    run_one_sync(fan_out_sync, 10)
    samples: list[float] = []
    if workload == "w1":
        started = time.perf_counter()
        handles = [DBOS.start_workflow(three_steps_sync, i) for i in range(W1_INSTANCES)]
        outputs = [h.get_result() for h in handles]
        elapsed = time.perf_counter() - started
        check(outputs, lambda i: i + 3, "W1")
        return {"instances": W1_INSTANCES, "seconds": elapsed, "workflows_per_second": W1_INSTANCES / elapsed}
    if workload == "latency":
        for i in range(LATENCY_RUNS):
            started = time.perf_counter()
            output = run_one_sync(three_steps_sync, i)
            samples.append((time.perf_counter() - started) * 1000)
            check([output], lambda _, i=i: i + 3, "W1 latency")
        return summary_ms(samples)
    for _ in range(W2_RUNS):
        started = time.perf_counter()
        output = run_one_sync(fan_out_sync, W2_WIDTH)
        samples.append((time.perf_counter() - started) * 1000)
        check([output], lambda _: sum(range(1, W2_WIDTH + 1)), "W2")
    return {"width": W2_WIDTH, **summary_ms(samples)}


def startup_record(t0: float | None, imported: float | None, open_s: float, first_s: float) -> dict[str, Any]:
    """The start-up line, with the breakdown the doc reports."""
    return {
        "in_process_seconds": since(t0),
        "interpreter_and_imports_seconds": imported,
        "import_system_seconds": T_AFTER_DBOS - T_BEFORE_DBOS,
        "open_seconds": open_s,
        "first_workflow_seconds": first_s,
        "versions": dbos_versions(),
    }


def dbos_versions() -> dict[str, str]:
    """The distributions DBOS's figures depend on."""
    return versions("dbos", "sqlalchemy", "psycopg")


async def run_one(workflow: Any, arg: int) -> Any:
    """Start a workflow and wait for its result, as the docs do."""
    handle = await DBOS.start_workflow_async(workflow, arg)
    return await handle.get_result()


async def warm_up() -> None:
    """A few instances of each workflow before the clock starts."""
    for _ in range(WARM_UP):
        await run_one(three_steps, 0)
    await run_one(fan_out, 10)


async def w1() -> dict[str, Any]:
    """500 workflows started together; completed workflows per second, first start to last result."""
    started = time.perf_counter()
    handles = await asyncio.gather(*(DBOS.start_workflow_async(three_steps, i) for i in range(W1_INSTANCES)))
    outputs = await asyncio.gather(*(h.get_result() for h in handles))
    elapsed = time.perf_counter() - started
    check(outputs, lambda i: i + 3, "W1")
    return {"instances": W1_INSTANCES, "seconds": elapsed, "workflows_per_second": W1_INSTANCES / elapsed}


async def latency() -> dict[str, Any]:
    """One workflow at a time, start to result."""
    samples = []
    for i in range(LATENCY_RUNS):
        started = time.perf_counter()
        output = await run_one(three_steps, i)
        samples.append((time.perf_counter() - started) * 1000)
        check([output], lambda _, i=i: i + 3, "W1 latency")
    return summary_ms(samples)


async def w2() -> dict[str, Any]:
    """A fan-out to 100 steps, gathered, 10 times in a row."""
    samples = []
    for _ in range(W2_RUNS):
        started = time.perf_counter()
        output = await run_one(fan_out, W2_WIDTH)
        samples.append((time.perf_counter() - started) * 1000)
        check([output], lambda _: sum(range(1, W2_WIDTH + 1)), "W2")
    return {"width": W2_WIDTH, **summary_ms(samples)}


async def startup(t0: float | None, url: str) -> None:
    """Process start to the first workflow's result; the line goes out before DBOS is destroyed."""
    imported = since(t0)
    opening = time.perf_counter()
    await asyncio.to_thread(launch, url)  # launch is synchronous: keep the loop free, as an app would
    opened = time.perf_counter()
    output = await run_one(three_steps, 1)
    done = time.perf_counter()
    check([output], lambda _: 4, "start-up")
    emit(startup_record(t0, imported, opened - opening, done - opened))


async def main_async(args: Any) -> dict[str, Any] | None:
    """Launch, warm up, run the one workload asked for."""
    if args.workload == "startup":
        await startup(args.t0, args.url)
        return None
    await asyncio.to_thread(launch, args.url)
    await warm_up()
    work = {"w1": w1, "latency": latency, "w2": w2}[args.workload]
    return await work()


def main() -> None:
    """Parse the orchestrator's arguments, run, print the result line, destroy DBOS."""
    p = parser(__doc__ or "")
    p.add_argument(
        "--url", required=True, help="DBOS system database URL (sqlite:///... or postgresql://...)"
    )
    p.add_argument("--style", choices=["async", "sync"], default="async")
    args = p.parse_args()
    if args.workload == "memory":
        raise SystemExit("memory is measured for Turnout only")
    logging.getLogger("dbos").setLevel(logging.WARNING)
    try:
        if args.style == "sync":
            result = sync_workload(args.workload, args.t0, args.url)
        else:
            result = asyncio.run(main_async(args))
        if result is not None:
            emit({**result, "versions": dbos_versions()})
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
