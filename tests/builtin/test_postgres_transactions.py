"""PostgreSQL writes: BEGIN, the statements and COMMIT go in one pipeline; a failure anywhere commits nothing.

The store sends ``COMMIT`` before it knows whether the statements before it
succeeded (one round trip fewer per step): these tests hold it to rolling the
whole transaction back, and to handing the connection back clean.
"""

from __future__ import annotations

from typing import Any

import pytest

from turnout_builtin._store import StoredDefinition

T0 = 1_700_000_000.0
INSERT = (
    "INSERT INTO definitions (name, version, dialect, document, created_at, seq) "
    "VALUES (?, '1', 'd', 'x', 0, 1)"
)


@pytest.fixture
def store(pg_store: Any) -> Any:
    return pg_store


async def names(store: Any) -> list[str]:
    return [d.name for d in await store.list_definitions()]


async def test_an_error_raised_by_the_code_rolls_back_what_it_wrote(store: Any) -> None:
    def write_then_fail(db: Any) -> None:
        db.execute(INSERT, ("written",))
        raise ValueError("the code failed after a write")

    with pytest.raises(ValueError, match="after a write"):
        await store._write(write_then_fail)
    assert await names(store) == []
    await store.put_definition(StoredDefinition("next", "1", "1.0", "text", T0))
    assert await names(store) == ["next"]  # the same connection, outside any transaction


async def test_a_failed_statement_commits_nothing_though_commit_was_sent(store: Any) -> None:
    psycopg = pytest.importorskip("psycopg")

    def good_bad_good(db: Any) -> None:
        db.execute(INSERT, ("before",))
        db.execute(INSERT, (None,))  # name is NOT NULL
        db.execute(INSERT, ("after",))

    with pytest.raises(psycopg.errors.NotNullViolation):
        await store._write(good_bad_good)
    assert await names(store) == []
    await store.put_definition(StoredDefinition("next", "1", "1.0", "text", T0))
    assert await names(store) == ["next"]


async def test_an_error_found_when_a_result_is_read_rolls_back_too(store: Any) -> None:
    psycopg = pytest.importorskip("psycopg")

    def read_after_a_conflict(db: Any) -> None:
        db.execute(INSERT, ("same",))
        db.execute(INSERT, ("same",))  # the primary key is taken
        db.execute("SELECT count(*) FROM definitions").fetchall()

    with pytest.raises(psycopg.errors.UniqueViolation):
        await store._write(read_after_a_conflict)
    assert await names(store) == []
