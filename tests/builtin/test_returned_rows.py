"""Rows an INSERT returns to a ``then`` arrive once the transaction commits, on both dialects.

PostgreSQL reads them with the answer to ``COMMIT`` (a round trip saved on
every step that schedules an activity); SQLite keeps the same promise, so that
the shared SQL cannot come to depend on either.
"""

from __future__ import annotations

from typing import Any

import pytest

COLUMNS = ("name", "version", "dialect", "document", "created_at", "seq")


@pytest.fixture
def store(dialect_store: Any) -> Any:
    return dialect_store


async def names(store: Any) -> list[str]:
    return sorted(d.name for d in await store.list_definitions())


async def test_rows_returned_to_then_arrive_once_committed(store: Any) -> None:
    got: list[Any] = []

    def insert(db: Any, fail: bool) -> None:
        rows = [(name, "1", "d", "x", 0.0, 1) for name in ("a", "b")]
        db.insert_rows("definitions", COLUMNS, rows, returning="name", then=got.extend)
        db.execute("SELECT 1").fetchall()  # an answer read inside: the rows still wait for COMMIT
        assert got == []
        if fail:
            raise ValueError("failed after the insert")

    with pytest.raises(ValueError, match="after the insert"):
        await store._write(insert, True)
    assert got == [] and await names(store) == []
    await store._write(insert, False)
    assert sorted(got) == [("a",), ("b",)]
    assert await names(store) == ["a", "b"]


async def test_without_then_the_rows_come_back_at_once(store: Any) -> None:
    def insert(db: Any) -> list[Any]:
        rows = [("a", "1", "d", "x", 0.0, 1)]
        first = db.insert_rows("definitions", COLUMNS, rows, skip_conflicts=True, returning="name")
        again = db.insert_rows("definitions", COLUMNS, rows, skip_conflicts=True, returning="name")
        return [first, again]

    assert await store._write(insert) == [[("a",)], []]  # the second found the name taken
