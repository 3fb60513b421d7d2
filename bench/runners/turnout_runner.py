"""Turnout's built-in engine, one workload per process (run by ``python -m bench``).

Written as a user would from the README: a ``turnout.Workflows`` registry,
generator workflows, plain ``def`` activities on the engine's thread pool and
the async client in the same process. The store is chosen by component YAML
exactly as in production: none for SQLite (the default file under the working
directory) or a ``state.postgresql`` component naming a fresh schema.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from bench.common import (
    LATENCY_RUNS,
    MEMORY_INSTANCES,
    W1_INSTANCES,
    W2_RUNS,
    W2_WIDTH,
    WARM_UP,
    check,
    emit,
    parser,
    rss_bytes,
    since,
    summary_ms,
    versions,
)

T_BEFORE_TURNOUT = time.perf_counter()

import turnout  # noqa: E402  (imported between two clocks, so start-up can say what the import cost)

T_AFTER_TURNOUT = time.perf_counter()

MEMORY_RELEASE_EVERY = 20

wf = turnout.Workflows()

POSTGRES_COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: pg}}
spec:
  type: state.postgresql
  version: v1
  metadata:
  - {{name: connectionString, value: "{conninfo}"}}
  - {{name: schema, value: {schema}}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: bench}}
spec:
  type: workflow.builtin
  version: v1
  metadata:
  - {{name: stateStore, value: pg}}
"""


@wf.activity
def inc(ctx: turnout.ActivityContext, x: int) -> int:
    """A trivial activity: the cost measured is the engine's, not the work's."""
    return x + 1


@wf.workflow
def three_steps(ctx: turnout.WorkflowContext, x: int) -> Generator[turnout.Task[Any], Any, int]:
    """W1: three sequential activities."""
    x = yield ctx.call_activity(inc, input=x)
    x = yield ctx.call_activity(inc, input=x)
    x = yield ctx.call_activity(inc, input=x)
    return x


@wf.workflow
def fan_out(ctx: turnout.WorkflowContext, n: int) -> Generator[turnout.Task[Any], Any, int]:
    """W2: n activities at once, gathered."""
    results = yield turnout.when_all([ctx.call_activity(inc, input=i) for i in range(n)])
    return sum(results)


@wf.workflow
def waiter(ctx: turnout.WorkflowContext, x: int) -> Generator[turnout.Task[Any], Any, int]:
    """Memory: an instance parked on an external event, as an approval step would be."""
    extra = yield ctx.wait_for_external_event("go")
    return x + extra


def runtime(args: Any) -> turnout.AsyncRuntime:
    """The runtime on the store the orchestrator prepared (a fresh folder or a fresh schema)."""
    folder = Path(args.dir)
    if args.store == "sqlite":
        return turnout.AsyncRuntime(workflows=wf, working_dir=folder)
    resources = folder / "components.yaml"
    resources.write_text(POSTGRES_COMPONENTS.format(conninfo=args.conninfo, schema=args.schema))
    return turnout.AsyncRuntime(resources, workflows=wf, working_dir=folder)


async def warm_up(client: turnout.AsyncWorkflowClient) -> None:
    """A few instances of each workflow before the clock starts."""
    for _ in range(WARM_UP):
        await client.wait(await client.start(three_steps, 0), timeout=60)
    await client.wait(await client.start(fan_out, 10), timeout=60)


async def w1(client: turnout.AsyncWorkflowClient) -> dict[str, Any]:
    """500 instances started together; completed workflows per second, first start to last result."""
    started = time.perf_counter()
    ids = await asyncio.gather(*(client.start(three_steps, i) for i in range(W1_INSTANCES)))
    states = await asyncio.gather(*(client.wait(iid, timeout=600) for iid in ids))
    elapsed = time.perf_counter() - started
    check([s.output for s in states], lambda i: i + 3, "W1")
    return {"instances": W1_INSTANCES, "seconds": elapsed, "workflows_per_second": W1_INSTANCES / elapsed}


