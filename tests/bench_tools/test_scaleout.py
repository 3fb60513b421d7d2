"""bench/scaleout.py: worker processes sharing one schema finish every workflow, and leave no schema."""

from __future__ import annotations

import psycopg

from bench.scaleout import run

LEFT = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench_scaleout_%'"


def test_two_workers_share_one_schema_and_clean_up(postgres_conninfo: str) -> None:
    with psycopg.connect(postgres_conninfo) as conn:
        before = conn.execute(LEFT).fetchone()
    result = run(2, 40, postgres_conninfo)  # each worker checks every result of its share
    assert result["workers"] == 2 and result["instances"] == 40
    assert 0 < result["seconds"] < 60
    with psycopg.connect(postgres_conninfo) as conn:
        assert conn.execute(LEFT).fetchone() == before
