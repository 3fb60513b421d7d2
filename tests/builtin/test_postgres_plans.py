"""The statements of a step find their rows through an index, however many rows the table holds.

Plans are the server's choice, made from its guesses: this checks the one
guess that went wrong (a JSON recordset is taken for 100 rows, and joining 100
rows to a few thousand reads the whole table) stays fixed, for one step and
for a batch of them. The claim's plan is checked in test_claims.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from turnout_builtin._sql import TURN_ASSIGNMENTS, TURN_FIELDS

STORED = 3000
# A batch against a few thousand rows may fairly scan them; by 20,000 the scan costs 6 ms a batch.
BATCH_STORED = 20_000


@pytest.fixture
def store(pg_store: Any) -> Any:
    return pg_store


def plan_of(db: Any, statement: tuple[str, tuple[Any, ...]]) -> str:
    sql, args = statement
    return "\n".join(row[0] for row in db._conn.execute("EXPLAIN " + sql, args).fetchall())


def turn_row(n: int) -> tuple[Any, ...]:
    return (f"i{n}", "RUNNING", None, None, None, 1.0, 4, 11.0, "worker", None, None, "wf")


@pytest.mark.parametrize(
    ("stored", "batch", "analyzed"),
    [(STORED, 1, False), (STORED, 1, True), (BATCH_STORED, 64, True)],
    # A batch against a table never analyzed may still be scanned: the planner then knows
    # only its size. Autovacuum analyzes a table as it grows, and the key list does the rest.
    ids=["a-step-as-written", "a-step-analyzed", "a-batch-analyzed"],
)
async def test_turns_update_their_instance_rows_through_the_key(
    store: Any, analyzed: bool, stored: int, batch: int
) -> None:
    from turnout_builtin._postgres import _update_statement

    def explain(db: Any) -> str:
        db.execute(
            "INSERT INTO instances (instance_id, workflow_name, status, execution_id, created_at, "
            "last_updated_at, history_length) "
            f"SELECT 'i' || g, 'wf', 'RUNNING', 'e', 0, 0, 3 FROM generate_series(1, {stored}) g"
        )
        if analyzed:
            db.execute("ANALYZE instances")
        rows = [turn_row(n) for n in range(7, 7 + batch)]
        statement = _update_statement("instances", "instance_id", TURN_ASSIGNMENTS, TURN_FIELDS, rows)
        return plan_of(db, statement)

    plan = await store._write(explain)
    assert "Index Scan" in plan and "instances_pkey" in plan and "Seq Scan" not in plan, plan
