"""``state.sqlite``: the embedded default store, one file under the working directory.

All SQL runs on the event loop's own thread, with one connection. SQLite
serialises writers anyway; a statement here takes tens of microseconds (WAL,
``synchronous=NORMAL``: a commit writes the log and does not wait for the
disk), while handing each call to a worker thread and back cost several times
that, on every step of every workflow. A call does not yield to the event
loop: the engine's loops yield where they could otherwise go round without
waiting (see Engine._turn_loop). One engine process owns a
database file at a time (an advisory lock next to it), so work left by a
killed process is taken over the moment a new one starts, without waiting
for leases to expire, and nothing but this process writes the file.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from turnout import ComponentError

from ._metadata import SqliteMetadata
from ._sql import AssumptionFailed, SqlStore, insert_values_sql, update_values_sql

T = TypeVar("T")

SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, list[str]] = {}
_MIGRATIONS[1] = [
    """CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY,
        workflow_name TEXT NOT NULL,
        status TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_updated_at REAL NOT NULL,
        input TEXT, output TEXT, failure TEXT, custom_status TEXT,
        scheduled_start_at REAL,
        parent_instance_id TEXT, parent_task_id INTEGER, parent_execution_id TEXT,
        history_length INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT, lease_expires REAL
    )""",
    "CREATE INDEX instances_by_created ON instances (created_at DESC, instance_id DESC)",
    "CREATE INDEX instances_by_parent ON instances (parent_instance_id) WHERE parent_instance_id IS NOT NULL",
    """CREATE TABLE history (
        instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (instance_id, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id TEXT NOT NULL, visible_at REAL NOT NULL, event TEXT NOT NULL
    )""",
    "CREATE INDEX inbox_by_visible ON inbox (visible_at)",
    "CREATE INDEX inbox_by_instance ON inbox (instance_id, id)",
    """CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id TEXT NOT NULL, execution_id TEXT NOT NULL, task_id INTEGER NOT NULL,
        name TEXT NOT NULL, input TEXT, retry TEXT, workflow_name TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1, first_attempt_at REAL NOT NULL,
        visible_at REAL NOT NULL, locked_by TEXT, locked_until REAL, trace TEXT
    )""",
    "CREATE INDEX tasks_by_visible ON tasks (visible_at)",
    "CREATE INDEX tasks_by_instance ON tasks (instance_id)",
]
_MIGRATIONS[2] = [
    """CREATE TABLE definitions (
        name TEXT NOT NULL, version TEXT NOT NULL, dialect TEXT NOT NULL, document TEXT NOT NULL,
        created_at REAL NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    )""",
]


class _Db:
    """sqlite3 already speaks ``?``: a thin pass-through that fits the Db protocol."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.later: list[tuple[list[Any], Callable[[list[Any]], None]]] = []
        """Returned rows and who gets them, once the transaction commits (see ``insert_rows``)."""

    def finish(self) -> None:
        for rows, then in self.later:
            then(rows)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def insert_rows(
        self,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[Sequence[Any]],
        *,
        skip_conflicts: bool = False,
        returning: str = "",
        then: Callable[[list[Any]], None] | None = None,
        expect_all: str = "",
    ) -> list[Any]:
        sql = insert_values_sql(table, columns, skip_conflicts, returning)
        if not returning:
            inserted = self._conn.executemany(sql, rows).rowcount
            if expect_all and inserted != len(rows):
                raise AssumptionFailed(expect_all)
            return []
        if expect_all:
            raise ValueError("insert_rows: expect_all counts the rows inserted, and returns none")
        # In-process, a call per row costs microseconds (sqlite3's executemany cannot return rows).
        returned = (self._conn.execute(sql, row).fetchone() for row in rows)
        inserted = [r for r in returned if r is not None]
        if then is None:
            return inserted
        self.later.append((inserted, then))
        return []

    def expect(self, sql: str, args: Sequence[Any], what: str) -> None:
        if not self._conn.execute(sql, args).fetchone()[0]:
            raise AssumptionFailed(what)

    def update_rows(
        self, table: str, key: str, assignments: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        sql, used = update_values_sql(table, key, assignments, columns)
        self._conn.executemany(sql, ([row[i] for i in used] for row in rows))


class SqliteStore(SqlStore):
    """The built-in engine's state in one SQLite file (or in memory, for tests)."""

    # One process owns the file (see the lock below), so leases never pass to
    # another worker: they only have to outlive the process.
    lease_seconds = 10 * 365 * 24 * 3600.0

    def __init__(self, path: str, *, busy_timeout_ms: int = 30_000, wal: bool = True) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.wal = wal
        self._conn: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None

    @classmethod
    def from_metadata(cls, metadata: SqliteMetadata, working_dir: Path) -> SqliteStore:
        """Build from ``state.sqlite`` metadata; relative paths are under ``working_dir``."""
        path = metadata.connection_string
        if path != ":memory:" and not os.path.isabs(path):
            path = str(working_dir / path)
        return cls(path, busy_timeout_ms=metadata.busy_timeout_ms, wal=not metadata.disable_wal)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return self._run(False, fn, args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return self._run(True, fn, args)

    def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:
            raise RuntimeError("the SQLite store is not open")
        db = _Db(self._conn)
        if not write:
            result = fn(db, *args)
            db.finish()
            return result
        # IMMEDIATE takes the write lock up front: no deadlock between two writers.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db, *args)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        db.finish()
        return result

    # -- connection and schema ---------------------------------------------------------

    async def open(self) -> None:
        self._open()

    def _open(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._take_file_lock()
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Writers wait instead of failing at once; the default 5 s is short on slow disks.
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if self.wal and self.path != ":memory:":
            # WAL lets readers proceed during a write; with synchronous=NORMAL a commit
            # survives a killed process (not a power cut), at a fraction of FULL's cost.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn
        try:
            self._migrate()
        except BaseException:
            self._close()
            raise

    def _take_file_lock(self) -> None:
        handle = open(self.path + ".lock", "a+")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ComponentError(
                f"the database {self.path} is in use by another Turnout process; "
                "one process runs the built-in engine on a SQLite file at a time "
                "(use state.postgresql for several workers)"
            ) from None
        self._lock_file = handle

    def _migrate(self) -> None:
        assert self._conn is not None
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ComponentError(
                f"the database {self.path} has schema version {version}, newer than this Turnout "
                f"understands ({SCHEMA_VERSION}): upgrade turnout, or point connectionString at another file"
            )
        if version == SCHEMA_VERSION:
            return
        self._run(True, self._upgrade, (version,))

    @staticmethod
    def _upgrade(db: _Db, version: int) -> None:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def recover(self, owner: str) -> None:
        await self._write(self._recover)

    @staticmethod
    def _recover(db: _Db) -> None:
        # The file lock says no other process runs: every lease and lock left is a dead one's.
        db.execute("UPDATE instances SET lease_owner = NULL WHERE lease_owner IS NOT NULL")
        db.execute("UPDATE tasks SET locked_by = NULL WHERE locked_by IS NOT NULL")
