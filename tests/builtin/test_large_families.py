"""A purge takes an instance's whole family, however large, in one transaction.

A parent that fanned out to tens of thousands of child workflows has more
descendants than SQLite takes parameters in one statement (32,766 in its
default build).
"""

from __future__ import annotations

from typing import Any

from dialects import numbers, with_default_sqlite_limits

CHILDREN = 40_000


async def test_a_purge_deletes_a_family_larger_than_one_statement_can_name(dialect_store: Any) -> None:
    with_default_sqlite_limits(dialect_store)

    def family(db: Any) -> None:
        columns = "instance_id, workflow_name, status, execution_id, created_at, last_updated_at"
        db.execute(f"INSERT INTO instances ({columns}) VALUES ('parent', 'wf', 'COMPLETED', 'e', 0, 0)")
        children = numbers(CHILDREN, dialect_store)
        db.execute(
            f"INSERT INTO instances ({columns}, parent_instance_id) "
            f"SELECT 'child' || n, 'wf', 'COMPLETED', 'e', 0, 0, 'parent' FROM {children}"
        )
        db.execute("INSERT INTO history (instance_id, seq, event) SELECT instance_id, 0, '{}' FROM instances")
        db.execute(f"INSERT INTO instances ({columns}) VALUES ('stranger', 'wf', 'COMPLETED', 'e', 0, 0)")

    await dialect_store._write(family)
    purged = await dialect_store.purge("parent")
    assert len(purged) == CHILDREN + 1

    def left(db: Any) -> list[int]:
        return [db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("instances", "history")]

    assert await dialect_store._read(left) == [1, 0]  # the stranger, which had no history
