"""Where the latency workload's time goes on PostgreSQL: each store transaction, in phases.

``python -m bench.steps`` (in Turnout's venv) runs the latency workload's
workflow (three sequential activities, one workflow at a time) on a fresh
PostgreSQL schema, times every call the engine makes to the store, and
prints, per kind of transaction, how many a workflow makes and where each
one's time goes:

- hand-over: from the engine's ``await`` to the store's thread and back;
- pool: taking a connection from the pool and giving it back;
- statements: the store building the transaction's statements and sending them;
- wait: from ``COMMIT`` to the last answer read (what the server has still
  to run, the WAL flush, the answers); for a read outside a transaction, all
  of it.

It wraps the store's internals to time them, so it reads only this version
of them. Not part of ``make bench``: it is for whoever works on the store's
path (docs/benchmarks.md says what it showed). Run it on a quiet machine: the
figures move by a fifth between runs on a busy one.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.runners import turnout_runner

PHASES = ("hand-over", "pool", "statements", "wait")


class Timings:
    """Seconds spent per kind of transaction and phase, and the number of transactions."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(PHASES, 0.0))
        self.calls: dict[str, int] = defaultdict(int)
        self.recording = False

    def add(self, kind: str, phase: str, seconds: float) -> None:
        if self.recording:
            self.seconds[kind][phase] += seconds


@contextmanager
def timed_store(timings: Timings) -> Iterator[None]:
    """The PostgreSQL store's call path, timed phase by phase, for the length of the block.

    Each layer is measured whole and its inner layer subtracted: the await of
    a call (in the engine's loop) holds the thread's run, which holds the
    connection's transaction, which holds the statements.
    """
    from turnout_builtin import _postgres

    store = _postgres.PostgresStore
    originals = (store._submit, store._run, _postgres._in_transaction)
    submit, run, in_transaction = originals

    # Calls may overlap (the engine's loops claim while a step commits): each call carries its
    # own box, in which a layer leaves what it took for the layer around it to subtract.
    def box_of(fn: Callable[..., Any]) -> dict[str, float]:
        return getattr(fn, "timing_box", {})

    async def timed_submit(self: Any, write: bool, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        @functools.wraps(fn)
        def boxed(*call: Any) -> Any:
            return fn(*call)

        box: dict[str, float] = {}
        boxed.timing_box = box  # type: ignore[attr-defined]
        kind = fn.__name__.lstrip("_")
        began = time.perf_counter()
        try:
            return await submit(self, write, boxed, args)
        finally:
            if timings.recording:
                timings.calls[kind] += 1
            timings.add(kind, "hand-over", time.perf_counter() - began - box.get("run", 0.0))

    def timed_run(self: Any, write: bool, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        began = time.perf_counter()
        try:
            return run(self, write, fn, args)
        finally:
            box = box_of(fn)
            box["run"] = time.perf_counter() - began
            kind = fn.__name__.lstrip("_")
            if "transaction" in box:
                timings.add(kind, "pool", box["run"] - box["transaction"])
            else:  # a read outside a transaction: its query and answer with the pool's part
                timings.add(kind, "wait", box["run"])

    def timed_transaction(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        box = box_of(fn)

        def building(*call: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*call)
            finally:
                box["statements"] = time.perf_counter() - began

        began = time.perf_counter()
        try:
            return in_transaction(conn, building, args)
        finally:
            box["transaction"] = time.perf_counter() - began
            kind = fn.__name__.lstrip("_")
            timings.add(kind, "statements", box.get("statements", 0.0))
            timings.add(kind, "wait", box["transaction"] - box.get("statements", 0.0))

    store._submit, store._run, _postgres._in_transaction = (  # type: ignore[method-assign]
        timed_submit,
        timed_run,
        timed_transaction,
    )
    try:
        yield
    finally:
        store._submit, store._run, _postgres._in_transaction = originals  # type: ignore[method-assign]


async def measure(conninfo: str, workflows: int) -> dict[str, Any]:
    """The latency loop, ``workflows`` long, on a fresh schema, with the store's phases timed."""
    from turnout_builtin._postgres import drop_schema

    timings = Timings()
    schema = f"bench_steps_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory() as folder, timed_store(timings):
        args = argparse.Namespace(dir=folder, store="postgresql", conninfo=conninfo, schema=schema)
        Path(folder).mkdir(exist_ok=True)
        try:
            async with turnout_runner.runtime(args) as rt:
                client = rt.client()
                await turnout_runner.warm_up(client)
                samples = []
                cpu = time.process_time()
                timings.recording = True
                for i in range(workflows):
                    began = time.perf_counter()
                    state = await client.wait(await client.start(turnout_runner.three_steps, i), timeout=60)
                    samples.append(time.perf_counter() - began)
                    if state.output != i + 3:
                        raise SystemExit(f"workflow {i} returned {state.output!r}, not {i + 3}")
                timings.recording = False
                cpu = time.process_time() - cpu
        finally:
            await drop_schema(conninfo, schema)
    return {"timings": timings, "p50_ms": statistics.median(samples) * 1000, "cpu_ms": cpu / workflows * 1000}


def report(result: dict[str, Any], workflows: int) -> str:
    timings: Timings = result["timings"]
    lines = [
        f"{workflows} workflows of three steps, one at a time: p50 {result['p50_ms']:.2f} ms, "
        f"this process's CPU {result['cpu_ms']:.2f} ms a workflow",
        f"{'transaction':<20} {'per workflow':>12} " + " ".join(f"{p:>11}" for p in PHASES) + "   (us each)",
    ]
    total = 0.0
    for kind, count in sorted(timings.calls.items(), key=lambda kv: -kv[1]):
        phases = timings.seconds[kind]
        total += sum(phases.values()) / workflows
        lines.append(
            f"{kind:<20} {count / workflows:>12.2f} "
            + " ".join(f"{phases[p] / count * 1e6:>11.0f}" for p in PHASES)
        )
    lines.append(f"all transactions: {total * 1000:.2f} ms a workflow")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workflows", type=int, default=300)
    p.add_argument("--conninfo", default="host=127.0.0.1 user=postgres dbname=postgres")
    args = p.parse_args()
    print(report(asyncio.run(measure(args.conninfo, args.workflows)), args.workflows))


if __name__ == "__main__":
    main()
