"""What every runner shares: the workload sizes, percentiles, RSS and the result line.

Standard library only, on purpose: the runners import it before the system
under test, so it must not add to the start-up time they measure, and it runs
in both virtual environments (Turnout's and the peers').
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

# The workloads, the same numbers for every system.
W1_INSTANCES = 500
W1_STEPS = 3
LATENCY_RUNS = 50
W2_WIDTH = 100
W2_RUNS = 10
MEMORY_INSTANCES = 10_000
WARM_UP = 3  # instances of each workflow run before any timing, so imports and caches are not measured

WORKLOADS = ("w1", "latency", "w2", "startup", "memory")
RESULT_PREFIX = "BENCH-RESULT "


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile by nearest rank: with 50 samples p99 is the slowest one, no interpolation."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(samples_ms: Sequence[float]) -> dict[str, Any]:
    """p50 / p99 / mean / min / max of a list of milliseconds, with the samples kept for re-analysis."""
    return {
        "runs": len(samples_ms),
        "p50_ms": percentile(samples_ms, 50),
        "p99_ms": percentile(samples_ms, 99),
        "mean_ms": statistics.fmean(samples_ms),
        "min_ms": min(samples_ms),
        "max_ms": max(samples_ms),
        "samples_ms": [round(s, 3) for s in samples_ms],
    }


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), without psutil: Turnout's venv has none."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the distributions a figure depends on."""
    found = {"python": sys.version.split()[0]}
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def parser(description: str) -> argparse.ArgumentParser:
    """Arguments every runner takes; the orchestrator passes ``--t0`` for the start-up figure."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--workload", choices=WORKLOADS, required=True)
    p.add_argument(
        "--t0",
        type=float,
        default=None,
        help="time.perf_counter() of the parent when it spawned this process (CLOCK_MONOTONIC, "
        "shared by all processes on Linux), for the start-up breakdown",
    )
    return p


def emit(result: dict[str, Any]) -> None:
    """One line on stdout that the orchestrator picks out of whatever else the system prints."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def since(t0: float | None) -> float | None:
    """Seconds since the parent's spawn time, or None when run by hand."""
    return None if t0 is None else time.perf_counter() - t0


def check(outputs: Sequence[Any], expected: Callable[[int], Any], what: str) -> None:
    """Refuse a figure whose workflows returned wrong results: a fast wrong answer is not a result."""
    wrong = [i for i, out in enumerate(outputs) if out != expected(i)]
    if wrong:
        i = wrong[0]
        raise RuntimeError(
            f"{what}: {len(wrong)} wrong outputs, e.g. #{i}: {outputs[i]!r} != {expected(i)!r}"
        )
