"""The state-store conformance suite: the contract of the built-in engine's Store, per store.

Written once against ``turnout_builtin._store.Store``; every store type runs it.
state.sqlite (a file, and in memory) and state.postgresql (a fresh schema per
test in the machine's server).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import turnout
from turnout import RuntimeStatus as S
from turnout_builtin._events import Event, Kind
from turnout_builtin._sqlite import SqliteStore
from turnout_builtin._store import (
    ActivityOutcome,
    InstanceRow,
    Message,
    NewChild,
    NewTask,
    Store,
    StoredDefinition,
    TurnCommit,
)

T0 = 1_700_000_000.0
OWNER = "w1"

STORES = ["sqlite-file", "sqlite-memory", "postgresql"]


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    schema = None
    if request.param == "sqlite-file":
        made = SqliteStore(str(tmp_path / "state.db"))
    elif request.param == "sqlite-memory":
        made = SqliteStore(":memory:")
    else:
        from turnout_builtin._postgres import PostgresStore

        conninfo = request.getfixturevalue("postgres_conninfo")
        schema = f"test_{uuid.uuid4().hex[:12]}"
        made = PostgresStore(conninfo, schema=schema, max_connections=4)
    await made.open()
    await made.recover("test-owner")
    try:
        yield made
    finally:
        await made.close()
        if schema is not None:
            from turnout_builtin._postgres import drop_schema

            await drop_schema(conninfo, schema)


def row(iid: str, *, status: S = S.PENDING, created: float = T0, parent: str | None = None) -> InstanceRow:
    return InstanceRow(
        instance_id=iid,
        workflow_name="wf",
        status=status,
        execution_id=f"{iid}-e1",
        created_at=created,
        last_updated_at=created,
        parent_instance_id=parent,
        parent_task_id=0 if parent else None,
        parent_execution_id=f"{parent}-e1" if parent else None,
    )


def start(at: float = T0) -> Event:
    return Event(Kind.WORKFLOW_STARTED, at, name="wf", data='"in"')


async def create(store: Store, iid: str, **kw: object) -> InstanceRow:
    made = row(iid, **kw)  # type: ignore[arg-type]
    await store.create_instance(made, start(made.created_at), made.created_at, False)
    return made


def commit_for(
    iid: str, consumed: list[int], *, length: int = 0, status: S = S.RUNNING, **kw: object
) -> TurnCommit:
    return TurnCommit(
        instance_id=iid,
        expected_history_length=length,
        consumed=consumed,
        new_events=[Event(Kind.TURN_STARTED, T0 + 1), start()],
        status=status,
        last_updated_at=T0 + 1,
        **kw,  # type: ignore[arg-type]
    )


async def messages_of(store: Store, iid: str, now: float = T0 + 10_000) -> list[tuple[int, Event]]:
    """Lease the instance (as the engine does before a turn) and read its visible messages."""
    await store.ready_instances(OWNER, now, 100, set())
    [work] = await store.load_turns([iid], now, set())
    return work.messages


async def test_create_get_and_an_id_in_use(store: Store) -> None:
    await create(store, "a")
    got = await store.get_instance("a")
    assert got is not None and got.status is S.PENDING and got.input is None
    assert got.to_state().created_at.tzinfo is not None
    with pytest.raises(turnout.InstanceExists) as info:
        await create(store, "a")
    assert info.value.status == "PENDING"
    assert await store.get_instance("missing") is None


async def test_starts_and_reads_that_arrive_together_are_answered_each(store: Store) -> None:
    await create(store, "taken")
    ids = ["taken", *(f"i{n}" for n in range(600)), "i7"]  # more than one statement's worth
    outcomes = await asyncio.gather(*(create(store, iid) for iid in ids), return_exceptions=True)
    refused = [iid for iid, outcome in zip(ids, outcomes, strict=True) if isinstance(outcome, Exception)]
    assert refused == ["taken", "i7"]  # the id in use, and the second start of one id
    assert all(isinstance(o, turnout.InstanceExists) for o in outcomes if isinstance(o, Exception))
    rows = await asyncio.gather(*(store.get_instance(iid) for iid in [*ids, "missing"]))
    assert [r.instance_id if r else None for r in rows] == [*ids, None]
    assert len(await messages_of(store, "i599")) == 1


async def test_a_start_can_be_leased_to_the_worker_that_made_it(store: Store) -> None:
    made = row("a")
    message_id = await store.create_instance(made, start(), T0, False, lease_to="maker")
    assert await store.ready_instances("other", T0 + 1, 10, set()) == []  # the maker turns it
    [work] = await store.load_turns(["a"], T0 + 1, set())
    assert [m for m, _ in work.messages] == [message_id]
    # If the maker dies before the turn, its lease runs out and another worker claims the start.
    assert await store.ready_instances("other", T0 + 1 + store.lease_seconds, 10, set()) == ["a"]


def first_turn(iid: str) -> TurnCommit:
    """What a worker's first turn of ``iid`` commits: its opening events and one activity."""
    return commit_for(
        iid,
        [],
        tasks=[NewTask(iid, f"{iid}-e1", 1, "act", '"x"', None, T0 + 1, workflow_name="wf")],
    )


