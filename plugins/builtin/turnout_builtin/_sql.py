"""The SQL shared by every store dialect: written once, with ``?`` placeholders.

Dialects (``_sqlite.py``, ``_postgres.py``) provide the connection, the
transaction, the schema and a few clauses; everything the engine asks of a
store is here. All methods named ``_x`` are synchronous and run on a worker
thread with a :class:`Db`, inside a transaction when they write.

Several workers may share one database: an instance is *leased* by the
worker that runs its turns (it keeps the lease while the instance is hot in
its cache, renewed by heartbeats) and an activity task is *locked* by the
worker running it. A worker that dies loses both when they expire. A turn
whose instance's history moved on, or whose lease was lost, is refused as
stale, so two workers never both apply a turn of one instance.
"""

from __future__ import annotations

import base64
import json
import re
from abc import abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from turnout import (
    TERMINAL_STATUSES,
    DefinitionExists,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    RuntimeStatus,
)

from ._batching import Batcher
from ._events import Event, Kind
from ._store import (
    ActivityOutcome,
    ActivityTask,
    InstanceRow,
    Message,
    NewTask,
    Store,
    StoredDefinition,
    TurnCommit,
    TurnWork,
)

T = TypeVar("T")

TERMINAL = tuple(s.value for s in TERMINAL_STATUSES)
INSTANCE_COLUMNS = (
    "instance_id, workflow_name, status, execution_id, created_at, last_updated_at, input, output, "
    "failure, custom_status, scheduled_start_at, parent_instance_id, parent_task_id, "
    "parent_execution_id, history_length"
)
INSTANCE_FIELDS = (*INSTANCE_COLUMNS.split(", "), "lease_owner", "lease_expires")
HISTORY_FIELDS = ("instance_id", "seq", "event")
INBOX_FIELDS = ("instance_id", "visible_at", "event")
TASK_FIELDS = (
    "instance_id", "execution_id", "task_id", "name", "input", "retry", "workflow_name",
    "first_attempt_at", "visible_at", "trace", "locked_by", "locked_until",
)  # fmt: skip
TURN_FIELDS = (
    "instance_id", "status", "output", "failure", "custom_status", "last_updated_at", "history_length",
    "lease_expires", "lease_owner", "execution_id", "input", "workflow_name",
)  # fmt: skip
TURN_ASSIGNMENTS = (
    "status = v.status, output = v.output, failure = v.failure, custom_status = v.custom_status, "
    "last_updated_at = v.last_updated_at, history_length = v.history_length, "
    "lease_expires = v.lease_expires, lease_owner = v.lease_owner, "
    # A new execution (continue-as-new) brings its id and input; other turns keep both.
    "execution_id = COALESCE(v.execution_id, cur.execution_id), "
    "input = CASE WHEN v.execution_id IS NULL THEN cur.input ELSE v.input END, "
    "workflow_name = COALESCE(v.workflow_name, cur.workflow_name)"
)
"""What a turn writes to its instance's row: ``v`` is the turn's values, ``cur`` the row as stored."""
IN_CHUNK = 500
"""Values per ``IN (...)`` list: far below SQLite's limit of 32,766 parameters."""
TASK_COLUMNS = (
    "id, instance_id, execution_id, task_id, name, input, retry, attempt, first_attempt_at, "
    "workflow_name, trace"
)


@dataclass
class _NewInstance:
    """One start: the row, its start message and when that is visible, and the worker it is leased to."""

    row: InstanceRow
    start: Event
    visible_at: float
    lease_to: str | None
    first_turn: TurnCommit | None = None
    """The first turn, already run by ``lease_to``: committed with the row, instead of a start message."""


class AssumptionFailed(Exception):
    """A transaction written on an assumption (see ``Db.expect``) found it false, and was rolled back."""


