"""A purge takes an instance's whole family, however large, in one transaction.

A parent that fanned out to tens of thousands of child workflows has more
descendants than SQLite takes parameters in one statement (32,766 in its
default build; this machine's Python allows more, so the test sets the
default).
"""

from __future__ import annotations

import sqlite3
from typing import Any

CHILDREN = 40_000


async def test_a_purge_deletes_a_family_larger_than_one_statement_can_name(dialect_store: Any) -> None:
    postgres = type(dialect_store).__name__ == "PostgresStore"
    if not postgres:
        dialect_store._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    numbers = (
        f"generate_series(1, {CHILDREN}) AS g(n)"
        if postgres
        else f"(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {CHILDREN}) "
        "SELECT n FROM g) AS g"
    )

    def family(db: Any) -> None:
        columns = "instance_id, workflow_name, status, execution_id, created_at, last_updated_at"
        db.execute(f"INSERT INTO instances ({columns}) VALUES ('parent', 'wf', 'COMPLETED', 'e', 0, 0)")
        db.execute(
            f"INSERT INTO instances ({columns}, parent_instance_id) "
            f"SELECT 'child' || n, 'wf', 'COMPLETED', 'e', 0, 0, 'parent' FROM {numbers}"
        )
        db.execute("INSERT INTO history (instance_id, seq, event) SELECT instance_id, 0, '{}' FROM instances")
        db.execute(
            "INSERT INTO instances (instance_id, workflow_name, status, execution_id, created_at, "
            "last_updated_at) VALUES ('stranger', 'wf', 'COMPLETED', 'e', 0, 0)"
        )

    await dialect_store._write(family)
    purged = await dialect_store.purge("parent")
    assert len(purged) == CHILDREN + 1

    def left(db: Any) -> list[int]:
        return [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("instances", "history")]

    assert await dialect_store._read(left) == [1, 0]  # the stranger, which had no history