async def test_a_start_can_be_created_with_its_first_turn(store: Store) -> None:
    turns = [first_turn(f"t{n}") for n in range(3)]
    turns[0].tasks[0].locked = True  # the maker runs this one at once
    made = await asyncio.gather(
        *(
            store.create_instance(row(t.instance_id), start(), T0, False, lease_to="maker", first_turn=t)
            for t in turns
        ),
        store.create_instance(row("plain"), start(), T0, False),  # a start without its turn, beside them
    )
    assert made[:3] == [None, None, None] and isinstance(made[3], int)
    got = await store.get_instance("t0")
    assert got is not None and got.status is S.RUNNING and got.history_length == 2
    assert [e.kind for e in await store.load_history("t0")] == [Kind.TURN_STARTED, Kind.WORKFLOW_STARTED]
    # No start message waits in the inbox: the turn that would consume it is in.
    assert await store.ready_instances("other", T0 + 1 + store.lease_seconds, 10, set()) == ["plain"]
    assert turns[0].tasks[0].id is not None and all(t.tasks[0].id is not None for t in turns)
    # The locked task is the maker's; the others are there for any worker.
    claimed = await store.claim_tasks("other", T0 + 2, 10)
    assert sorted(t.instance_id for t in claimed) == ["t1", "t2"]


async def test_a_start_with_its_first_turn_refuses_an_id_in_use(store: Store) -> None:
    await create(store, "a")
    with pytest.raises(turnout.InstanceExists):
        await store.create_instance(
            row("a"), start(), T0, False, lease_to="maker", first_turn=first_turn("a")
        )
    assert await store.claim_tasks("other", T0 + 2, 10) == []  # nothing of the refused turn was written
    got = await store.get_instance("a")
    assert got is not None and got.status is S.PENDING and got.history_length == 0
    with pytest.raises(ValueError, match="lease_to"):
        await store.create_instance(row("b"), start(), T0, False, first_turn=first_turn("b"))


async def test_replace_only_finished_instances(store: Store) -> None:
    await create(store, "a")
    with pytest.raises(turnout.InstanceExists):
        await store.create_instance(row("a"), start(), T0, True)
    [(mid, _)] = await messages_of(store, "a")
    assert await store.commit_turns(OWNER, [commit_for("a", [mid], status=S.COMPLETED)]) == []
    await store.create_instance(row("a", created=T0 + 5), start(), T0 + 5, True)
    replaced = await store.get_instance("a")
    assert replaced is not None and replaced.status is S.PENDING and replaced.history_length == 0
    assert await store.load_history("a") == []


