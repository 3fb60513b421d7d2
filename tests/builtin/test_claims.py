"""A worker claims instances with due messages by reading about as many messages as it claims.

The due messages are read oldest first through the index on ``visible_at``,
skipping those of instances another worker holds or this one already runs.
Grouping every due message by instance, as the store did before, read the
whole backlog on every claim: a cost that grew with the square of the backlog
as it drained.
"""

from __future__ import annotations

from typing import Any

import pytest
from dialects import is_postgres, numbers, with_default_sqlite_limits

from turnout import RuntimeStatus
from turnout_builtin._events import Event, Kind
from turnout_builtin._store import InstanceRow, Message

T0 = 1_000.0
BACKLOG = 300
DUE = 20_000  # below a few thousand rows, a never-analyzed table may be sorted whole: cheap at that size


def row(iid: str) -> InstanceRow:
    return InstanceRow(iid, "wf", RuntimeStatus.PENDING, f"{iid}-e1", T0, T0)


async def start(store: Any, iid: str, at: float, lease_to: str | None = None) -> None:
    await store.create_instance(
        row(iid), Event(Kind.WORKFLOW_STARTED, at, name="wf"), at, False, lease_to=lease_to
    )


async def raise_many(store: Any, iid: str, count: int) -> None:
    for n in range(count):
        event = Event(Kind.EVENT_RAISED, T0, name=f"e{n}", data="1")
        await store.enqueue(Message(iid, event, T0))


async def test_a_backlog_another_worker_holds_does_not_hide_the_next_free_instance(
    dialect_store: Any,
) -> None:
    await start(dialect_store, "held", T0, lease_to="other")  # a hot instance of another worker
    await raise_many(dialect_store, "held", BACKLOG)
    await start(dialect_store, "free", T0 + 1)
    assert await dialect_store.ready_instances("w", T0 + 2, 1, set()) == ["free"]


async def test_a_backlog_of_an_instance_this_worker_runs_does_not_hide_the_next(dialect_store: Any) -> None:
    await start(dialect_store, "running", T0)
    await raise_many(dialect_store, "running", BACKLOG)
    await start(dialect_store, "next", T0 + 1)
    assert await dialect_store.ready_instances("w", T0 + 2, 1, {"running"}) == ["next"]
    # Not excluded, the instance with the oldest message comes first, once however many it has
    # (a claim reads 4 messages per instance wanted: with 300 due, it comes alone, and its turn
    # takes all of them).
    assert await dialect_store.ready_instances("w", T0 + 2, 5, set()) == ["running"]
    assert await dialect_store.ready_instances("w", T0 + 2, 100, set()) == ["running", "next"]


async def test_messages_of_a_vanished_instance_are_claimed_to_be_dropped(dialect_store: Any) -> None:
    await start(dialect_store, "gone", T0)
    await dialect_store._write(lambda db: db.execute("DELETE FROM instances WHERE instance_id = 'gone'"))
    await start(dialect_store, "here", T0 + 1)
    assert await dialect_store.ready_instances("w", T0 + 2, 5, set()) == ["gone", "here"]
    [work] = await dialect_store.load_turns(["gone"], T0 + 2, set())
    assert work.instance is None and len(work.messages) == 1


@pytest.mark.parametrize("analyzed", [False, True], ids=["as-written", "analyzed"])
async def test_a_claim_reads_due_messages_through_their_index(dialect_store: Any, analyzed: bool) -> None:
    """With 20,000 messages due, the plan walks the index on ``visible_at`` and stops at the limit."""
    postgres = is_postgres(dialect_store)
    recorded: list[tuple[str, list[Any]]] = []

    def fill_and_explain(db: Any) -> list[str]:
        db.execute(
            "INSERT INTO instances (instance_id, workflow_name, status, execution_id, created_at, "
            f"last_updated_at) SELECT 'i' || n, 'wf', 'PENDING', 'e', 0, 0 FROM {numbers(DUE, dialect_store)}"
        )
        db.execute(
            "INSERT INTO inbox (instance_id, visible_at, event) SELECT instance_id, 1, '{}' FROM instances"
        )
        if analyzed:
            db.execute("ANALYZE")

        class Recording:
            def execute(self, sql: str, args: Any = ()) -> Any:
                recorded.append((sql, list(args)))
                return db.execute(sql, args)

        dialect_store._ready_instances(Recording(), "w", 10.0, 64, {"x"})
        sql, args = recorded[0]
        prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        return [str(r[-1]) for r in db.execute(prefix + sql, args).fetchall()]

    plan = "\n".join(await dialect_store._write(fill_and_explain))
    assert "inbox_by_visible" in plan, plan
    if postgres:
        assert "Limit" in plan and "Aggregate" not in plan and "Sort" not in plan, plan
    else:
        assert "GROUP BY" not in plan and "ORDER BY" not in plan, plan  # no temp B-tree: index order


async def test_more_instances_excluded_than_a_statement_can_name(dialect_store: Any) -> None:
    """Paused instances with buffered messages are excluded from every claim: there may be tens
    of thousands, more than SQLite takes parameters in one statement (32,766 in its default build)."""
    with_default_sqlite_limits(dialect_store)
    await start(dialect_store, "parked", T0)
    await raise_many(dialect_store, "parked", 5)
    await start(dialect_store, "free", T0 + 1)
    exclude = {"parked", *(f"p{n}" for n in range(40_000))}
    assert await dialect_store.ready_instances("w", T0 + 2, 10, exclude) == ["free"]
