"""``state.postgresql``: one database shared by many worker processes, on many machines.

The shared SQL (``_sql.py``) does the work; this dialect adds a connection
pool (psycopg 3) used from a small thread pool, ``FOR UPDATE SKIP LOCKED`` so
that workers claiming instances and tasks pass each other by, LISTEN/NOTIFY so
that a worker learns of new work without waiting for its next poll, and
versioned migrations applied at start-up under an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import lru_cache, partial
from typing import Any, TypeVar

from turnout import ComponentError, EngineError

from ._metadata import PostgresMetadata
from ._sql import AssumptionFailed, SqlStore
from ._threads import ThreadRunner

try:
    import psycopg
    from psycopg import sql as pgsql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ComponentError(
        "state.postgresql needs psycopg 3 and its pool: pip install 'turnout[postgresql]'"
    ) from exc

T = TypeVar("T")
log = logging.getLogger("turnout.builtin.postgres")

SESSION_PREFIX = "turnout:"
"""How a worker's sessions are named (``application_name``): ``turnout:<host>:<pid>``."""

_FROZEN_SESSIONS = f"""
    SELECT pid, application_name, pg_terminate_backend(pid)
    FROM pg_stat_activity
    WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()
      AND application_name LIKE '{SESSION_PREFIX}%'
      AND xact_start IS NOT NULL AND wait_event = 'ClientRead'
      AND state_change < now() - make_interval(secs => ?)
"""
"""A worker's sessions that hold a transaction open, the server waiting on the worker's next word.

Ours never wait on the worker for long mid-transaction: a whole step goes in
one pipeline. One that has waited longer than any call may last is a frozen
worker's (a stopped process or container on a machine that still runs, whose
kernel answers keepalives), and the rows it locked stop every other worker.
Only sessions of the same role are seen; others' show no state.
"""

SCHEMA_VERSION = 3

