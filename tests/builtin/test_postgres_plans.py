"""The statements of a step find their rows through an index, however many rows the table holds.

Plans are the server's choice, made from its guesses: this checks the one
guess that went wrong (a JSON recordset is taken for 100 rows, and joining 100
rows to a few thousand reads the whole table) stays fixed.
"""

from __future__ import annotations

from typing import Any

import pytest

from turnout_builtin._sql import TURN_ASSIGNMENTS, TURN_FIELDS

STORED = 3000


@pytest.fixture
def store(pg_store: Any) -> Any:
    return pg_store


def plan_of(db: Any, statement: tuple[str, tuple[str]]) -> str:
    sql, args = statement
    return "\n".join(row[0] for row in db._conn.execute("EXPLAIN " + sql, args).fetchall())


@pytest.mark.parametrize("analyzed", [False, True], ids=["as-written", "analyzed"])
async def test_a_step_updates_its_instance_row_through_the_key(store: Any, analyzed: bool) -> None:
    from turnout_builtin._postgres import _update_statement

    def explain(db: Any) -> str:
        db.execute(
            "INSERT INTO instances (instance_id, workflow_name, status, execution_id, created_at, "
            "last_updated_at, history_length) "
            f"SELECT 'i' || g, 'wf', 'RUNNING', 'e', 0, 0, 3 FROM generate_series(1, {STORED}) g"
        )
        if analyzed:
            db.execute("ANALYZE instances")
        row = ("i7", "RUNNING", None, None, None, 1.0, 4, 11.0, "worker", None, None, "wf")
        statement = _update_statement("instances", "instance_id", TURN_ASSIGNMENTS, TURN_FIELDS, [row])
        return plan_of(db, statement)

    plan = await store._write(explain)
    assert "Index Scan using instances_pkey" in plan and "Seq Scan" not in plan, plan