async def latency(client: turnout.AsyncWorkflowClient) -> dict[str, Any]:
    """One instance at a time, start to result."""
    samples = []
    for i in range(LATENCY_RUNS):
        started = time.perf_counter()
        state = await client.wait(await client.start(three_steps, i), timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
        check([state.output], lambda _, i=i: i + 3, "W1 latency")
    return summary_ms(samples)


async def w2(client: turnout.AsyncWorkflowClient) -> dict[str, Any]:
    """A fan-out to 100 activities gathered with when_all, 10 times in a row."""
    samples = []
    for _ in range(W2_RUNS):
        started = time.perf_counter()
        state = await client.wait(await client.start(fan_out, W2_WIDTH), timeout=120)
        samples.append((time.perf_counter() - started) * 1000)
        check([state.output], lambda _: sum(range(1, W2_WIDTH + 1)), "W2")
    return {"width": W2_WIDTH, **summary_ms(samples)}


async def memory(client: turnout.AsyncWorkflowClient) -> dict[str, Any]:
    """RSS growth while 10,000 instances wait on an event; then a sample released and checked."""
    for _ in range(WARM_UP):  # the waiting and the releasing code paths are loaded before the baseline
        iid = await client.start(waiter, 0)
        await client.raise_event(iid, "go", 1)
        await client.wait(iid, timeout=60)
    gc.collect()
    await asyncio.sleep(0.5)
    before = rss_bytes()
    started = time.perf_counter()
    ids: list[str] = []
    for first in range(0, MEMORY_INSTANCES, 500):  # batches, as a busy front end would start them
        ids += await asyncio.gather(
            *(client.start(waiter, i) for i in range(first, min(first + 500, MEMORY_INSTANCES)))
        )
    started_s = time.perf_counter() - started
    # Every instance has taken its first turn (it is RUNNING, parked on the event) once none is PENDING.
    while (await client.list(status="PENDING", workflow_name="waiter", limit=1)).items:
        await asyncio.sleep(0.2)
    parked_s = time.perf_counter() - started
    gc.collect()
    await asyncio.sleep(0.5)
    after = rss_bytes()
    # Every 20th instance is released and must complete: parked is not the same as lost. Releasing
    # all 10,000 would add a minute or two to `make bench` and measure raise_event, not memory.
    released = time.perf_counter()
    sample = ids[::MEMORY_RELEASE_EVERY]
    await asyncio.gather(*(client.raise_event(iid, "go", 1) for iid in sample))
    states = await asyncio.gather(*(client.wait(iid, timeout=300) for iid in sample))
    check([s.output for s in states], lambda i: i * MEMORY_RELEASE_EVERY + 1, "memory")
    return {
        "instances": MEMORY_INSTANCES,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "bytes_per_instance": (after - before) / MEMORY_INSTANCES,
        "start_seconds": started_s,
        "all_waiting_seconds": parked_s,
        "released": len(sample),
        "release_seconds": time.perf_counter() - released,
    }


async def startup(args: Any) -> dict[str, Any]:
    """Process start to the first workflow's result, split into interpreter + imports, open, first run.

    The result line goes out the moment the result is in: the parent times its
    arrival, and closing the runtime afterwards is not part of the figure.
    """
    imported = since(args.t0)
    opening = time.perf_counter()
    async with runtime(args) as rt:
        client = rt.client()
        opened = time.perf_counter()
        state = await client.wait(await client.start(three_steps, 1), timeout=60)
        done = time.perf_counter()
        check([state.output], lambda _: 4, "start-up")
        emit(
            {
                "in_process_seconds": since(args.t0),
                "interpreter_and_imports_seconds": imported,
                "import_turnout_seconds": T_AFTER_TURNOUT - T_BEFORE_TURNOUT,
                "open_seconds": opened - opening,
                "first_workflow_seconds": done - opened,
                "versions": store_versions(args),
            }
        )
    return {}


async def main_async(args: Any) -> dict[str, Any]:
    """Open the runtime, warm up, run the one workload asked for."""
    if args.workload == "startup":
        return await startup(args)
    async with runtime(args) as rt:
        client = rt.client()
        await warm_up(client)
        work = {"w1": w1, "latency": latency, "w2": w2, "memory": memory}[args.workload]
        return await work(client)


def store_versions(args: Any) -> dict[str, str]:
    """Turnout's version, and psycopg's when it is in the path."""
    return versions("turnout", "psycopg") if args.store == "postgresql" else versions("turnout")


def main() -> None:
    """Parse the orchestrator's arguments, run, print the result line (start-up prints its own)."""
    p = parser(__doc__ or "")
    p.add_argument("--store", choices=["sqlite", "postgresql"], required=True)
    p.add_argument("--dir", required=True, help="a fresh folder for this run")
    p.add_argument("--conninfo", default="")
    p.add_argument("--schema", default="")
    p.add_argument(
        "--style",
        choices=["all-plugins", "core-only"],
        default="all-plugins",
        help="all-plugins: every plugin installed in the venv loads, as in the project's venv; core-only: "
        "TURNOUT_PLUGINS limits loading to what `pip install turnout` ships (builtin, secretstores)",
    )
    args = p.parse_args()
    if args.style == "core-only":
        os.environ["TURNOUT_PLUGINS"] = "builtin,secretstores"
    result = asyncio.run(main_async(args))
    if args.workload != "startup":
        emit({**result, "versions": store_versions(args)})


if __name__ == "__main__":
    main()
