"""Scale-out on PostgreSQL: W1's workflow run by 1, 2, 3... worker processes sharing one schema.

``python -m bench.scaleout`` (in Turnout's venv) starts ``--workers`` worker
processes on a fresh schema. Each opens the engine (the runner's component
file), warms up, waits for a common start time, starts its share of
``--instances`` three-step workflows and waits for their results. Any worker
may run any instance: the claims, leases and LISTEN/NOTIFY decide, as in
production. The figure is every instance over the time from the common start
to the last result. Run with ``--workers 1 2 3`` to compare; the machine's
cores bound what more workers can add (the server shares them).

Not part of ``make bench``: it answers "does a second worker help or hurt?"
for whoever works on the claims (docs/benchmarks.md says what it showed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

RESULT = "SCALEOUT-RESULT "
SETTLE_SECONDS = 1.5
"""From the orchestrator's launch to the common start: every worker has opened and warmed up by then."""


async def worker(args: argparse.Namespace) -> None:
    """One worker process: open, warm up, start its share at the common time, wait for it, report."""
    from bench.runners import turnout_runner

    runtime_args = argparse.Namespace(
        dir=args.dir, store="postgresql", conninfo=args.conninfo, schema=args.schema
    )
    async with turnout_runner.runtime(runtime_args) as rt:
        client = rt.client()
        await turnout_runner.warm_up(client)
        ready = time.time()
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        first = args.index * args.share
        ids = await asyncio.gather(
            *(client.start(turnout_runner.three_steps, i) for i in range(first, first + args.share))
        )
        states = await asyncio.gather(*(client.wait(iid, timeout=600) for iid in ids))
        finished = time.time()
        wrong = [s.output for i, s in enumerate(states) if s.output != first + i + 3]
        if wrong:
            raise SystemExit(f"worker {args.index}: {len(wrong)} wrong results, e.g. {wrong[:3]}")
        print(RESULT + json.dumps({"ready": ready, "finished": finished}), flush=True)
        # It may be running the others' instances: it stays until the orchestrator ends it.
        await asyncio.sleep(3600)


def run(workers: int, instances: int, conninfo: str) -> dict[str, Any]:
    """``instances`` workflows over ``workers`` processes on a fresh schema; workflows per second."""
    schema = f"bench_scaleout_{uuid.uuid4().hex[:10]}"
    share = instances // workers
    start_at = time.time() + SETTLE_SECONDS + 0.5 * workers
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as folder:
        procs = []
        for index in range(workers):
            work_dir = Path(folder) / str(index)
            work_dir.mkdir()
            command = [
                sys.executable,
                "-m",
                "bench.scaleout",
                "--worker",
                str(index),
                "--share",
                str(share),
                "--schema",
                schema,
                "--conninfo",
                conninfo,
                "--dir",
                str(work_dir),
                "--start-at",
                str(start_at),
            ]
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        reports = []
        try:
            for proc in procs:
                line = next((x for x in proc.stdout or [] if x.startswith(RESULT)), None)
                if line is None:
                    raise SystemExit(f"a worker ended without a result (exit code {proc.wait()})")
                reports.append(json.loads(line[len(RESULT) :]))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
            _drop(conninfo, schema)
    late = [r["ready"] - start_at for r in reports if r["ready"] > start_at]
    if late:
        raise SystemExit(f"{len(late)} worker(s) were not ready at the common start: raise SETTLE_SECONDS")
    seconds = max(r["finished"] for r in reports) - start_at
    return {"workers": workers, "instances": share * workers, "seconds": seconds}


def _drop(conninfo: str, schema: str) -> None:
    from turnout_builtin._postgres import drop_schema

    asyncio.run(drop_schema(conninfo, schema))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--instances", type=int, default=3_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--conninfo", default="host=127.0.0.1 user=postgres dbname=postgres")
    # One worker process (started by the orchestrator above).
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--share", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--schema", default="", help=argparse.SUPPRESS)
    p.add_argument("--dir", default="", help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        args.index = args.worker
        asyncio.run(worker(args))
        return
    for workers in args.workers:
        rates = []
        for _ in range(args.repeats):
            r = run(workers, args.instances, args.conninfo)
            rates.append(r["instances"] / r["seconds"])
        shown = ", ".join(f"{x:,.0f}" for x in rates)
        print(f"{workers} worker(s): {statistics.median(rates):,.0f} workflows/s (median; runs {shown})")


if __name__ == "__main__":
    main()