EXPECTATION_FAILED = "TN001"
"""The SQLSTATE of ``turnout_expect``: an assumption of ``Db.expect`` was false."""

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE instances (
            instance_id TEXT PRIMARY KEY,
            workflow_name TEXT NOT NULL,
            status TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            last_updated_at DOUBLE PRECISION NOT NULL,
            input TEXT, output TEXT, failure TEXT, custom_status TEXT,
            scheduled_start_at DOUBLE PRECISION,
            parent_instance_id TEXT, parent_task_id INTEGER, parent_execution_id TEXT,
            history_length INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT, lease_expires DOUBLE PRECISION
        )""",
        "CREATE INDEX instances_by_created ON instances (created_at DESC, instance_id DESC)",
        "CREATE INDEX instances_by_parent ON instances (parent_instance_id) "
        "WHERE parent_instance_id IS NOT NULL",
        "CREATE INDEX instances_by_owner ON instances (lease_owner) WHERE lease_owner IS NOT NULL",
        """CREATE TABLE history (
            instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
            PRIMARY KEY (instance_id, seq)
        )""",
        """CREATE TABLE inbox (
            id BIGSERIAL PRIMARY KEY,
            instance_id TEXT NOT NULL, visible_at DOUBLE PRECISION NOT NULL, event TEXT NOT NULL
        )""",
        "CREATE INDEX inbox_by_visible ON inbox (visible_at)",
        "CREATE INDEX inbox_by_instance ON inbox (instance_id, id)",
        """CREATE TABLE tasks (
            id BIGSERIAL PRIMARY KEY,
            instance_id TEXT NOT NULL, execution_id TEXT NOT NULL, task_id INTEGER NOT NULL,
            name TEXT NOT NULL, input TEXT, retry TEXT, workflow_name TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1, first_attempt_at DOUBLE PRECISION NOT NULL,
            visible_at DOUBLE PRECISION NOT NULL, locked_by TEXT, locked_until DOUBLE PRECISION, trace TEXT
        )""",
        "CREATE INDEX tasks_by_visible ON tasks (visible_at)",
        "CREATE INDEX tasks_by_instance ON tasks (instance_id)",
        "CREATE INDEX tasks_by_owner ON tasks (locked_by) WHERE locked_by IS NOT NULL",
    ],
    2: [
        """CREATE TABLE definitions (
            name TEXT NOT NULL, version TEXT NOT NULL, dialect TEXT NOT NULL, document TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, seq BIGINT NOT NULL,
            PRIMARY KEY (name, version)
        )""",
    ],
    3: [
        # Db.expect: a transaction checks what it assumed on the server, and fails there.
        f"""CREATE FUNCTION turnout_expect(ok BOOLEAN, what TEXT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION 'turnout: %', what USING ERRCODE = '{EXPECTATION_FAILED}';
            END IF;
            RETURN TRUE;
        END $$""",
    ],
}


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The shared SQL's ``?`` placeholders in psycopg's ``%s`` form."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Db:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.later: list[tuple[psycopg.Cursor[Any], Callable[[list[Any]], None]]] = []
        """Returned rows and who gets them, once the transaction commits (see ``insert_rows``)."""

    def finish(self) -> None:
        """Hand rows returned to a ``then`` over, once every answer has come back."""
        for cursor, then in self.later:
            then(cursor.fetchall())

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(_pg(sql), args)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_pg(sql), list(rows))  # type: ignore[arg-type]

    # Many rows travel as one JSON parameter, unpacked by the server into the table's row
    # type: psycopg's executemany costs the client about 12 us a row (each row is sent and
    # polled for on its own, even in a pipeline), this about 2, and no batch makes a new text.

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
        names = ", ".join(columns)
        insert = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s)"
            + (" ON CONFLICT DO NOTHING" if skip_conflicts else "")
        )
        if expect_all:
            if returning:
                raise ValueError("insert_rows: expect_all counts the rows inserted, and returns none")
            self._conn.execute(
                f"WITH inserted AS ({insert} RETURNING 1) "
                "SELECT turnout_expect(COUNT(*) = %s, %s) FROM inserted",
                (_json_rows(columns, rows), len(rows), expect_all),
            )
            return []
        cursor = self._conn.execute(
            insert + (f" RETURNING {returning}" if returning else ""), (_json_rows(columns, rows),)
        )
        if not returning:
            return []
        if then is None:
            return cursor.fetchall()  # in a pipeline, a round trip before the next statement
        self.later.append((cursor, then))
        return []

    def expect(self, sql: str, args: Sequence[Any], what: str) -> None:
        # Sent, never read: a false value fails the transaction on the server (see _run).
        self._conn.execute(_pg(f"SELECT turnout_expect(({sql}), ?)"), [*args, what])  # type: ignore[arg-type]

    def update_rows(
        self, table: str, key: str, assignments: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        self._conn.execute(*_update_statement(table, key, assignments, columns, rows))


def _update_statement(
    table: str, key: str, assignments: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE for ``Db.update_rows``, and its parameters.

    The planner guesses a JSON recordset at 100 rows, and joined 100 rows to a
    table of a few thousand by reading all of it (its model prices an index
    probe at four pages read, a table scan at one a page; our rows are in
    memory). One row therefore comes from ``json_populate_record``, which it
    knows makes one row: every step of every workflow paid about 0.5 ms of
    server CPU with 2,000 instances stored, against 0.05 ms through the key's
    index. A batch names its keys as well, which the planner estimates from
    the key's index: 64 rows against 20,000 stored took 6.0 ms through a scan
    of the table and 0.8 ms this way, and the scan grows with every instance
    kept.
    """
    if len(rows) == 1:
        source = f"json_populate_record(NULL::{table}, %s)"
        return (
            f"UPDATE {table} AS cur SET {assignments} FROM {source} AS v WHERE cur.{key} = v.{key}",
            (json.dumps(dict(zip(columns, rows[0], strict=True))),),
        )
    keys = [row[columns.index(key)] for row in rows]
    source = f"json_populate_recordset(NULL::{table}, %s)"
    return (
        f"UPDATE {table} AS cur SET {assignments} FROM {source} AS v "
        f"WHERE cur.{key} = v.{key} AND cur.{key} = ANY(%s)",
        (_json_rows(columns, rows), keys),
    )


def _in_transaction(conn: psycopg.Connection[Any], fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """``fn`` in one transaction, in pipeline mode: statements whose results are not read go
    without waiting for the server, and ``COMMIT`` goes with the last of them.

    Not ``conn.transaction()``: in a pipeline it waits for the server before and
    after ``COMMIT``, two round trips more on every step of every workflow. Here
    a failed statement makes the server skip the rest of the pipeline, ``COMMIT``
    included; an exception from ``fn`` comes before ``COMMIT`` is sent. Either
    way the transaction is left open, and the pool's connection block that
    encloses this call rolls it back.
    """
    db = _Db(conn)
    with conn.pipeline():
        conn.execute("BEGIN")
        result = fn(db, *args)
        conn.execute("COMMIT")
    db.finish()  # leaving the pipeline read every answer, COMMIT's among them
    return result


def _outside_transactions(conn: psycopg.Connection[Any], fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    db = _Db(conn)
    result = fn(db, *args)
    db.finish()
    return result


def keepalives(timeout: float) -> dict[str, int]:
    """TCP keepalives that give up on a silent peer after about twice ``timeout``, in whole seconds.

    The kernel's own defaults start probing after two hours idle. Named as
    libpq names them; the server's settings are the same with ``tcp_`` before
    the three ``keepalives_*``.
    """
    seconds = max(1, round(timeout))
    return {
        "keepalives_idle": seconds,
        "keepalives_interval": max(1, seconds // 4),
        "keepalives_count": 4,
        # Also bounds how long data sent may go unacknowledged, when keepalives do not run.
        "tcp_user_timeout": 2 * seconds * 1000,
    }


def with_network_timeouts(conninfo: str, timeout: float) -> str:
    """``conninfo`` with libpq's network timeouts derived from ``timeout``, where it sets none.

    libpq's own defaults wait for ever to connect, and for ever for the answer
    of a server that vanished without a word (a failover, a cut network): the
    thread waiting would hang for as long. Here a connection attempt gives up
    after ``timeout``, and a silent server after about twice ``timeout``. The
    sessions are named after the worker process. What the user's connection
    string sets is kept.
    """
    defaults = {
        "connect_timeout": max(1, round(timeout)),
        "keepalives": 1,
        **keepalives(timeout),
        # In pg_stat_activity, a worker's sessions beside its leases (lease_owner is host:pid:...).
        "application_name": f"{SESSION_PREFIX}{socket.gethostname()}:{os.getpid()}"[:63],
    }
    given = conninfo_to_dict(conninfo)
    return make_conninfo(conninfo, **{k: v for k, v in defaults.items() if k not in given})


def redacted(conninfo: str) -> str:
    """``conninfo`` (one libpq reads: the store refuses others) fit for an error message or a log:
    its password masked."""
    fields = conninfo_to_dict(conninfo)
    if "password" in fields:
        fields["password"] = "***"
    return make_conninfo("", **fields)


def _json_rows(columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> str:
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows])


class Deadlines:
    """Cuts the connection of a database call that outlives its deadline, which fails it at once.

    A frozen server (a stopped process, storage that stopped answering) lets
    neither ``statement_timeout`` fire nor its kernel stop acknowledging our
    packets and keepalives, so libpq would wait for its answer for ever. One
    thread looks at the calls in progress a few times per ``limit`` and shuts
    down the socket of any that is late: the waiting thread wakes to a closed
    connection, a retryable error, and the pool drops the connection.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._lock = threading.Lock()  # guards _calls, and a cut against the call's end
        self._calls: dict[int, tuple[float, int]] = {}  # the calling thread -> (deadline, socket)
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()  # the running thread's; a watch after a stop starts anew

    @contextlib.contextmanager
    def watch(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """Watch a call on ``conn`` for the length of the block (a thread makes one call at a time)."""
        key = threading.get_ident()
        with self._lock:
            self._calls[key] = (time.monotonic() + self.limit, conn.pgconn.socket)
            if self._thread is None:
                self._stopped = threading.Event()
                self._thread = threading.Thread(
                    target=self._watch, args=(self._stopped,), name="turnout-pg-deadlines", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._calls.pop(key, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            self._thread = None

    def _watch(self, stopped: threading.Event) -> None:
        while not stopped.wait(min(max(self.limit / 8, 0.05), 2.0)):
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._calls.items() if deadline < now]
                for key in late:
                    _, fd = self._calls.pop(key)
                    log.warning(
                        "turnout: PostgreSQL has not answered a call for %.1fs; its connection is "
                        "closed and the call fails, to be retried",
                        self.limit,
                    )
                    # On a duplicate of the descriptor: libpq still owns the original, and
                    # closes it when the pool drops the connection. Under the lock: the call
                    # cannot end, and its descriptor pass to another connection, meanwhile.
                    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
                        sock.shutdown(socket.SHUT_RDWR)


class PostgresStore(SqlStore):
    """The built-in engine's state in a PostgreSQL schema."""

    lock_clause = " FOR UPDATE SKIP LOCKED"
    row_lock_clause = " FOR UPDATE"

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "turnout",
        max_connections: int = 10,
        lease_seconds: float = 10.0,
        timeout: float = 20.0,
    ) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.max_connections = max_connections
        self.lease_seconds = lease_seconds
        self.timeout = timeout
        self._deadlines = Deadlines(2 * timeout)
        try:
            self._network_conninfo = with_network_timeouts(conninfo, timeout)
        except psycopg.ProgrammingError as exc:
            raise ComponentError(
                f"state.postgresql: connectionString is neither a libpq 'key=value' string nor a "
                f"postgresql:// URL ({str(exc).strip()})"
            ) from exc
        self.channel = f"turnout_{schema}"
        self._pool: ConnectionPool[Any] | None = None
        self._threads = ThreadRunner(max_connections, "turnout-pg")
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._on_notify: Callable[[list[str] | None], None] | None = None
        self._tag = ""

    @classmethod
    def from_metadata(cls, metadata: PostgresMetadata) -> PostgresStore:
        """Build from ``state.postgresql`` metadata."""
        return cls(
            metadata.connection_string,
            schema=metadata.schema_name,
            max_connections=metadata.max_connections,
            lease_seconds=metadata.lease_seconds,
            timeout=metadata.timeout.total_seconds(),
        )

    # -- running SQL ---------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit(False, fn, args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit(True, fn, args)

    async def _submit(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return await self._threads.run(partial(self._run, write, fn, args))

    def _run(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        try:
            with self._pool.connection() as conn, self._deadlines.watch(conn):
                return _in_transaction(conn, fn, args) if write else _outside_transactions(conn, fn, args)
        except psycopg.Error as exc:
            if exc.sqlstate == EXPECTATION_FAILED:
                raise AssumptionFailed(exc.diag.message_primary or str(exc)) from exc
            if isinstance(exc, psycopg.OperationalError):
                # The server restarted, the network failed, a statement ran out of time, or the
                # call outlived its deadline and its connection was cut: the caller may retry.
                raise EngineError(
                    "state.postgresql", fn.__name__.lstrip("_"), str(exc).strip(), retryable=True
                ) from exc
            raise

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if len(values) == 1:
            # Planned once per connection (a prepared statement's generic plan); with an
            # array the server plans again on every call, which costs more than running it.
            return f"{column} = ?", [values[0]]
        return f"{column} = ANY(?)", [list(values)]

    def _notify(self, db: Any, changed: Sequence[str] = ()) -> None:
        # "<tag>|<ids whose status changed>": listeners skip their own commits, and
        # waiters elsewhere re-read only their instance. NOTIFY payloads stop at 8000 bytes.
        ids = ",".join(changed)
        db.execute("SELECT pg_notify(?, ?)", (self.channel, f"{self._tag}|{ids if len(ids) < 7000 else '*'}"))

    # -- lifecycle -----------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # One message for all (no parameters: the simple protocol, which takes several).
        #  - statement_timeout: a statement stuck behind another session's lock is cancelled,
        #    and the engine retries, instead of holding a thread and a connection for ever.
        #  - the server's keepalives: if this worker's machine vanishes in the middle of a
        #    transaction, the server ends the session and the rows it locked are free for the
        #    workers that take its instances over (their claims skip locked rows).
        # Not idle_in_transaction_session_timeout: a pipelined transaction is never idle in the
        # server's sense before its Sync, so it would not apply; a worker frozen mid-transaction
        # (SIGSTOP) keeps its rows until it wakes or dies (PostgreSQL 17's transaction_timeout).
        settings = {"statement_timeout": max(1, round(self.timeout * 1000))} | {
            name if name == "tcp_user_timeout" else f"tcp_{name}": value
            for name, value in keepalives(self.timeout).items()
        }
        statements = [pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(self.schema))] + [
            pgsql.SQL("SET {} = {}").format(pgsql.Identifier(name), pgsql.Literal(value))
            for name, value in settings.items()
        ]
        conn.execute(pgsql.SQL("; ").join(statements))

    async def open(self) -> None:
        await self._threads.run(self._open)

    def _open(self) -> None:
        try:
            self._migrate()
            self._open_pool()
        except BaseException:
            self._deadlines.stop()  # a refused open leaves no thread behind
            raise

    def _open_pool(self) -> None:
        self._pool = ConnectionPool(
            self._network_conninfo,
            min_size=1,
            max_size=self.max_connections,
            timeout=self.timeout,  # for a free connection: PoolTimeout, retried like a lost server
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
            name=f"turnout-{self.schema}",
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except Exception as exc:
            self._pool.close()
            self._pool = None
            raise ComponentError(f"cannot connect to PostgreSQL: {exc}") from exc

    def _migrate(self) -> None:
        try:
            conn = psycopg.connect(self._network_conninfo, autocommit=True)
        except psycopg.Error as exc:
            shown = redacted(self.conninfo)
            raise ComponentError(f"cannot connect to PostgreSQL ({shown!r}): {exc}".strip()) from exc
        try:
            # Watched like every call: a frozen server, or a worker frozen while it holds the
            # migration lock, would otherwise hold this start-up for ever.
            with conn, self._deadlines.watch(conn):
                self._migrate_on(conn)
        except psycopg.OperationalError as exc:
            raise ComponentError(
                f"PostgreSQL did not finish migrating schema '{self.schema}' "
                f"({str(exc).strip()}); calls are cut after {self._deadlines.limit:g}s (twice "
                "state.postgresql's timeout), and another worker may hold the migration lock"
            ) from exc

    def _migrate_on(self, conn: psycopg.Connection[Any]) -> None:
        schema = pgsql.Identifier(self.schema)
        with conn.transaction():
            # One worker migrates; the others wait here and then find it done.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"turnout-migrate-{self.schema}",))
            conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(pgsql.SQL("SET LOCAL search_path TO {}").format(schema))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] if row and row[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise ComponentError(
                    f"the PostgreSQL schema '{self.schema}' is at version {version}, newer than this "
                    f"Turnout understands ({SCHEMA_VERSION}): upgrade turnout on every worker"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (step,))

    async def close(self) -> None:
        self._stop.set()
        await self._threads.run(self._close)
        self._threads.shutdown()
        self._deadlines.stop()

    def _close(self) -> None:
        if self._listener is not None:
            if self._pool is not None:
                # Wake the listener out of its wait so that it sees the stop at once (it sees
                # it within half a second anyway: a frozen server must not hold the close).
                with (
                    contextlib.suppress(Exception),
                    self._pool.connection(timeout=1) as conn,
                    self._deadlines.watch(conn),
                ):
                    conn.execute("SELECT pg_notify(%s, 'stop')", (self.channel,))
            self._listener.join(timeout=5)
            self._listener = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def recover(self, owner: str) -> None:
        """Nothing to do: work of dead workers is taken over when their leases expire."""

    async def heartbeat(self, owner: str, now: float, tasks: Collection[int]) -> None:
        """Extend this worker's leases, and end the sessions of frozen workers (see ``_FROZEN_SESSIONS``).

        A dead worker's sessions end with it, and the takeover of its instances
        waits only for their leases; a frozen one's stay open, and the rows its
        transaction locked would wait for it for ever.
        """
        await super().heartbeat(owner, now, tasks)
        try:
            ended = await self._read(self._end_frozen_sessions)
        except (EngineError, psycopg.Error) as exc:  # the leases are extended: the next beat tries again
            log.warning("turnout: could not look for frozen workers' sessions: %s", exc)
            return
        for pid, name in ended:
            log.warning(
                "turnout: ended PostgreSQL session %s of %s, which held a transaction open without a "
                "word for over %.0fs (a frozen worker); its instances go to the other workers",
                pid,
                name,
                self._deadlines.limit,
            )

    def _end_frozen_sessions(self, db: Any) -> list[tuple[int, str]]:
        # Waiting longer than a call may last: the watchdog cuts every call of a live worker
        # by then, so a session still waiting on its worker has one that is not running.
        rows = db.execute(_FROZEN_SESSIONS, (self._deadlines.limit,)).fetchall()
        return [(pid, name) for pid, name, ended in rows if ended]

    # -- LISTEN/NOTIFY -------------------------------------------------------------------

    def listen(self, callback: Callable[[list[str] | None], None], *, tag: str) -> None:
        """Call ``callback`` (from another thread) whenever another worker commits."""
        self._on_notify = callback
        self._tag = tag
        self._listener = threading.Thread(target=self._listen, name="turnout-pg-listen", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._network_conninfo, autocommit=True) as conn:
                    conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self.channel)))
                    delay = 0.1
                    if self._on_notify is not None:
                        # Whatever was committed while nobody listened went untold: look again.
                        self._on_notify(None)
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.5, stop_after=1):
                            tag, _, ids = notice.payload.partition("|")
                            if self._on_notify is not None and tag != self._tag:
                                self._on_notify(None if ids == "*" else [i for i in ids.split(",") if i])
            except psycopg.Error as exc:
                # The server went away: polling covers the gap; reconnect with back-off.
                log.warning("turnout: LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)


async def drop_schema(conninfo: str, schema: str) -> None:
    """Remove a schema and everything in it (tests and tooling)."""

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn, contextlib.suppress(psycopg.Error):
            conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(schema)))

    await asyncio.get_running_loop().run_in_executor(None, drop)
