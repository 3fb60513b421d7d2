"""``state.sqlite``: the embedded default store, one file under the working directory.

All SQL runs on one dedicated thread with one connection: SQLite serialises
writers anyway, and one thread lets a batch of turns share one transaction
(group commit) without lock contention. One engine process owns a database
file at a time (an advisory lock next to it), so work left by a killed
process is taken over the moment a new one starts, without lease timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from turnout import (
    TERMINAL_STATUSES,
    ComponentError,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    RuntimeStatus,
)

from ._events import Event, Kind
from ._metadata import SqliteMetadata
from ._store import (
    ActivityOutcome,
    ActivityTask,
    InstanceRow,
    Message,
    Store,
    TurnCommit,
    TurnWork,
)

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = [
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
        history_length INTEGER NOT NULL DEFAULT 0
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
        visible_at REAL NOT NULL, locked_by TEXT
    )""",
    "CREATE INDEX tasks_by_visible ON tasks (visible_at) WHERE locked_by IS NULL",
    "CREATE INDEX tasks_by_instance ON tasks (instance_id)",
]

_TERMINAL = tuple(s.value for s in TERMINAL_STATUSES)
_INSTANCE_COLUMNS = (
    "instance_id, workflow_name, status, execution_id, created_at, last_updated_at, input, output, "
    "failure, custom_status, scheduled_start_at, parent_instance_id, parent_task_id, "
    "parent_execution_id, history_length"
)


def _row(values: tuple[Any, ...]) -> InstanceRow:
    return InstanceRow(
        instance_id=values[0],
        workflow_name=values[1],
        status=RuntimeStatus(values[2]),
        execution_id=values[3],
        created_at=values[4],
        last_updated_at=values[5],
        input=values[6],
        output=values[7],
        failure=json.loads(values[8]) if values[8] else None,
        custom_status=values[9],
        scheduled_start_at=values[10],
        parent_instance_id=values[11],
        parent_task_id=values[12],
        parent_execution_id=values[13],
        history_length=values[14],
    )


def _marks(items: Iterable[Any]) -> str:
    return ",".join("?" for _ in items)


