"""Upgrading a database made by an older Turnout: the data stays, the new tables appear."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from turnout_builtin import _postgres, _sqlite
from turnout_builtin._store import StoredDefinition

T0 = 1_700_000_000.0
V1_INSTANCE = (
    "INSERT INTO instances (instance_id, workflow_name, status, execution_id, created_at, last_updated_at) "
    "VALUES ('old', 'wf', 'COMPLETED', 'e1', 1.0, 2.0)"
)


async def test_a_version_1_sqlite_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        for statement in _sqlite._MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute(V1_INSTANCE)
        conn.execute("PRAGMA user_version = 1")
    store = _sqlite.SqliteStore(str(path))
    await store.open()
    try:
        old = await store.get_instance("old")
        assert old is not None and old.workflow_name == "wf"
        stored = StoredDefinition("d", "1", "1.0", "text", T0)
        await store.put_definition(stored)
        assert await store.list_definitions() == [stored]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _sqlite.SCHEMA_VERSION


async def test_a_version_1_postgresql_schema_is_upgraded_in_place(postgres_conninfo: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        for statement in _postgres._MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute(V1_INSTANCE)
    store = _postgres.PostgresStore(postgres_conninfo, schema=schema, max_connections=2)
    try:
        await store.open()
        old = await store.get_instance("old")
        assert old is not None and old.workflow_name == "wf"
        stored = StoredDefinition("d", "1", "1.0", "text", T0)
        await store.put_definition(stored)
        assert await store.list_definitions() == [stored]
        await store._write(lambda db: db.expect("SELECT TRUE", [], "version 3's check is there"))
        await store.close()
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            versions = conn.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY 1').fetchall()
        assert [v for (v,) in versions] == [1, 2, 3]
    finally:
        await _postgres.drop_schema(postgres_conninfo, schema)
