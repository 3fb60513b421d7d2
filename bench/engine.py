"""Benchmark of the built-in engine on SQLite, in one process (``make bench``).

Workloads (the ones the peers' figures in bench/README.md were measured with):

- W1 throughput: N instances (500) of a workflow running 3 sequential trivial
  activities, all started at once; completed workflows per second, from the
  first start to the last completion.
- W1 latency: M instances (50) one after another; start to result, p50 / p99.
- W2 fan-out: one workflow scheduling 100 trivial activities at once and
  gathering them with when_all, R times (10) in a row; time per workflow.

Each workload gets a fresh SQLite file in a temporary folder, and a few
warm-up instances run first, so imports and caches are not measured. The
table is printed and the figures are written as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import turnout

RESULTS = Path(__file__).resolve().parent / "results"

wf = turnout.Workflows()


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


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank): with 50 samples p99 is the largest."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def _warm_up(client: turnout.AsyncWorkflowClient) -> None:
    for _ in range(3):
        await client.wait(await client.start(three_steps, 0), timeout=30)
    await client.wait(await client.start(fan_out, 10), timeout=30)


async def w1_throughput(folder: Path, instances: int) -> dict[str, Any]:
    """Start ``instances`` workflows together; workflows per second until the last one completes."""
    async with turnout.AsyncRuntime(workflows=wf, working_dir=folder) as rt:
        client = rt.client()
        await _warm_up(client)
        started = time.perf_counter()
        ids = await asyncio.gather(*(client.start(three_steps, i) for i in range(instances)))
        states = await asyncio.gather(*(client.wait(iid, timeout=300) for iid in ids))
        elapsed = time.perf_counter() - started
    wrong = [s.instance_id for i, s in enumerate(states) if s.output != i + 3]
    if wrong:
        raise RuntimeError(f"W1: {len(wrong)} instances ended with a wrong output, e.g. {wrong[0]}")
    return {"instances": instances, "seconds": elapsed, "workflows_per_second": instances / elapsed}


async def w1_latency(folder: Path, runs: int) -> dict[str, Any]:
    """One instance at a time: start to result."""
    async with turnout.AsyncRuntime(workflows=wf, working_dir=folder) as rt:
        client = rt.client()
        await _warm_up(client)
        samples = []
        for i in range(runs):
            started = time.perf_counter()
            state = await client.wait(await client.start(three_steps, i), timeout=30)
            samples.append((time.perf_counter() - started) * 1000)
            if state.output != i + 3:
                raise RuntimeError(f"W1 latency: wrong output {state.output!r}")
    return {
        "runs": runs,
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
        "samples_ms": samples,
    }


async def w2_fan_out(folder: Path, width: int, runs: int) -> dict[str, Any]:
    """A workflow that fans out to ``width`` activities and gathers them, ``runs`` times in a row."""
    async with turnout.AsyncRuntime(workflows=wf, working_dir=folder) as rt:
        client = rt.client()
        await _warm_up(client)
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            state = await client.wait(await client.start(fan_out, width), timeout=60)
            samples.append((time.perf_counter() - started) * 1000)
            if state.output != sum(range(1, width + 1)):
                raise RuntimeError(f"W2: wrong output {state.output!r}")
    return {
        "width": width,
        "runs": runs,
        "mean_ms": statistics.fmean(samples),
        "p50_ms": percentile(samples, 50),
        "min_ms": min(samples),
        "max_ms": max(samples),
        "samples_ms": samples,
    }


def environment() -> dict[str, Any]:
    """What the figures depend on."""
    return {
        "turnout": turnout.__version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """All three workloads, each on its own SQLite file."""
    with tempfile.TemporaryDirectory(prefix="turnout-bench-") as tmp:
        root = Path(tmp)
        for name in ("w1", "w1-latency", "w2"):
            (root / name).mkdir()
        return {
            "engine": "turnout workflow.builtin on state.sqlite (one process)",
            "environment": environment(),
            "w1_throughput": await w1_throughput(root / "w1", args.instances),
            "w1_latency": await w1_latency(root / "w1-latency", args.latency_runs),
            "w2_fan_out": await w2_fan_out(root / "w2", args.width, args.repeat),
        }


def table(results: dict[str, Any]) -> str:
    """The figures next to the peers' (quoted from the issue, not measured here)."""
    env = results["environment"]
    t, lat, fan = results["w1_throughput"], results["w1_latency"], results["w2_fan_out"]
    rows = [
        ("", "W1 throughput", "W1 latency p50 / p99", "W2 per workflow"),
        (
            "Turnout built-in, SQLite (measured)",
            f"{t['workflows_per_second']:.0f} wf/s",
            f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms",
            f"{fan['mean_ms']:.0f} ms",
        ),
        ("DBOS 3.4, SQLite (quoted)", "~30 wf/s", "25-40 ms p50", "~1 s"),
        ("Temporal dev server (quoted)", "~15 wf/s", "200 ms p50", "0.7 s"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"Turnout {env['turnout']}, Python {env['python']}, SQLite {env['sqlite']}, {env['cpus']} CPUs",
        f"W1: {t['instances']} x 3 sequential activities started together ({t['seconds']:.2f} s); "
        f"latency over {lat['runs']} sequential runs. W2: fan-out to {fan['width']} activities, "
        f"{fan['runs']} runs (p50 {fan['p50_ms']:.0f}, min {fan['min_ms']:.0f}, max {fan['max_ms']:.0f} ms).",
        "",
    ]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        "Peers' figures are quoted from the issue (same 2-core machine), not measured by this script."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, save the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=500, help="W1 instances started together (500)")
    parser.add_argument("--latency-runs", type=int, default=50, help="W1 sequential runs for latency (50)")
    parser.add_argument("--width", type=int, default=100, help="W2 fan-out width (100)")
    parser.add_argument("--repeat", type=int, default=10, help="W2 runs (10)")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON file (default: bench/results/engine-<time>.json)"
    )
    args = parser.parse_args(argv)

    results = asyncio.run(run(args))
    print(table(results))
    output = args.output or RESULTS / f"engine-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
