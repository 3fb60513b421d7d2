"""How a worker drains a backlog of due messages: the store's claims alone, on SQLite and PostgreSQL.

``python -m bench.claims`` (in Turnout's venv) creates ``--due`` instances
whose start messages are all due, then claims them ``--batch`` at a time, as
the engine's turn loop does, and commits a turn for each batch that consumes
its messages. It prints the time of the first claim, of all claims, and of
the whole drain. Not part of ``make bench``: it measures one query, for
whoever changes it (docs/benchmarks.md says what it showed).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from turnout import RuntimeStatus
from turnout_builtin._events import Event, Kind
from turnout_builtin._store import InstanceRow, TurnCommit

T0 = 1_000.0
CREATE_BATCH = 500


def open_store(kind: str, conninfo: str, folder: Path) -> tuple[Any, str | None]:
    if kind == "sqlite":
        from turnout_builtin._sqlite import SqliteStore

        return SqliteStore(str(folder / "claims.db")), None
    from turnout_builtin._postgres import PostgresStore

    schema = f"bench_claims_{uuid.uuid4().hex[:10]}"
    return PostgresStore(conninfo, schema=schema, max_connections=4), schema


async def drain(kind: str, due: int, batch: int, conninfo: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store, schema = open_store(kind, conninfo, Path(folder))
        await store.open()
        try:
            for first in range(0, due, CREATE_BATCH):
                rows = [
                    InstanceRow(f"i{n:07d}", "wf", RuntimeStatus.PENDING, f"e{n}", T0, T0)
                    for n in range(first, min(first + CREATE_BATCH, due))
                ]
                start = Event(Kind.WORKFLOW_STARTED, T0, name="wf")
                await asyncio.gather(*(store.create_instance(r, start, T0, False) for r in rows))
            now = T0 + 1
            claims = drained = 0
            claiming = first_claim = 0.0
            began = time.perf_counter()
            while True:
                t = time.perf_counter()
                works = await store.claim_turns("w", now, batch, set(), lambda _: True)
                claiming += time.perf_counter() - t
                if not works:
                    break
                claims += 1
                first_claim = first_claim or claiming
                drained += len(works)
                await store.commit_turns(
                    "w",
                    [
                        TurnCommit(
                            instance_id=w.instance_id,
                            expected_history_length=0,
                            consumed=[m for m, _ in w.messages],
                            new_events=[],
                            status=RuntimeStatus.RUNNING,
                            last_updated_at=now,
                        )
                        for w in works
                    ],
                )
            total = time.perf_counter() - began
        finally:
            await store.close()
            if schema is not None:
                from turnout_builtin._postgres import drop_schema

                await drop_schema(conninfo, schema)
    if drained != due:
        raise SystemExit(f"{kind}: drained {drained} of {due} instances")
    return {
        "store": kind,
        "due": due,
        "claims": claims,
        "first_claim_ms": first_claim * 1000,
        "claims_seconds": claiming,
        "claim_ms": claiming / claims * 1000,
        "drain_seconds": total,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    p.add_argument("--due", type=int, default=20_000, help="instances with a due message")
    p.add_argument("--batch", type=int, default=64, help="instances per claim")
    p.add_argument("--conninfo", default="host=127.0.0.1 user=postgres dbname=postgres")
    args = p.parse_args()
    for kind in args.store:
        r = asyncio.run(drain(kind, args.due, args.batch, args.conninfo))
        print(
            f"{r['store']}: {r['due']:,} due, {r['claims']} claims of {args.batch}: first "
            f"{r['first_claim_ms']:.1f} ms, all {r['claims_seconds']:.2f} s ({r['claim_ms']:.1f} ms each); "
            f"drained in {r['drain_seconds']:.2f} s"
        )


if __name__ == "__main__":
    main()