class Cursor(Protocol):
    """The part of a DB-API cursor the shared SQL uses."""

    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """A connection in a transaction, speaking ``?`` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
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
        """Insert ``rows`` (values of ``columns``) as one statement where the dialect can.

        ``skip_conflicts`` leaves out rows whose key is taken. What ``returning``
        names comes back for each row inserted, in no particular order: callers
        ask for the columns they match rows on. Given ``then``, the rows go to it
        instead, as late as the dialect likes but only if the transaction commits:
        a client of a remote server reads them with the answer to ``COMMIT``, and
        saves the round trip that reading them before the next statement costs.
        Given ``expect_all`` (what it means), every row must be inserted, as with
        :meth:`expect`.
        """
        ...

    def expect(self, sql: str, args: Sequence[Any], what: str) -> None:
        """A query whose one value must be true; if not, the transaction fails with AssumptionFailed(what).

        Where the server can check it (PostgreSQL), the answer is never read:
        a transaction written on what it expects goes in one round trip, where
        reading first and deciding would take two.
        """
        ...

    def update_rows(
        self, table: str, key: str, assignments: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
    ) -> None:
        """For each row (values of ``columns``, ``key`` among them), update the stored row with its key.

        ``assignments`` is the ``SET`` list: ``v.<column>`` is a given value,
        ``cur.<column>`` the stored one. No two rows may share a key.
        """
        ...


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for at in range(0, len(items), IN_CHUNK):
        yield items[at : at + IN_CHUNK]


def marks(items: Iterable[Any]) -> str:
    """``?, ?, ?`` for an IN list."""
    return ",".join("?" for _ in items)


_GIVEN = re.compile(r"\bv\.(\w+)")


@lru_cache(maxsize=64)
def insert_values_sql(table: str, columns: tuple[str, ...], skip_conflicts: bool, returning: str) -> str:
    """An INSERT of one row of ``?`` values: for dialects that run a statement per row."""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(columns)})"
        + (" ON CONFLICT DO NOTHING" if skip_conflicts else "")
        + (f" RETURNING {returning}" if returning else "")
    )


@lru_cache(maxsize=64)
def update_values_sql(
    table: str, key: str, assignments: str, columns: tuple[str, ...]
) -> tuple[str, tuple[int, ...]]:
    """An UPDATE of one row by ``?`` values, and which of ``columns`` fill its placeholders, in order."""
    used = [*_GIVEN.findall(assignments), key]
    sql = f"UPDATE {table} AS cur SET {_GIVEN.sub('?', assignments)} WHERE cur.{key} = ?"
    return sql, tuple(columns.index(name) for name in used)


def instance_row(values: Sequence[Any]) -> InstanceRow:
    """An InstanceRow from a row of INSTANCE_COLUMNS."""
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


def _task(values: Sequence[Any]) -> ActivityTask:
    return ActivityTask(
        id=values[0],
        instance_id=values[1],
        execution_id=values[2],
        task_id=values[3],
        name=values[4],
        input=values[5],
        retry=json.loads(values[6]) if values[6] else None,
        attempt=values[7],
        first_attempt_at=values[8],
        workflow_name=values[9],
        trace=json.loads(values[10]) if values[10] else None,
    )


class SqlStore(Store):
    """Everything but the connection: dialects implement :meth:`_read` and :meth:`_write`."""

    lock_clause = ""
    """Appended to the SELECTs that claim rows (``FOR UPDATE SKIP LOCKED`` where supported)."""

    row_lock_clause = ""
    """Appended to a SELECT of one row that the transaction then changes (``FOR UPDATE``)."""

    @abstractmethod
    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` on a worker thread."""

    @abstractmethod
    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` on a worker thread, in one transaction."""

    async def _write_assuming(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args, True)`` in one transaction; if what it assumed was false, ``fn(db, *args, False)``.

        With ``True``, ``fn`` writes as if the common case held and checks it
        with ``Db.expect``: on a remote server the whole transaction goes in one
        round trip. With ``False`` it reads first and decides, in two. The first
        transaction rolls back whole when an assumption fails, so the second
        starts from the same state.
        """
        try:
            return await self._write(fn, *args, True)
        except AssumptionFailed:
            return await self._write(fn, *args, False)

    def _notify(self, db: Db, changed: Sequence[str] = ()) -> None:
        """Tell other workers that new work is visible (a dialect hook; no-op by default)."""

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (?, ?, ...)`` and its parameters (a dialect hook, for the statements of every step).

        A dialect with arrays says it with one parameter, so that the text does
        not change with the number of values and the driver's caches hold.
        """
        return f"{column} IN ({marks(values)})", list(values)

    # -- instances -----------------------------------------------------------------------

    async def create_instance(
        self,
        row: InstanceRow,
        start: Event,
        visible_at: float,
        replace: bool,
        *,
        lease_to: str | None = None,
        first_turn: TurnCommit | None = None,
    ) -> int | None:
        if first_turn is not None and lease_to is None:
            raise ValueError("a first turn is committed only for the worker that ran it (lease_to)")
        item = _NewInstance(row, start, visible_at, lease_to, first_turn)
        if replace:
            return await self._write(self._replace_instance, item)
        # Starts that arrive together are created in one transaction (see _batching).
        batcher = self.__dict__.get("_creates")
        if batcher is None:
            batcher = self.__dict__["_creates"] = Batcher(self._create_batch)
        message_id: int | None = await batcher.submit(item)
        return message_id

    async def _create_batch(self, items: list[_NewInstance]) -> list[int | BaseException | None]:
        return await self._write_assuming(self._create_instances, items)

    def _create_instances(
        self, db: Db, items: list[_NewInstance], assume: bool
    ) -> list[int | BaseException | None]:
        """Create new instances (never replacing one); an id in use gets InstanceExists.

        ``assume``: every id is free, as it nearly always is (see ``_write_assuming``).
        """
        inserted = self._insert_instances(
            db, [i.row for i in items], [self._lease(i) for i in items], expect_all=assume
        )
        taken = [i.row.instance_id for i in items if i.row.instance_id not in inserted]
        status = (
            dict(
                db.execute(
                    f"SELECT instance_id, status FROM instances WHERE instance_id IN ({marks(taken)})", taken
                ).fetchall()
            )
            if taken
            else {}
        )
        created = []
        for item in items:
            if item.row.instance_id in inserted:
                inserted.discard(item.row.instance_id)  # the same id twice in one batch: the first wins
                created.append(item)
        message_ids = self._insert_starts(db, [i for i in created if i.first_turn is None])
        self._insert_first_turns(db, [i for i in created if i.first_turn is not None])
        made = {id(item) for item in created}
        return [
            message_ids.get(id(item))
            if id(item) in made
            else InstanceExists(item.row.instance_id, status.get(item.row.instance_id))
            for item in items
        ]

    def _replace_instance(self, db: Db, item: _NewInstance) -> int | None:
        iid = item.row.instance_id
        existing = db.execute(
            f"SELECT status FROM instances WHERE instance_id = ?{self.row_lock_clause}", (iid,)
        ).fetchone()
        if existing is not None:
            if existing[0] not in TERMINAL:
                raise InstanceExists(iid, existing[0])
            self._delete_instances(db, self._family(db, iid))
        if not self._insert_instances(db, [item.row], [self._lease(item)]):
            raise InstanceExists(iid)  # created concurrently by another worker
        if item.first_turn is not None:
            self._insert_first_turns(db, [item])
            return None
        return self._insert_starts(db, [item])[id(item)]

    def _lease(self, item: _NewInstance) -> tuple[str | None, float | None]:
        if item.lease_to is None:
            return None, None
        return item.lease_to, item.row.created_at + self.lease_seconds

    def _insert_first_turns(self, db: Db, items: list[_NewInstance]) -> None:
        """The first turns of instances just inserted, written as any turn is (see _apply_turns)."""
        by_owner: dict[str, list[TurnCommit]] = {}
        for item in items:
            assert item.first_turn is not None and item.lease_to is not None
            by_owner.setdefault(item.lease_to, []).append(item.first_turn)
        for owner, commits in by_owner.items():
            self._apply_turns(db, owner, commits, {c.instance_id: (0, owner) for c in commits})
        if items:
            self._notify(db, [i.row.instance_id for i in items])

    def _insert_starts(self, db: Db, items: list[_NewInstance]) -> dict[int, int]:
        """The start messages of new instances; returns their inbox ids by ``id(item)``."""
        if not items:
            return {}
        returned = db.insert_rows(
            "inbox",
            INBOX_FIELDS,
            [(i.row.instance_id, i.visible_at, i.start.encode()) for i in items],
            returning="instance_id, id",
        )
        self._notify(db)
        message_ids = dict(returned)  # one start per instance: its id is in the batch once
        return {id(item): message_ids[item.row.instance_id] for item in items}

    @classmethod
    def _insert_instance(cls, db: Db, row: InstanceRow) -> bool:
        return bool(cls._insert_instances(db, [row]))

    @staticmethod
    def _insert_instances(
        db: Db,
        rows: list[InstanceRow],
        leases: list[tuple[str | None, float | None]] | None = None,
        *,
        expect_all: bool = False,
    ) -> set[str]:
        """Insert the rows whose ids are free (leased to a worker where given); returns the ids inserted.

        ``expect_all``: every id is free, or the transaction fails (AssumptionFailed).
        """
        if not rows:
            return set()
        leases = leases or [(None, None)] * len(rows)
        returned = db.insert_rows(
            "instances",
            INSTANCE_FIELDS,
            [
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
                    owner,
                    expires,
                )
                for row, (owner, expires) in zip(rows, leases, strict=True)
            ],
            skip_conflicts=True,
            returning="" if expect_all else "instance_id",
            expect_all="the new instances' ids are free" if expect_all else "",
        )
        return {row.instance_id for row in rows} if expect_all else {r[0] for r in returned}

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        # Reads that arrive together (many waiters starting at once) share one query.
        batcher = self.__dict__.get("_gets")
        if batcher is None:
            batcher = self.__dict__["_gets"] = Batcher(self._get_batch)
        row: InstanceRow | None = await batcher.submit(instance_id)
        return row

    async def _get_batch(self, instance_ids: list[str]) -> list[InstanceRow | BaseException | None]:
        rows = await self._read(self._get_instances, sorted(set(instance_ids)))
        return [rows.get(iid) for iid in instance_ids]

    def _get_instances(self, db: Db, instance_ids: list[str]) -> dict[str, InstanceRow]:
        rows: dict[str, InstanceRow] = {}
        for chunk in _chunks(instance_ids):
            where, args = self._in("instance_id", chunk)
            for found in db.execute(f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE {where}", args):
                rows[found[0]] = instance_row(found)
        return rows

    @staticmethod
    def _get_instance(db: Db, instance_id: str) -> InstanceRow | None:
        found = db.execute(
            f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        return instance_row(found) if found else None

    async def list_instances(self, query: ListQuery) -> tuple[list[InstanceRow], str | None]:
        return await self._read(self._list_instances, query)

    @staticmethod
    def _list_instances(db: Db, query: ListQuery) -> tuple[list[InstanceRow], str | None]:
        where: list[str] = []
        args: list[Any] = []
        if query.status:
            where.append(f"status IN ({marks(query.status)})")
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
        sql = f"SELECT {INSTANCE_COLUMNS} FROM instances"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, instance_id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = [instance_row(r) for r in db.execute(sql, args).fetchall()]
        token = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            token = _encode_token(rows[-1].created_at, rows[-1].instance_id)
        return rows, token

    async def load_history(self, instance_id: str) -> list[Event]:
        return await self._read(self._load_history, instance_id)

    @staticmethod
    def _load_history(db: Db, instance_id: str) -> list[Event]:
        rows = db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,)
        ).fetchall()
        return [Event.decode(r[0]) for r in rows]

    async def enqueue(self, message: Message) -> InstanceRow:
        return await self._write(self._enqueue, message)

    def _enqueue(self, db: Db, message: Message) -> InstanceRow:
        row = self._get_instance(db, message.instance_id)
        if row is None:
            raise InstanceNotFound(message.instance_id)
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
        self._notify(db)
        return row

    async def purge(self, instance_id: str) -> list[str]:
        return await self._write(self._purge, instance_id)

    def _purge(self, db: Db, instance_id: str) -> list[str]:
        found = db.execute("SELECT status FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
        if found is None:
            raise InstanceNotFound(instance_id)
        if found[0] not in TERMINAL:
            raise InvalidState(
                instance_id,
                found[0],
                "purge",
                "only COMPLETED, FAILED, TERMINATED or CANCELED instances can be purged; terminate it first",
            )
        family = self._family(db, instance_id)
        self._delete_instances(db, family)
        return family

    @staticmethod
    def _family(db: Db, instance_id: str) -> list[str]:
        """The instance and all its descendants."""
        rows = db.execute(
            """WITH RECURSIVE family(id) AS (
                   SELECT CAST(? AS TEXT) UNION SELECT i.instance_id FROM instances i JOIN family f
                   ON i.parent_instance_id = f.id)
               SELECT id FROM family""",
            (instance_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def _delete_instances(self, db: Db, ids: list[str]) -> None:
        for chunk in _chunks(ids):  # a family may have more members than a statement takes parameters
            where, args = self._in("instance_id", chunk)
            for table in ("instances", "history", "inbox", "tasks"):
                db.execute(f"DELETE FROM {table} WHERE {where}", args)

    # -- turns ---------------------------------------------------------------------------

    async def ready_instances(self, owner: str, now: float, limit: int, exclude: set[str]) -> list[str]:
        return await self._write(self._ready_instances, owner, now, limit, exclude)

    def _ready_instances(self, db: Db, owner: str, now: float, limit: int, exclude: set[str]) -> list[str]:
        """Lease up to ``limit`` instances with due messages, oldest first; ids of vanished ones too.

        The due messages are read in ``visible_at`` order through its index,
        skipping those of instances another worker holds or this one already
        runs (``exclude``): a claim reads about as many rows as it claims,
        however long the backlog. (Grouping every due message by instance, as
        before, read all of them on every claim, and draining a backlog took
        time in the square of its length; ``python -m bench.claims`` measures it.)
        """
        # One statement names a chunk of the instances to skip; beyond that (thousands of
        # paused instances, say) the rest are skipped here, from a longer read.
        ordered = sorted(exclude)
        named, unnamed = ordered[:IN_CHUNK], ordered[IN_CHUNK:]
        skip, skip_args = self._in("m.instance_id", named) if named else ("", [])
        due = db.execute(
            "SELECT m.instance_id, i.instance_id IS NOT NULL FROM inbox AS m "
            "LEFT JOIN instances AS i ON i.instance_id = m.instance_id WHERE m.visible_at <= ? "
            "AND (i.instance_id IS NULL OR i.lease_owner IS NULL OR i.lease_owner = ? OR i.lease_expires < ?)"
            + (f" AND NOT ({skip})" if skip else "")
            + " ORDER BY m.visible_at LIMIT ?",
            # An instance may have several messages due: more rows than instances wanted.
            [now, owner, now, *skip_args, 4 * (limit + len(unnamed))],
        ).fetchall()
        skipped = set(unnamed)
        candidates = list(dict.fromkeys(iid for iid, _ in due if iid not in skipped))[:limit]
        if not candidates:
            return []
        wanted = set(candidates)
        known = {iid for iid, exists in due if exists and iid in wanted}
        free: set[str] = set()
        if known:
            # Leased only if still free now, under a lock: another worker may be claiming them too.
            where, args = self._in("instance_id", sorted(known))
            free = {
                r[0]
                for r in db.execute(
                    f"SELECT instance_id FROM instances WHERE {where} "
                    f"AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ?){self.lock_clause}",
                    [*args, owner, now],
                ).fetchall()
            }
        if free:
            where, args = self._in("instance_id", sorted(free))
            db.execute(
                f"UPDATE instances SET lease_owner = ?, lease_expires = ? WHERE {where}",
                [owner, now + self.lease_seconds, *args],
            )
        # Messages for instances that no longer exist are claimed too, to be dropped.
        return [iid for iid in candidates if iid in free or iid not in known]

    async def load_turns(self, instance_ids: list[str], now: float, with_history: set[str]) -> list[TurnWork]:
        return await self._read(self._load_turns, instance_ids, now, with_history)

    async def claim_turns(
        self, owner: str, now: float, limit: int, exclude: set[str], cached: Callable[[str], bool]
    ) -> list[TurnWork]:
        return await self._write(self._claim_turns, owner, now, limit, exclude, cached)

    def _claim_turns(
        self, db: Db, owner: str, now: float, limit: int, exclude: set[str], cached: Callable[[str], bool]
    ) -> list[TurnWork]:
        ids = self._ready_instances(db, owner, now, limit, exclude)
        if not ids:
            return []
        return self._load_turns(db, ids, now, {iid for iid in ids if not cached(iid)})

    def _load_turns(
        self, db: Db, instance_ids: list[str], now: float, with_history: set[str]
    ) -> list[TurnWork]:
        where, args = self._in("instance_id", instance_ids)
        rows = {
            r[0]: instance_row(r)
            for r in db.execute(f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE {where}", args)
        }
        work = {iid: TurnWork(instance=rows.get(iid), instance_id=iid, messages=[]) for iid in instance_ids}
        for message_id, iid, event in db.execute(
            f"SELECT id, instance_id, event FROM inbox WHERE {where} AND visible_at <= ? ORDER BY id",
            [*args, now],
        ):
            work[iid].messages.append((message_id, Event.decode(event)))
        wanted = [iid for iid in instance_ids if iid in with_history]
        for iid in wanted:
            work[iid].history = []
        if wanted:
            where, args = self._in("instance_id", wanted)
            for iid, event in db.execute(
                f"SELECT instance_id, event FROM history WHERE {where} ORDER BY instance_id, seq", args
            ):
                history = work[iid].history
                assert history is not None
                history.append(Event.decode(event))
        return list(work.values())

    async def commit_turns(self, owner: str, commits: list[TurnCommit]) -> list[str]:
        return await self._write_assuming(self._commit_turns, owner, commits)

    def _commit_turns(self, db: Db, owner: str, commits: list[TurnCommit], assume: bool) -> list[str]:
        """Write the turns that still apply; returns the instances whose turns were refused as stale.

        ``assume``: every turn applies, as it nearly always does (see ``_write_assuming``).
        """
        # The rows are locked (in one order, so that two batches cannot deadlock) before
        # they are checked: a worker whose lease just expired and the one that took the
        # instance over cannot both find the history where they left it.
        ids = sorted({c.instance_id for c in commits})
        finished = sorted({o.task.id for c in commits for o in c.finished})  # an activity may run twice
        if assume and len(ids) == len(commits):
            found, deleted = self._expect_turns_apply(db, owner, commits, finished)
        else:
            # Both statements go before either answer is read: one round trip in a pipeline.
            locking = [
                db.execute(
                    "SELECT instance_id, history_length, lease_owner FROM instances "
                    f"WHERE {where} ORDER BY instance_id{self.row_lock_clause}",
                    args,
                )
                for where, args in (self._in("instance_id", chunk) for chunk in _chunks(ids))
            ]
            deleting = self._delete_locked_tasks(db, owner, finished)
            found = {r[0]: (r[1], r[2]) for cursor in locking for r in cursor.fetchall()}
            deleted = {r[0] for r in deleting.fetchall()} if deleting is not None else set()
        applied = [c for c in commits if self._commit_one(db, owner, c, found.get(c.instance_id), deleted)]
        self._apply_turns(db, owner, applied, found)
        kept = {id(c) for c in applied}
        stale = [c.instance_id for c in commits if id(c) not in kept]
        if any(_news_for_others(c) for c in applied):
            self._notify(db, [c.instance_id for c in applied if c.status_changed])
        return stale

    def _expect_turns_apply(
        self, db: Db, owner: str, commits: list[TurnCommit], finished: list[int]
    ) -> tuple[dict[str, tuple[int, str | None]], set[int]]:
        """What the careful path of ``_commit_turns`` reads, expected instead (and the tasks deleted).

        Every instance is where its turn found it and leased to ``owner``, and
        every finished task is still locked by ``owner``: the rows are locked,
        in key order, and counted.
        """
        lengths = {c.instance_id: c.expected_history_length for c in commits}
        counts: list[str] = []  # one statement checks all: each costs the client and the server
        args: list[Any] = []
        for chunk in _chunks(sorted(lengths)):
            where, where_args = self._in("instance_id", chunk)
            at, at_args = self._in(
                "instance_id || ':' || history_length", [f"{i}:{lengths[i]}" for i in chunk]
            )
            counts.append(
                f"(SELECT COUNT(*) = ? FROM (SELECT 1 FROM instances WHERE {where} AND {at} "
                f"AND lease_owner = ? ORDER BY instance_id{self.row_lock_clause}) AS leased)"
            )
            args += [len(chunk), *where_args, *at_args, owner]
        deletes = []
        for chunk in _chunks(finished):
            where, where_args = self._in("id", chunk)
            counts.append(
                f"(SELECT COUNT(*) = ? FROM (SELECT 1 FROM tasks WHERE {where} AND locked_by = ? "
                f"ORDER BY id{self.row_lock_clause}) AS locked)"
            )
            args += [len(chunk), *where_args, owner]
            deletes.append((where, where_args))
        db.expect(
            "SELECT " + " AND ".join(counts),
            args,
            "a turn's instance moved on or its lease passed to another worker, or a task's lock did",
        )
        for where, where_args in deletes:
            db.execute(f"DELETE FROM tasks WHERE {where}", where_args)
        return {iid: (length, owner) for iid, length in lengths.items()}, set(finished)

    def _commit_one(
        self, db: Db, owner: str, c: TurnCommit, found: tuple[int, str | None] | None, deleted: set[int]
    ) -> bool:
        """Whether a turn applies, given its instance's locked ``(history_length, lease_owner)``.

        ``deleted`` are the finished tasks of the batch still locked by ``owner``
        (and now deleted). A refused turn's results go to the inbox instead.
        """
        if found is None:
            return True  # purged while the turn ran (or never existed): its messages are dropped
        owned = {o.task.id: o for o in c.finished if o.task.id in deleted}
        if found[0] != c.expected_history_length or found[1] != owner:
            self._deliver(db, [owned[i] for i in sorted(owned)])
            return False
        if len(owned) < len({o.task.id for o in c.finished}):
            # A lock passed to another worker, which will deliver that result: this turn,
            # which applied it, is refused; the results still owned go to the inbox.
            self._deliver(db, [owned[i] for i in sorted(owned)])
            return False
        return True

    def _apply_turns(
        self, db: Db, owner: str, commits: list[TurnCommit], found: dict[str, tuple[int, str | None]]
    ) -> None:
        """Write the turns that apply: a few statements for the whole batch, whatever its size."""
        consumed = [message_id for c in commits for message_id in c.consumed]
        for chunk in _chunks(consumed):
            where, args = self._in("id", chunk)
            db.execute(f"DELETE FROM inbox WHERE {where}", args)
        live = [c for c in commits if c.instance_id in found]
        if not live:
            return
        resets = [(c.instance_id,) for c in live if c.reset_history]
        if resets:
            db.executemany("DELETE FROM history WHERE instance_id = ?", resets)
        base = {c.instance_id: 0 if c.reset_history else c.expected_history_length for c in live}
        history = [
            (c.instance_id, base[c.instance_id] + n, event.encode())
            for c in live
            for n, event in enumerate(c.new_events)
        ]
        if history:
            db.insert_rows("history", HISTORY_FIELDS, history)
        db.update_rows(
            "instances",
            "instance_id",
            TURN_ASSIGNMENTS,
            TURN_FIELDS,
            [
                (
                    c.instance_id,
                    c.status.value,
                    c.output,
                    json.dumps(c.failure) if c.failure else None,
                    c.custom_status,
                    c.last_updated_at,
                    base[c.instance_id] + len(c.new_events),
                    c.last_updated_at + self.lease_seconds,
                    # The owner holds the lease (checked under the row lock, or just
                    # given with a new row) and keeps it until the instance ends.
                    None if c.status.is_terminal else owner,
                    c.new_execution_id,
                    c.new_input,
                    c.workflow_name,
                )
                for c in live
            ],
        )
        ended = [c.instance_id for c in live if c.status.is_terminal or c.reset_history]
        for chunk in _chunks(ended):
            # Queued activities of a finished execution can never matter again.
            where, args = self._in("instance_id", chunk)
            db.execute(f"DELETE FROM tasks WHERE {where} AND locked_by IS NULL", args)
        terminal = [c.instance_id for c in live if c.status.is_terminal]
        for chunk in _chunks(terminal):
            where, args = self._in("instance_id", chunk)
            db.execute(f"DELETE FROM inbox WHERE {where}", args)
        self._insert_tasks(db, owner, [t for c in live for t in c.tasks])
        messages = [m for c in live for m in c.messages]
        for c in live:
            messages += self._children_of(db, c)
        if messages:
            db.insert_rows(
                "inbox", INBOX_FIELDS, [(m.instance_id, m.visible_at, m.event.encode()) for m in messages]
            )

    def _insert_tasks(self, db: Db, owner: str, tasks: list[NewTask]) -> None:
        """New activity tasks; those ``locked`` are locked by ``owner``, which gets their row ids.

        The ids are set once the transaction commits: the committing worker runs the
        locked tasks after that, and knows the rest by id.
        """
        if not tasks:
            return
        keys = [(t.instance_id, t.execution_id, t.task_id) for t in tasks]
        if len(set(keys)) != len(keys):
            raise RuntimeError("two new activity tasks share an instance, execution and task id")

        def set_ids(returned: list[Any]) -> None:
            ids = {(iid, execution_id, task_id): row_id for iid, execution_id, task_id, row_id in returned}
            for task, key in zip(tasks, keys, strict=True):
                task.id = ids[key]

        db.insert_rows(
            "tasks",
            TASK_FIELDS,
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
                    json.dumps(t.trace) if t.trace else None,
                    owner if t.locked else None,
                    t.visible_at + self.lease_seconds if t.locked else None,
                )
                for t in tasks
            ],
            returning="instance_id, execution_id, task_id, id",
            then=set_ids,
        )

    def _children_of(self, db: Db, c: TurnCommit) -> list[Message]:
        """The messages a turn's children need: their starts, or the parent's failures; terminations."""
        messages = []
        for child in c.children:
            if self._insert_instance(db, child.row):
                messages.append(Message(child.row.instance_id, child.start, child.start.timestamp))
            else:
                failure = child.failure_if_exists
                messages.append(Message(c.instance_id, failure, failure.timestamp))
        if c.terminate_children is not None:
            children = db.execute(
                "SELECT instance_id FROM instances WHERE parent_instance_id = ? "
                f"AND status NOT IN ({marks(TERMINAL)})",
                (c.instance_id, *TERMINAL),
            ).fetchall()
            for (child_id,) in children:
                event = Event(
                    Kind.TERMINATE_REQUESTED, c.last_updated_at, details={"reason": c.terminate_children}
                )
                messages.append(Message(child_id, event, c.last_updated_at))
        return messages

    async def release(self, owner: str, instance_ids: list[str]) -> None:
        if instance_ids:
            await self._write(self._release, owner, instance_ids)

    @staticmethod
    def _release(db: Db, owner: str, instance_ids: list[str]) -> None:
        db.execute(
            "UPDATE instances SET lease_owner = NULL WHERE lease_owner = ? "
            f"AND instance_id IN ({marks(instance_ids)})",
            [owner, *instance_ids],
        )

    async def release_all(self, owner: str) -> None:
        await self._write(self._release_all, owner)

    @staticmethod
    def _release_all(db: Db, owner: str) -> None:
        db.execute("UPDATE instances SET lease_owner = NULL WHERE lease_owner = ?", (owner,))
        db.execute("UPDATE tasks SET locked_by = NULL WHERE locked_by = ?", (owner,))

    async def heartbeat(self, owner: str, now: float, tasks: Collection[int]) -> None:
        await self._write(self._heartbeat, owner, now, list(tasks))

    def _heartbeat(self, db: Db, owner: str, now: float, tasks: list[int]) -> None:
        # Rows locked by a commit in progress are skipped (that commit extends its own
        # lease); waiting on them in whatever order the scan meets them could deadlock.
        until = now + self.lease_seconds
        db.execute(
            "UPDATE instances SET lease_expires = ? WHERE instance_id IN ("
            f"SELECT instance_id FROM instances WHERE lease_owner = ?{self.lock_clause})",
            (until, owner),
        )
        if tasks:
            db.execute(
                "UPDATE tasks SET locked_until = ? WHERE id IN ("
                f"SELECT id FROM tasks WHERE id IN ({marks(tasks)}) AND locked_by = ?{self.lock_clause})",
                (until, *tasks, owner),
            )

    # -- activity tasks ------------------------------------------------------------------

    async def claim_tasks(self, owner: str, now: float, limit: int) -> list[ActivityTask]:
        return await self._write(self._claim_tasks, owner, now, limit)

    def _claim_tasks(self, db: Db, owner: str, now: float, limit: int) -> list[ActivityTask]:
        rows = db.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE visible_at <= ? "
            "AND (locked_by IS NULL OR locked_until < ?) ORDER BY visible_at, id LIMIT ?"
            f"{self.lock_clause}",
            (now, now, limit),
        ).fetchall()
        if not rows:
            return []
        where, args = self._in("id", [r[0] for r in rows])
        db.execute(
            f"UPDATE tasks SET locked_by = ?, locked_until = ? WHERE {where}",
            [owner, now + self.lease_seconds, *args],
        )
        return [_task(r) for r in rows]

    async def finish_tasks(self, owner: str, outcomes: list[ActivityOutcome]) -> None:
        await self._write(self._finish_tasks, owner, outcomes)

    def _finish_tasks(self, db: Db, owner: str, outcomes: list[ActivityOutcome]) -> None:
        # A few statements for the whole batch, whatever its size: round trips are
        # what a remote database charges for.
        retries = [(o.retry_at, o.task.id, owner) for o in outcomes if o.retry_at is not None]
        if retries:
            db.executemany(
                "UPDATE tasks SET attempt = attempt + 1, visible_at = ?, locked_by = NULL "
                "WHERE id = ? AND locked_by = ?",
                retries,
            )
        done = {o.task.id: o for o in outcomes if o.retry_at is None}
        if not done:
            return
        # Deleting the task and delivering its result in one transaction: a result
        # is delivered once even though the activity may run twice. Tasks whose
        # lock passed to another worker are not deleted, so their results are not sent.
        deleting = self._delete_locked_tasks(db, owner, list(done))
        assert deleting is not None
        self._deliver(db, [done[r[0]] for r in sorted(deleting.fetchall())])

    def _delete_locked_tasks(self, db: Db, owner: str, ids: list[int]) -> Cursor | None:
        """Delete the tasks still locked by ``owner``; the cursor returns the ids deleted."""
        if not ids:
            return None
        where, args = self._in("id", ids)
        return db.execute(f"DELETE FROM tasks WHERE {where} AND locked_by = ? RETURNING id", [*args, owner])

    def _deliver(self, db: Db, outcomes: list[ActivityOutcome]) -> None:
        """Put finished tasks' results in their instances' inboxes."""
        messages = [(o.task.instance_id, o.message) for o in outcomes if o.message is not None]
        if messages:
            rows = [(iid, message.timestamp, message.encode()) for iid, message in messages]
            db.insert_rows("inbox", INBOX_FIELDS, rows)
            self._notify(db)

    async def next_due(self, now: float) -> float | None:
        return await self._read(self._next_due, now)

    @staticmethod
    def _next_due(db: Db, now: float) -> float | None:
        inbox = db.execute("SELECT MIN(visible_at) FROM inbox WHERE visible_at > ?", (now,)).fetchone()[0]
        tasks = db.execute(
            "SELECT MIN(visible_at) FROM tasks WHERE locked_by IS NULL AND visible_at > ?", (now,)
        ).fetchone()[0]
        due = [t for t in (inbox, tasks) if t is not None]
        return min(due) if due else None

    # -- declarative definitions ---------------------------------------------------------

    async def put_definition(self, definition: StoredDefinition) -> StoredDefinition:
        return await self._write(self._put_definition, definition)

    def _put_definition(self, db: Db, d: StoredDefinition) -> StoredDefinition:
        existing = self._get_definition(db, d.name, d.version)
        if existing is not None:
            if existing.document != d.document:
                raise DefinitionExists(d.name, d.version)
            return existing
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM definitions").fetchone()[0]
        db.execute(
            "INSERT INTO definitions (name, version, dialect, document, created_at, seq) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (d.name, d.version, d.dialect, d.document, d.created_at, seq),
        )
        return d

    async def get_definition(self, name: str, version: str | None) -> StoredDefinition | None:
        return await self._read(self._get_definition, name, version)

    @staticmethod
    def _get_definition(db: Db, name: str, version: str | None) -> StoredDefinition | None:
        columns = "name, version, dialect, document, created_at"
        if version is None:
            row = db.execute(
                f"SELECT {columns} FROM definitions WHERE name = ? ORDER BY seq DESC LIMIT 1", (name,)
            ).fetchone()
        else:
            row = db.execute(
                f"SELECT {columns} FROM definitions WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        return StoredDefinition(*row) if row else None

    async def list_definitions(self) -> list[StoredDefinition]:
        return await self._read(self._list_definitions)

    @staticmethod
    def _list_definitions(db: Db) -> list[StoredDefinition]:
        rows = db.execute(
            "SELECT name, version, dialect, document, created_at FROM definitions ORDER BY name, seq"
        ).fetchall()
        return [StoredDefinition(*row) for row in rows]


def _news_for_others(c: TurnCommit) -> bool:
    """Whether anyone but the committing worker can act on a turn, and so must be told of it.

    A step that only moves its instance on, with its next activities locked by
    the worker that runs them, is nobody else's business: telling every
    listener of it costs the server as much as half the step's statements do.
    """
    return bool(
        c.status_changed
        or c.messages
        or c.children
        or c.terminate_children is not None
        or any(not t.locked for t in c.tasks)
    )


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