async def test_messages_become_visible_at_their_time(store: Store) -> None:
    await create(store, "now")
    await store.create_instance(row("later"), start(T0 + 60), T0 + 60, False)
    assert await store.ready_instances(OWNER, T0, 10, set()) == ["now"]
    assert await store.ready_instances(OWNER, T0 + 60, 10, set()) == ["now", "later"]
    assert await store.ready_instances(OWNER, T0 + 60, 10, {"now"}) == ["later"]
    assert await store.ready_instances(OWNER, T0 + 60, 1, set()) == ["now"]
    assert await store.next_due(T0) == T0 + 60
    assert await store.next_due(T0 + 60) is None


async def test_enqueue_checks_the_instance(store: Store) -> None:
    with pytest.raises(turnout.InstanceNotFound):
        await store.enqueue(Message("ghost", Event(Kind.EVENT_RAISED, T0, name="x"), T0))
    await create(store, "a")
    await store.enqueue(Message("a", Event(Kind.EVENT_RAISED, T0, name="x"), T0))
    assert [e.kind for _, e in await messages_of(store, "a")] == [Kind.WORKFLOW_STARTED, Kind.EVENT_RAISED]
    ids = [m for m, _ in await messages_of(store, "a")]
    await store.commit_turns(OWNER, [commit_for("a", ids, status=S.FAILED)])
    with pytest.raises(turnout.InvalidState, match="has finished"):
        await store.enqueue(Message("a", Event(Kind.EVENT_RAISED, T0, name="x"), T0))


