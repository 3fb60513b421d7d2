"""Fixtures shared by the built-in engine's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pg_cluster import PgCluster, throwaway_cluster
from pg_stores import fresh_pg_store

from turnout.testing import missing_server


@pytest.fixture
async def pg_store(postgres_conninfo: str) -> AsyncIterator[Any]:
    """A PostgreSQL store on a throwaway schema (see ``pg_stores``)."""
    async with fresh_pg_store(postgres_conninfo) as store:
        yield store


@pytest.fixture(params=["sqlite", "postgresql"])
async def dialect_store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The store of each SQL dialect: SQLite in memory, PostgreSQL on a throwaway schema."""
    if request.param == "sqlite":
        from turnout_builtin._sqlite import SqliteStore

        made: Any = SqliteStore(":memory:")
        await made.open()
        yield made
        await made.close()
        return
    async with fresh_pg_store(request.getfixturevalue("postgres_conninfo")) as made:
        yield made


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster of the test's own, for tests that stop, freeze or crash the
    server (never the machine's shared one); removed afterwards."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing_server("psycopg is not installed: pip install 'turnout[postgresql]'")
    try:
        with throwaway_cluster() as started:
            yield started
    except LookupError as exc:
        missing_server(f"cannot run a throwaway PostgreSQL cluster: {exc}")