class SqliteStore(Store):
    """The built-in engine's state in one SQLite file (or in memory, for tests)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 30_000, wal: bool = True) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.wal = wal
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turnout-sqlite")
        self._lock_file: Any = None

    @classmethod
    def from_metadata(cls, metadata: SqliteMetadata, working_dir: Path) -> SqliteStore:
        """Build from ``state.sqlite`` metadata; relative paths are under ``working_dir``."""
        path = metadata.connection_string
        if path != ":memory:" and not os.path.isabs(path):
            path = str(working_dir / path)
        return cls(path, busy_timeout_ms=metadata.busy_timeout_ms, wal=not metadata.disable_wal)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, *args)

    # -- connection and schema ---------------------------------------------------------

    async def open(self) -> None:
        await self._call(self._open)

    def _open(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._take_file_lock()
        conn = sqlite3.connect(self.path, isolation_level=None)
        # Writers wait instead of failing at once; the default 5 s is short on slow disks.
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if self.wal and self.path != ":memory:":
            # WAL lets readers proceed during a write; with synchronous=NORMAL a commit
            # survives a killed process (not a power cut), at a fraction of FULL's cost.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn
        self._migrate()

    def _take_file_lock(self) -> None:
        lock_path = self.path + ".lock"
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the store's lifetime
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
        conn = self._db
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ComponentError(
                f"the database {self.path} has schema version {version}, newer than this Turnout "
                f"understands ({SCHEMA_VERSION}): upgrade turnout, or point connectionString at another file"
            )
        if version == SCHEMA_VERSION:
            return
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite store is not open")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- instances -----------------------------------------------------------------------

    async def recover(self, owner: str) -> None:
        await self._call(self._recover)

    def _recover(self) -> None:
        # The file lock says no other process runs: every claim left is a dead one's.
        with self._transaction() as db:
            db.execute("UPDATE tasks SET locked_by = NULL WHERE locked_by IS NOT NULL")

    async def create_instance(self, row: InstanceRow, start: Event, visible_at: float, replace: bool) -> None:
        await self._call(self._create_instance, row, start, visible_at, replace)

    def _create_instance(self, row: InstanceRow, start: Event, visible_at: float, replace: bool) -> None:
        with self._transaction() as db:
            existing = db.execute(
                "SELECT status FROM instances WHERE instance_id = ?", (row.instance_id,)
            ).fetchone()
            if existing is not None:
                if not (replace and existing[0] in _TERMINAL):
                    raise InstanceExists(row.instance_id, existing[0])
                self._delete_instances(db, self._family(db, row.instance_id))
            self._insert_instance(db, row)
            db.execute(
                "INSERT INTO inbox (instance_id, visible_at, event) VALUES (?, ?, ?)",
                (row.instance_id, visible_at, start.encode()),
            )

    @staticmethod
    def _insert_instance(db: sqlite3.Connection, row: InstanceRow, *, or_ignore: bool = False) -> bool:
        verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
        cursor = db.execute(
            f"{verb} INTO instances ({_INSTANCE_COLUMNS}) VALUES ({_marks(range(15))})",
            (
                row.instance_id,
                row.workflow_name,
                row.status.value,
                row.execution_id,
                row.created_at,
                row.last_updated_at,
                row.input,
                row.output,
                json.dumps(row.failure) if row.failure else None,
                row.custom_status,
                row.scheduled_start_at,
                row.parent_instance_id,
                row.parent_task_id,
                row.parent_execution_id,
                row.history_length,
            ),
        )
        return cursor.rowcount == 1

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        return await self._call(self._get_instance, instance_id)

    def _get_instance(self, instance_id: str) -> InstanceRow | None:
        found = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        return _row(found) if found else None

    async def list_instances(self, query: ListQuery) -> tuple[list[InstanceRow], str | None]:
        return await self._call(self._list_instances, query)

    def _list_instances(self, query: ListQuery) -> tuple[list[InstanceRow], str | None]:
        where: list[str] = []
        args: list[Any] = []
        if query.status:
            where.append(f"status IN ({_marks(query.status)})")
            args.extend(s.value for s in query.status)
        if query.workflow_name:
            where.append("workflow_name = ?")
            args.append(query.workflow_name)
        if query.created_from:
            where.append("created_at >= ?")
            args.append(query.created_from.timestamp())
        if query.created_to:
            where.append("created_at < ?")
            args.append(query.created_to.timestamp())
        if query.page_token:
            created, last_id = _decode_token(query.page_token)
            where.append("(created_at < ? OR (created_at = ? AND instance_id < ?))")
            args.extend([created, created, last_id])
        sql = f"SELECT {_INSTANCE_COLUMNS} FROM instances"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, instance_id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = [_row(r) for r in self._db.execute(sql, args).fetchall()]
        token = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            token = _encode_token(rows[-1].created_at, rows[-1].instance_id)
        return rows, token

    async def load_history(self, instance_id: str) -> list[Event]:
        return await self._call(self._load_history, instance_id)

    def _load_history(self, instance_id: str) -> list[Event]:
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,)
        ).fetchall()
        return [Event.decode(r[0]) for r in rows]

    async def enqueue(self, message: Message) -> InstanceRow:
        return await self._call(self._enqueue, message)

    def _enqueue(self, message: Message) -> InstanceRow:
        with self._transaction() as db:
            found = db.execute(
                f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?", (message.instance_id,)
            ).fetchone()
            if found is None:
                raise InstanceNotFound(message.instance_id)
            row = _row(found)
            if row.status.is_terminal:
                raise InvalidState(
                    row.instance_id,
                    row.status.value,
                    _operation(message.event),
                    "the instance has finished; start a new one (or purge this one)",
                )
            db.execute(
                "INSERT INTO inbox (instance_id, visible_at, event) VALUES (?, ?, ?)",
                (message.instance_id, message.visible_at, message.event.encode()),
            )
            return row

    async def purge(self, instance_id: str) -> list[str]:
        return await self._call(self._purge, instance_id)

    def _purge(self, instance_id: str) -> list[str]:
        with self._transaction() as db:
            found = db.execute(
                "SELECT status FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if found is None:
                raise InstanceNotFound(instance_id)
            if found[0] not in _TERMINAL:
                raise InvalidState(
                    instance_id,
                    found[0],
                    "purge",
                    "only COMPLETED, FAILED, TERMINATED or CANCELED instances can be purged; "
                    "terminate it first",
                )
            family = self._family(db, instance_id)
            self._delete_instances(db, family)
            return family

    @staticmethod
    def _family(db: sqlite3.Connection, instance_id: str) -> list[str]:
        """The instance and all its descendants."""
        rows = db.execute(
            """WITH RECURSIVE family(id) AS (
                   SELECT ? UNION SELECT i.instance_id FROM instances i JOIN family f
                   ON i.parent_instance_id = f.id)
               SELECT id FROM family""",
            (instance_id,),
        ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _delete_instances(db: sqlite3.Connection, ids: list[str]) -> None:
        for table in ("instances", "history", "inbox", "tasks"):
            db.execute(f"DELETE FROM {table} WHERE instance_id IN ({_marks(ids)})", ids)

    # -- turns ---------------------------------------------------------------------------

    async def ready_instances(self, now: float, limit: int, exclude: set[str]) -> list[str]:
        return await self._call(self._ready_instances, now, limit, exclude)

    def _ready_instances(self, now: float, limit: int, exclude: set[str]) -> list[str]:
        rows = self._db.execute(
            "SELECT instance_id, MIN(id) AS first FROM inbox WHERE visible_at <= ? "
            "GROUP BY instance_id ORDER BY first LIMIT ?",
            (now, limit + len(exclude)),
        ).fetchall()
        return [r[0] for r in rows if r[0] not in exclude][:limit]

    async def load_turns(self, instance_ids: list[str], now: float, with_history: set[str]) -> list[TurnWork]:
        return await self._call(self._load_turns, instance_ids, now, with_history)

    def _load_turns(self, instance_ids: list[str], now: float, with_history: set[str]) -> list[TurnWork]:
        db = self._db
        marks = _marks(instance_ids)
        rows = {
            r[0]: _row(r)
            for r in db.execute(
                f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id IN ({marks})", instance_ids
            )
        }
        work = {iid: TurnWork(instance=rows.get(iid), instance_id=iid, messages=[]) for iid in instance_ids}
        for message_id, iid, event in db.execute(
            f"SELECT id, instance_id, event FROM inbox WHERE instance_id IN ({marks}) AND visible_at <= ? "
            "ORDER BY id",
            [*instance_ids, now],
        ):
            work[iid].messages.append((message_id, Event.decode(event)))
        wanted = [iid for iid in instance_ids if iid in with_history]
        if wanted:
            for item in wanted:
                work[item].history = []
            for iid, event in db.execute(
                f"SELECT instance_id, event FROM history WHERE instance_id IN ({_marks(wanted)}) "
                "ORDER BY instance_id, seq",
                wanted,
            ):
                history = work[iid].history
                assert history is not None
                history.append(Event.decode(event))
        return list(work.values())

    async def commit_turns(self, commits: list[TurnCommit]) -> list[str]:
        return await self._call(self._commit_turns, commits)

    def _commit_turns(self, commits: list[TurnCommit]) -> list[str]:
        stale: list[str] = []
        with self._transaction() as db:
            for commit in commits:
                if not self._commit_one(db, commit):
                    stale.append(commit.instance_id)
        return stale

    def _commit_one(self, db: sqlite3.Connection, c: TurnCommit) -> bool:
        iid = c.instance_id
        found = db.execute("SELECT history_length FROM instances WHERE instance_id = ?", (iid,)).fetchone()
        if found is None:
            # Purged while the turn ran (or never existed): drop its messages.
            if c.consumed:
                db.execute(f"DELETE FROM inbox WHERE id IN ({_marks(c.consumed)})", c.consumed)
            return True
        if found[0] != c.expected_history_length:
            return False
        base = c.expected_history_length
        if c.reset_history:
            db.execute("DELETE FROM history WHERE instance_id = ?", (iid,))
            base = 0
        db.executemany(
            "INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
            [(iid, base + n, e.encode()) for n, e in enumerate(c.new_events)],
        )
        sets = [
            "status = ?",
            "output = ?",
            "failure = ?",
            "custom_status = ?",
            "last_updated_at = ?",
            "history_length = ?",
        ]
        args: list[Any] = [
            c.status.value,
            c.output,
            json.dumps(c.failure) if c.failure else None,
            c.custom_status,
            c.last_updated_at,
            base + len(c.new_events),
        ]
        if c.new_execution_id is not None:
            sets += ["execution_id = ?", "input = ?"]
            args += [c.new_execution_id, c.new_input]
        if c.workflow_name is not None:
            sets.append("workflow_name = ?")
            args.append(c.workflow_name)
        db.execute(f"UPDATE instances SET {', '.join(sets)} WHERE instance_id = ?", [*args, iid])
        if c.consumed:
            db.execute(f"DELETE FROM inbox WHERE id IN ({_marks(c.consumed)})", c.consumed)
        if c.status.is_terminal or c.reset_history:
            # Timers and queued activities of a finished execution can never matter again.
            db.execute("DELETE FROM tasks WHERE instance_id = ? AND locked_by IS NULL", (iid,))
        if c.status.is_terminal:
            db.execute("DELETE FROM inbox WHERE instance_id = ?", (iid,))
        if c.tasks:
            db.executemany(
                "INSERT INTO tasks (instance_id, execution_id, task_id, name, input, retry, workflow_name, "
                "first_attempt_at, visible_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        t.instance_id,
                        t.execution_id,
                        t.task_id,
                        t.name,
                        t.input,
                        json.dumps(t.retry) if t.retry else None,
                        t.workflow_name,
                        t.visible_at,
                        t.visible_at,
                    )
                    for t in c.tasks
                ],
            )
        messages = list(c.messages)
        for child in c.children:
            if self._insert_instance(db, child.row, or_ignore=True):
                messages.append(Message(child.row.instance_id, child.start, child.start.timestamp))
            else:
                messages.append(Message(iid, child.failure_if_exists, child.failure_if_exists.timestamp))
        if c.terminate_children is not None:
            children = db.execute(
                f"SELECT instance_id FROM instances WHERE parent_instance_id = ? "
                f"AND status NOT IN ({_marks(_TERMINAL)})",
                (iid, *_TERMINAL),
            ).fetchall()
            for (child_id,) in children:
                event = Event(
                    Kind.TERMINATE_REQUESTED, c.last_updated_at, details={"reason": c.terminate_children}
                )
                messages.append(Message(child_id, event, c.last_updated_at))
        if messages:
            db.executemany(
                "INSERT INTO inbox (instance_id, visible_at, event) VALUES (?, ?, ?)",
                [(m.instance_id, m.visible_at, m.event.encode()) for m in messages],
            )
        return True

    # -- activity tasks ------------------------------------------------------------------

    async def claim_tasks(self, owner: str, now: float, limit: int) -> list[ActivityTask]:
        return await self._call(self._claim_tasks, owner, now, limit)

    def _claim_tasks(self, owner: str, now: float, limit: int) -> list[ActivityTask]:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, instance_id, execution_id, task_id, name, input, retry, attempt, "
                "first_attempt_at, workflow_name FROM tasks WHERE locked_by IS NULL AND visible_at <= ? "
                "ORDER BY visible_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            if not rows:
                return []
            ids = [r[0] for r in rows]
            db.execute(f"UPDATE tasks SET locked_by = ? WHERE id IN ({_marks(ids)})", [owner, *ids])
        return [
            ActivityTask(
                id=r[0],
                instance_id=r[1],
                execution_id=r[2],
                task_id=r[3],
                name=r[4],
                input=r[5],
                retry=json.loads(r[6]) if r[6] else None,
                attempt=r[7],
                first_attempt_at=r[8],
                workflow_name=r[9],
            )
            for r in rows
        ]

    async def finish_tasks(self, outcomes: list[ActivityOutcome]) -> None:
        await self._call(self._finish_tasks, outcomes)

    def _finish_tasks(self, outcomes: list[ActivityOutcome]) -> None:
        with self._transaction() as db:
            for outcome in outcomes:
                task = outcome.task
                if outcome.retry_at is not None:
                    db.execute(
                        "UPDATE tasks SET attempt = attempt + 1, visible_at = ?, locked_by = NULL "
                        "WHERE id = ?",
                        (outcome.retry_at, task.id),
                    )
                    continue
                deleted = db.execute("DELETE FROM tasks WHERE id = ?", (task.id,)).rowcount
                if deleted and outcome.message is not None:
                    # Deleting the task and delivering its result in one transaction:
                    # a result is delivered once even though the activity may run twice.
                    db.execute(
                        "INSERT INTO inbox (instance_id, visible_at, event) VALUES (?, ?, ?)",
                        (task.instance_id, outcome.message.timestamp, outcome.message.encode()),
                    )

    async def next_due(self, now: float) -> float | None:
        return await self._call(self._next_due, now)

    def _next_due(self, now: float) -> float | None:
        db = self._db
        inbox = db.execute("SELECT MIN(visible_at) FROM inbox WHERE visible_at > ?", (now,)).fetchone()[0]
        tasks = db.execute(
            "SELECT MIN(visible_at) FROM tasks WHERE locked_by IS NULL AND visible_at > ?", (now,)
        ).fetchone()[0]
        due = [t for t in (inbox, tasks) if t is not None]
        return min(due) if due else None


def _operation(event: Event) -> str:
    return {
        Kind.EVENT_RAISED: "raise an event on",
        Kind.SUSPENDED: "pause",
        Kind.RESUMED: "resume",
        Kind.TERMINATE_REQUESTED: "terminate",
        Kind.CANCEL_REQUESTED: "cancel",
    }.get(event.kind, "send a message to")


def _encode_token(created_at: float, instance_id: str) -> str:
    raw = json.dumps([created_at, instance_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        created, instance_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created), str(instance_id)
    except Exception:
        raise InvalidArgument("page_token", token, "a token returned as next_page_token by list") from None
