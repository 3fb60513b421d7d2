"""A step's transaction is written on what it assumes, and checked where it runs.

A turn nearly always finds its instance where it left it, leased to its
worker, and its finished tasks still locked; a start nearly always finds its
id free. The store writes that case without reading first (``Db.expect``): on
PostgreSQL the check runs on the server and the whole transaction goes in one
round trip. When an assumption is false the transaction rolls back and the
careful path (read, then decide) runs; the store conformance suite checks
that every refusal still comes out right.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from psycopg import pq

from turnout import RuntimeStatus
from turnout_builtin._events import Event, Kind
from turnout_builtin._sql import AssumptionFailed
from turnout_builtin._store import ActivityOutcome, InstanceRow, NewTask, TurnCommit

COLUMNS = ("name", "version", "dialect", "document", "created_at", "seq")
T0 = 1_000.0
OWNER = "w1"


async def names(store: Any) -> list[str]:
    return sorted(d.name for d in await store.list_definitions())


def definition(name: str) -> tuple[Any, ...]:
    return (name, "1", "d", "x", 0.0, 1)


async def test_a_false_expectation_rolls_back_what_the_transaction_wrote(dialect_store: Any) -> None:
    def write(db: Any, count: int) -> None:
        db.insert_rows("definitions", COLUMNS, [definition("a")])
        db.expect("SELECT COUNT(*) = ? FROM definitions", [count], "the definitions counted")

    with pytest.raises(AssumptionFailed, match="the definitions counted"):
        await dialect_store._write(write, 2)
    assert await names(dialect_store) == []
    await dialect_store._write(write, 1)
    assert await names(dialect_store) == ["a"]


async def test_rows_expected_to_be_inserted_all_are_or_none(dialect_store: Any) -> None:
    def insert(db: Any, rows: list[tuple[Any, ...]]) -> None:
        db.insert_rows("definitions", COLUMNS, rows, skip_conflicts=True, expect_all="the names are free")

    await dialect_store._write(insert, [definition("a")])
    with pytest.raises(AssumptionFailed, match="the names are free"):
        await dialect_store._write(insert, [definition("b"), definition("a")])
    assert await names(dialect_store) == ["a"]  # not b: the transaction rolled back
    with pytest.raises(ValueError, match="returns none"):
        await dialect_store._write(
            lambda db: db.insert_rows(
                "definitions", COLUMNS, [definition("c")], returning="name", expect_all="free"
            )
        )


def first_turn(iid: str) -> TurnCommit:
    """A worker's first turn: the opening events and one activity, locked to run at once."""
    task = NewTask(iid, f"{iid}-e1", 0, "act", None, None, T0, workflow_name="wf", locked=True)
    return TurnCommit(
        instance_id=iid,
        expected_history_length=0,
        consumed=[],
        new_events=[Event(Kind.TURN_STARTED, T0), Event(Kind.WORKFLOW_STARTED, T0, name="wf")],
        status=RuntimeStatus.RUNNING,
        last_updated_at=T0,
        tasks=[task],
    )


def result_turn(first: TurnCommit, length: int) -> TurnCommit:
    """The next turn: it applies the activity's result, which the same worker just got."""
    task = first.tasks[0]
    done = Event(Kind.TASK_COMPLETED, T0 + 1, task_id=0, data="1", execution_id=task.execution_id)
    return TurnCommit(
        instance_id=first.instance_id,
        expected_history_length=length,
        consumed=[],
        new_events=[done],
        status=RuntimeStatus.RUNNING,
        last_updated_at=T0 + 1,
        finished=[ActivityOutcome(task.claimed(), message=done)],
    )


def row(iid: str) -> InstanceRow:
    return InstanceRow(
        instance_id=iid,
        workflow_name="wf",
        status=RuntimeStatus.PENDING,
        execution_id=f"{iid}-e1",
        created_at=T0,
        last_updated_at=T0,
    )


@pytest.fixture
def answers_read_mid_transaction(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every answer psycopg is asked for while a pipeline is open: each one is a round trip."""
    read: list[str] = []
    for name in ("fetchone", "fetchall", "fetchmany"):
        original = getattr(psycopg.Cursor, name)

        def fetch(cursor: Any, *args: Any, _original: Any = original, _name: str = name) -> Any:
            if cursor.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
                read.append(_name)
            return _original(cursor, *args)

        monkeypatch.setattr(psycopg.Cursor, name, fetch)
    return read


async def test_a_start_and_a_step_read_nothing_before_commit(
    pg_store: Any, answers_read_mid_transaction: list[str]
) -> None:
    first = first_turn("a")
    start = Event(Kind.WORKFLOW_STARTED, T0, name="wf")
    made = await pg_store.create_instance(row("a"), start, T0, False, lease_to=OWNER, first_turn=first)
    assert made is None  # no start message: the first turn is in
    assert answers_read_mid_transaction == []
    assert await pg_store.commit_turns(OWNER, [result_turn(first, 2)]) == []
    assert answers_read_mid_transaction == []
    got = await pg_store.get_instance("a")
    assert got is not None and got.history_length == 3
    assert await pg_store.claim_tasks("other", T0 + 10**6, 10) == []  # the finished task is gone

    # The careful path reads the locked rows first: the probe above sees it.
    assert await pg_store.commit_turns(OWNER, [result_turn(first, 2)]) == ["a"]  # stale now
    assert answers_read_mid_transaction != []


async def test_a_turn_waits_for_the_row_lock_and_checks_the_row_it_then_finds(
    pg_store: Any, postgres_conninfo: str
) -> None:
    """Another transaction holds the instance's row and moves its history on: the turn, written
    on the history it found before, waits for the lock, sees the new row, and is refused.

    Checked without the lock, the turn would pass on the old row and then overwrite the new one.
    """
    first = first_turn("a")
    start = Event(Kind.WORKFLOW_STARTED, T0, name="wf")
    await pg_store.create_instance(row("a"), start, T0, False, lease_to=OWNER, first_turn=first)
    with psycopg.connect(postgres_conninfo) as other:
        other.execute(f"UPDATE {pg_store.schema}.instances SET history_length = 5 WHERE instance_id = 'a'")
        turn = asyncio.create_task(pg_store.commit_turns(OWNER, [result_turn(first, 2)]))
        with psycopg.connect(postgres_conninfo, autocommit=True) as watch:
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            deadline = time.monotonic() + 30
            while watch.execute(waiting, (other.info.backend_pid,)).fetchone() != (1,):
                assert time.monotonic() < deadline, "the turn never waited for the row lock"
                assert not turn.done(), "the turn did not wait for the row lock"
                await asyncio.sleep(0.01)
        other.commit()
    assert await turn == ["a"]
    got = await pg_store.get_instance("a")
    assert got is not None and got.history_length == 5
    # Refused, the turn delivered its result through the inbox, as the careful path does.
    assert await pg_store.claim_tasks("other", T0 + 10**6, 10) == []
    assert await pg_store.ready_instances(OWNER, T0 + 10, 10, set()) == ["a"]
    [work] = await pg_store.load_turns(["a"], T0 + 10, set())
    assert [(e.kind, e.task_id) for _, e in work.messages] == [(Kind.TASK_COMPLETED, 0)]