async def test_a_turn_commits_history_status_inbox_and_outgoing_work_together(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    timer = Event(Kind.TIMER_FIRED, T0 + 30, task_id=1, execution_id="a-e1")
    commit = commit_for(
        "a",
        [mid],
        custom_status='"busy"',
        tasks=[NewTask("a", "a-e1", 0, "act", '"x"', None, T0 + 1, "wf")],
        messages=[Message("a", timer, T0 + 30)],
    )
    assert await store.commit_turns(OWNER, [commit]) == []
    got = await store.get_instance("a")
    assert got is not None and got.status is S.RUNNING and got.history_length == 2
    assert got.custom_status == '"busy"'
    assert [e.kind for e in await store.load_history("a")] == [Kind.TURN_STARTED, Kind.WORKFLOW_STARTED]
    assert await messages_of(store, "a", T0 + 1) == []
    assert [e.kind for _, e in await messages_of(store, "a", T0 + 30)] == [Kind.TIMER_FIRED]
    [task] = await store.claim_tasks("w1", T0 + 1, 10)
    assert (task.name, task.input, task.attempt, task.workflow_name) == ("act", '"x"', 1, "wf")


async def test_a_stale_turn_is_refused_and_changes_nothing(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    stale = await store.commit_turns(OWNER, [commit_for("a", [mid], length=5)])
    assert stale == ["a"]
    got = await store.get_instance("a")
    assert got is not None and got.status is S.PENDING and got.history_length == 0
    assert len(await messages_of(store, "a")) == 1


async def test_a_batch_of_turns_is_one_transaction(store: Store) -> None:
    for iid in ("a", "b"):
        await create(store, iid)
    commits = [commit_for(iid, [m for m, _ in await messages_of(store, iid)]) for iid in ("a", "b")]
    # A task without a name breaks a NOT NULL constraint inside the batch: all of it must roll back.
    commits[1].tasks = [NewTask("b", "b-e1", 0, None, None, None, T0, "wf")]  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - each dialect raises its own integrity error
        await store.commit_turns(OWNER, commits)
    for iid in ("a", "b"):
        got = await store.get_instance(iid)
        assert got is not None and got.history_length == 0, "a failed batch left part of its turns"


async def test_children_are_created_once_and_a_taken_id_fails_the_parent(store: Store) -> None:
    await create(store, "p")
    await create(store, "taken")
    [(mid, _)] = await messages_of(store, "p")
    failure = Event(Kind.CHILD_FAILED, T0 + 1, task_id=1, execution_id="p-e1")
    children = [
        NewChild(row("p:0000", parent="p"), start(T0 + 1), failure),
        NewChild(row("taken", parent="p"), start(T0 + 1), failure),
    ]
    await store.commit_turns(OWNER, [commit_for("p", [mid], children=children)])
    child = await store.get_instance("p:0000")
    assert child is not None and child.parent_instance_id == "p"
    assert [e.kind for _, e in await messages_of(store, "p:0000")] == [Kind.WORKFLOW_STARTED]
    assert [e.kind for _, e in await messages_of(store, "p")] == [Kind.CHILD_FAILED]


async def test_terminating_children_and_purging_families(store: Store) -> None:
    await create(store, "p")
    await create(store, "p:0000", parent="p")
    await create(store, "p:0000:0000", parent="p:0000")
    with pytest.raises(turnout.InvalidState, match="terminate it first"):
        await store.purge("p")
    [(mid, _)] = await messages_of(store, "p")
    await store.commit_turns(OWNER, [commit_for("p", [mid], status=S.TERMINATED, terminate_children="stop")])
    kinds = [e.kind for _, e in await messages_of(store, "p:0000")]
    assert kinds == [Kind.WORKFLOW_STARTED, Kind.TERMINATE_REQUESTED]
    assert await messages_of(store, "p") == []  # a finished instance keeps no inbox
    assert sorted(await store.purge("p")) == ["p", "p:0000", "p:0000:0000"]
    for iid in ("p", "p:0000", "p:0000:0000"):
        assert await store.get_instance(iid) is None
    with pytest.raises(turnout.InstanceNotFound):
        await store.purge("p")


async def test_tasks_are_claimed_once_and_results_delivered_once(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    tasks = [NewTask("a", "a-e1", n, "act", None, None, T0 + 1, "wf") for n in range(3)]
    await store.commit_turns(OWNER, [commit_for("a", [mid], tasks=tasks)])
    first = await store.claim_tasks("w1", T0 + 1, 2)
    second = await store.claim_tasks("w2", T0 + 1, 10)
    assert len(first) == 2 and len(second) == 1
    assert {t.task_id for t in first + second} == {0, 1, 2}
    assert await store.claim_tasks("w3", T0 + 1, 10) == []
    done = Event(Kind.TASK_COMPLETED, T0 + 2, task_id=0, data="1", execution_id="a-e1")
    outcome = ActivityOutcome(first[0], message=done)
    await store.finish_tasks(OWNER, [outcome])
    await store.finish_tasks(OWNER, [outcome])  # the same task finished twice (a re-run)
    assert [e.task_id for _, e in await messages_of(store, "a")] == [0]


async def test_a_retry_releases_the_task_until_its_time(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    await store.commit_turns(
        OWNER, [commit_for("a", [mid], tasks=[NewTask("a", "a-e1", 0, "act", None, None, T0, "wf")])]
    )
    [task] = await store.claim_tasks("w1", T0, 10)
    await store.finish_tasks(OWNER, [ActivityOutcome(task, retry_at=T0 + 5)])
    assert await store.claim_tasks("w1", T0 + 4, 10) == []
    assert await store.next_due(T0 + 4) == T0 + 5
    [again] = await store.claim_tasks("w1", T0 + 5, 10)
    assert again.attempt == 2 and again.first_attempt_at == T0


async def test_task_locks_of_dead_workers_expire(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    task = NewTask("a", "a-e1", 0, "act", None, None, T0, "wf")
    await store.commit_turns(OWNER, [commit_for("a", [mid], tasks=[task])])
    [claimed] = await store.claim_tasks("dead", T0, 10)
    assert await store.claim_tasks("other", T0 + 1, 10) == []
    await store.heartbeat("dead", T0 + 1, [claimed.id])  # a live worker keeps its lock
    assert await store.claim_tasks("other", T0 + store.lease_seconds, 10) == []
    [again] = await store.claim_tasks("other", T0 + 2 + store.lease_seconds, 10)
    assert again.id == claimed.id
    # The dead worker's late result is refused: the other one delivers it.
    late = Event(Kind.TASK_COMPLETED, T0, task_id=0, data="1", execution_id="a-e1")
    await store.finish_tasks("dead", [ActivityOutcome(claimed, message=late)])
    await store.finish_tasks("other", [ActivityOutcome(again, message=late)])
    assert [e.task_id for _, e in await messages_of(store, "a", T0 + 10**10)] == [0]


async def test_a_heartbeat_renews_only_the_tasks_it_names(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    tasks = [NewTask("a", "a-e1", n, "act", None, None, T0, "wf", locked=True) for n in range(2)]
    await store.commit_turns(OWNER, [commit_for("a", [mid], tasks=tasks)])
    running, forgotten = tasks  # the worker runs the first; it lost track of the second
    assert running.id is not None and forgotten.id is not None
    await store.heartbeat(OWNER, T0 + store.lease_seconds - 1, [running.id])
    [again] = await store.claim_tasks("other", T0 + 2 + store.lease_seconds, 10)
    assert again.id == forgotten.id


async def _turn_with_a_task(store: Store, iid: str) -> tuple[NewTask, Event]:
    """An instance whose first turn scheduled one task, locked by OWNER; and that task's result."""
    await create(store, iid)
    [(mid, _)] = await messages_of(store, iid)
    task = NewTask(iid, f"{iid}-e1", 0, "act", None, None, T0 + 1, "wf", locked=True)
    assert await store.commit_turns(OWNER, [commit_for(iid, [mid], tasks=[task])]) == []
    return task, Event(Kind.TASK_COMPLETED, T0 + 2, task_id=0, data="1", execution_id=f"{iid}-e1")


async def test_a_turn_applies_its_own_results_and_deletes_their_tasks(store: Store) -> None:
    task, done = await _turn_with_a_task(store, "a")
    turn = commit_for("a", [], length=2, finished=[ActivityOutcome(task.claimed(), message=done)])
    turn.new_events = [done]
    assert await store.commit_turns(OWNER, [turn]) == []
    assert [e.kind for e in await store.load_history("a")][-1] is Kind.TASK_COMPLETED
    assert await messages_of(store, "a") == []  # the result did not go through the inbox
    assert await store.claim_tasks("other", T0 + 10**6, 10) == []  # the task is gone
    # Finishing it again (an activity run twice) delivers nothing.
    await store.finish_tasks(OWNER, [ActivityOutcome(task.claimed(), message=done)])
    assert await messages_of(store, "a") == []


async def test_a_stale_turn_sends_its_results_through_the_inbox(store: Store) -> None:
    task, done = await _turn_with_a_task(store, "a")
    turn = commit_for("a", [], length=7, finished=[ActivityOutcome(task.claimed(), message=done)])
    turn.new_events = [done]
    assert await store.commit_turns(OWNER, [turn]) == ["a"]
    assert len(await store.load_history("a")) == 2  # nothing of the turn
    assert [(e.kind, e.task_id) for _, e in await messages_of(store, "a")] == [(Kind.TASK_COMPLETED, 0)]
    assert await store.claim_tasks("other", T0 + 10**6, 10) == []


async def test_a_turn_with_a_result_whose_lock_was_lost_is_refused(store: Store) -> None:
    task, done = await _turn_with_a_task(store, "a")
    # OWNER's lock expired and another worker claimed the task: that worker delivers the result.
    [theirs] = await store.claim_tasks("other", T0 + 2 + store.lease_seconds, 10)
    turn = commit_for("a", [], length=2, finished=[ActivityOutcome(task.claimed(), message=done)])
    turn.new_events = [done]
    assert await store.commit_turns(OWNER, [turn]) == ["a"]
    assert len(await store.load_history("a")) == 2
    assert await messages_of(store, "a") == []
    await store.finish_tasks("other", [ActivityOutcome(theirs, message=done)])
    assert [e.task_id for _, e in await messages_of(store, "a")] == [0]


async def test_a_refused_turn_delivers_a_result_run_twice_once(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    tasks = [NewTask("a", "a-e1", n, "act", None, None, T0 + 1, "wf", locked=True) for n in range(2)]
    await store.commit_turns(OWNER, [commit_for("a", [mid], tasks=tasks)])
    lost, ours = tasks
    [theirs] = await store.claim_tasks("other", T0 + 2 + store.lease_seconds, 1)  # one lock lapsed
    assert theirs.id == lost.id  # the oldest first
    results = [
        ActivityOutcome(task.claimed(), message=Event(Kind.TASK_COMPLETED, T0 + 2, task_id=task.task_id))
        for task in (ours, ours, lost)  # ours ran twice here
    ]
    turn = commit_for("a", [], length=2, finished=results)
    assert await store.commit_turns(OWNER, [turn]) == ["a"]
    assert [e.task_id for _, e in await messages_of(store, "a")] == [ours.task_id]


async def test_instances_are_leased_to_one_worker_at_a_time(store: Store) -> None:
    await create(store, "a")
    assert await store.ready_instances("w1", T0, 10, set()) == ["a"]
    assert await store.ready_instances("w2", T0, 10, set()) == []
    assert await store.ready_instances("w1", T0, 10, set()) == ["a"]  # its owner keeps it
    [work] = await store.load_turns(["a"], T0, set())
    mid = work.messages[0][0]
    assert await store.commit_turns("w2", [commit_for("a", [mid])]) == ["a"]  # not the owner: stale
    expired = T0 + 2 + store.lease_seconds
    assert await store.ready_instances("w2", expired, 10, set()) == ["a"]
    assert await store.commit_turns("w1", [commit_for("a", [mid])]) == ["a"]  # lost its lease
    await store.release("w2", ["a"])
    assert await store.ready_instances("w3", expired, 10, set()) == ["a"]


async def test_list_filters_and_pages_newest_first(store: Store) -> None:
    for n in range(5):
        await create(store, f"i{n}", created=T0 + n)
    rows, token = await store.list_instances(turnout.ListQuery(limit=2))
    assert [r.instance_id for r in rows] == ["i4", "i3"] and token
    rows2, token2 = await store.list_instances(turnout.ListQuery(limit=2, page_token=token))
    assert [r.instance_id for r in rows2] == ["i2", "i1"] and token2
    rows3, token3 = await store.list_instances(turnout.ListQuery(limit=2, page_token=token2))
    assert [r.instance_id for r in rows3] == ["i0"] and token3 is None
    rows4, _ = await store.list_instances(turnout.ListQuery(status=[S.COMPLETED]))
    assert rows4 == []
    rows5, _ = await store.list_instances(turnout.ListQuery(workflow_name="other"))
    assert rows5 == []


async def test_continue_as_new_resets_the_history(store: Store) -> None:
    await create(store, "a")
    [(mid, _)] = await messages_of(store, "a")
    await store.commit_turns(OWNER, [commit_for("a", [mid])])
    await store.enqueue(Message("a", Event(Kind.EVENT_RAISED, T0 + 2, name="x"), T0 + 2))
    [(mid2, _)] = await messages_of(store, "a")
    reset = commit_for(
        "a",
        [mid2],
        length=2,
        reset_history=True,
        new_execution_id="a-e2",
        new_input='"next"',
        messages=[Message("a", start(T0 + 3), T0 + 3)],
    )
    reset.new_events = []
    await store.commit_turns(OWNER, [reset])
    got = await store.get_instance("a")
    assert (
        got is not None and got.history_length == 0 and got.execution_id == "a-e2" and got.input == '"next"'
    )
    assert await store.load_history("a") == []


# Text a store must keep byte for byte, whatever it sends rows in: quotes, escapes, a NUL-free
# control character, line separators JSON treats specially, and characters beyond the BMP.
AWKWARD = '{"s": "it\'s \\"quoted\\" \\\\ back\\nslash\\t\u0001 \u2028\u2029 é 中 🐢"}'
EXACT = 1_764_215_000.123_456_7  # a timestamp that only a lossless float round trip keeps


async def test_values_come_back_exactly(store: Store) -> None:
    made = row("a")
    made.input = AWKWARD
    made.created_at = made.last_updated_at = EXACT
    await store.create_instance(made, start(EXACT), EXACT, False)
    [(mid, _)] = await messages_of(store, "a", EXACT)
    commit = commit_for(
        "a",
        [mid],
        custom_status=AWKWARD,
        tasks=[NewTask("a", "a-e1", 0, "act", AWKWARD, None, EXACT, "wf")],
        messages=[Message("a", Event(Kind.EVENT_RAISED, EXACT, name="x", data=AWKWARD), EXACT)],
    )
    commit.new_events = [Event(Kind.WORKFLOW_STARTED, EXACT, name="wf", data=AWKWARD)]
    commit.last_updated_at = EXACT
    assert await store.commit_turns(OWNER, [commit]) == []
    got = await store.get_instance("a")
    assert got is not None
    assert (got.input, got.custom_status) == (AWKWARD, AWKWARD)
    assert (got.created_at, got.last_updated_at) == (EXACT, EXACT)
    [event] = await store.load_history("a")
    assert (event.data, event.timestamp) == (AWKWARD, EXACT)
    [task] = await store.claim_tasks("w1", EXACT, 10)
    assert task.input == AWKWARD and task.first_attempt_at == EXACT
    [(_, raised)] = await messages_of(store, "a", EXACT)
    assert (raised.data, raised.timestamp) == (AWKWARD, EXACT)
    done = commit_for("a", [], length=1, status=S.FAILED, output=AWKWARD, failure={"message": AWKWARD})
    assert await store.commit_turns(OWNER, [done]) == []
    got = await store.get_instance("a")
    assert got is not None and (got.output, got.failure) == (AWKWARD, {"message": AWKWARD})


async def test_a_turn_keeps_the_input_unless_a_new_execution_brings_one(store: Store) -> None:
    made = row("a")
    made.input = '"first"'
    await store.create_instance(made, start(), T0, False)
    [(mid, _)] = await messages_of(store, "a")
    await store.commit_turns(OWNER, [commit_for("a", [mid], custom_status='"s"')])
    got = await store.get_instance("a")
    assert got is not None and (got.input, got.execution_id, got.workflow_name) == ('"first"', "a-e1", "wf")
    await store.enqueue(Message("a", Event(Kind.EVENT_RAISED, T0 + 2, name="x"), T0 + 2))
    [(mid2, _)] = await messages_of(store, "a")
    # Continued as new without input: the new execution's input is none, not the old one.
    reset = commit_for("a", [mid2], length=2, reset_history=True, new_execution_id="a-e2", new_input=None)
    reset.new_events = []
    assert await store.commit_turns(OWNER, [reset]) == []
    got = await store.get_instance("a")
    assert got is not None and (got.input, got.execution_id, got.custom_status) == (None, "a-e2", None)


async def test_definitions_are_versioned_and_immutable(store: Store) -> None:
    first = StoredDefinition("orders", "1.0.0", "1.0", "document: one", T0)
    assert await store.put_definition(first) == first
    # The same version with the same document again: a no-op that keeps the first time.
    again = StoredDefinition("orders", "1.0.0", "1.0", "document: one", T0 + 5)
    assert (await store.put_definition(again)).created_at == T0
    with pytest.raises(turnout.DefinitionExists, match=r"'orders' version '1\.0\.0' is stored already"):
        await store.put_definition(StoredDefinition("orders", "1.0.0", "1.0", "document: changed", T0))
    # "Latest" is the version stored last, not the greatest string ("0.9" after "1.0.0").
    await store.put_definition(StoredDefinition("orders", "0.9", "0.8", "id: orders", T0 + 1))
    await store.put_definition(StoredDefinition("billing", "2", "1.0", "document: b", T0 + 2))
    latest = await store.get_definition("orders", None)
    assert latest is not None and latest.version == "0.9" and latest.dialect == "0.8"
    named = await store.get_definition("orders", "1.0.0")
    assert named is not None and named.document == "document: one"
    assert await store.get_definition("orders", "3") is None
    assert await store.get_definition("nobody", None) is None
    listed = [(d.name, d.version) for d in await store.list_definitions()]
    assert listed == [("billing", "2"), ("orders", "1.0.0"), ("orders", "0.9")]
