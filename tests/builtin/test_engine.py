"""The built-in engine end to end on SQLite: every management operation and authoring feature."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout import RuntimeStatus as S

wf = turnout.Workflows()
ATTEMPTS: dict[str, list[int]] = {}


@wf.activity
def add(ctx: turnout.ActivityContext, x: int) -> int:
    return x + 1


@wf.activity
def flaky(ctx: turnout.ActivityContext, key: str) -> int:
    """Fails on its first two attempts."""
    ATTEMPTS.setdefault(key, []).append(ctx.attempt)
    if ctx.attempt < 3:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return ctx.attempt


@wf.activity
async def async_add(ctx: turnout.ActivityContext, x: int) -> int:
    await asyncio.sleep(0)
    return x + 10


@wf.workflow
def with_retry(ctx: turnout.WorkflowContext, key: str) -> Any:
    policy = turnout.RetryPolicy(max_attempts=3, first_retry_interval=timedelta(milliseconds=10))
    return (yield ctx.call_activity(flaky, input=key, retry=policy))


@wf.workflow
def retry_exhausted(ctx: turnout.WorkflowContext, key: str) -> Any:
    policy = turnout.RetryPolicy(max_attempts=2, first_retry_interval=timedelta(milliseconds=10))
    return (yield ctx.call_activity(flaky, input=key, retry=policy))


@wf.workflow
def child(ctx: turnout.WorkflowContext, x: int) -> Any:
    if x < 0:
        raise ValueError("negative input")
    y = yield ctx.call_activity(async_add, input=x)
    return y


@wf.workflow
def parent(ctx: turnout.WorkflowContext, x: int) -> Any:
    a = yield ctx.call_child_workflow(child, input=x)
    try:
        yield ctx.call_child_workflow(child, input=-1, instance_id=f"{ctx.instance_id}-bad")
    except turnout.TaskFailedError as exc:
        return {"a": a, "error": exc.failure.message}
    return {"a": a}


@wf.workflow
def waiter(ctx: turnout.WorkflowContext) -> Any:
    first = yield ctx.wait_for_external_event("go")
    second = yield ctx.wait_for_external_event("go")
    return [first, second]


@wf.workflow
def parent_of_waiter(ctx: turnout.WorkflowContext) -> Any:
    return (yield ctx.call_child_workflow(waiter))


@wf.workflow
def counter(ctx: turnout.WorkflowContext, n: int) -> Any:
    if n < 3:
        yield ctx.call_activity(add, input=n)
        ctx.continue_as_new(n + 1)
        return None
    event = yield ctx.wait_for_external_event("done")
    return {"n": n, "event": event}


@wf.workflow
def cancellable(ctx: turnout.WorkflowContext) -> Any:
    try:
        yield ctx.create_timer(timedelta(hours=1))
    except turnout.WorkflowCancelled:
        undone = yield ctx.call_activity(add, input=-1)
        ctx.set_custom_status({"compensated": undone})
        raise
    return "finished"


@wf.workflow
def calls_unknown_activity(ctx: turnout.WorkflowContext) -> Any:
    return (yield ctx.call_activity("not_registered"))


@wf.workflow
def quick(ctx: turnout.WorkflowContext, x: Any) -> Any:
    return x


POSTGRES_COMPONENTS = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: pg}}
spec:
  type: state.postgresql
  version: v1
  metadata:
  - {{name: connectionString, value: "{conninfo}"}}
  - {{name: schema, value: {schema}}}
  - {{name: leaseDurationInSeconds, value: "5"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: dapr}}
spec:
  type: workflow.builtin
  version: v1
  metadata:
  - {{name: stateStore, value: pg}}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[turnout.AsyncWorkflowClient]:
    """The built-in engine on each of its stores."""
    if request.param == "sqlite":
        async with turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path) as rt:
            yield rt.client()
        return
    from turnout_builtin._postgres import drop_schema

    conninfo = request.getfixturevalue("postgres_conninfo")
    schema = f"engine_{uuid.uuid4().hex[:12]}"
    resources = tmp_path / "components.yaml"
    resources.write_text(POSTGRES_COMPONENTS.format(conninfo=conninfo, schema=schema))
    try:
        async with turnout.AsyncRuntime(resources, workflows=wf, working_dir=tmp_path) as rt:
            yield rt.client()
    finally:
        await drop_schema(conninfo, schema)


@wf.workflow
def three_adds(ctx: turnout.WorkflowContext, x: int) -> Any:
    for _ in range(3):
        x = yield ctx.call_activity(add, input=x)
    return x


async def test_each_step_is_one_transaction(
    client: turnout.AsyncWorkflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start's first turn is run by the process that made it and committed with the new
    row, and each activity's result is applied by the worker that ran it, in the commit that
    deletes its task: a start and three steps are four transactions."""
    store = client.component.engine.store  # type: ignore[attr-defined]
    calls: dict[str, int] = {}

    def counted(name: str) -> Any:
        method = getattr(store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return await method(*args, **kwargs)

        return call

    for name in ("create_instance", "commit_turns", "finish_tasks"):
        monkeypatch.setattr(store, name, counted(name))
    iid = await client.start(three_adds, 0)
    assert (await store.get_instance(iid)).history_length > 1  # the first turn is in already
    state = await client.wait(iid, timeout=10)
    assert state.output == 3
    assert calls.get("create_instance") == 1  # with the first turn
    assert calls.get("commit_turns") == 3  # one per step
    assert "finish_tasks" not in calls  # no result went through the inbox
    assert [e.kind for e in await client.history(iid)].count("WorkflowStarted") == 1


async def test_other_workers_hear_of_a_workflow_when_it_starts_and_when_it_ends(
    postgres_conninfo: str, tmp_path: Path
) -> None:
    """Each NOTIFY costs the server about as much as a step's writes: the steps in between,
    whose next activity is locked by the worker that runs it, concern no one else."""
    import psycopg

    from turnout_builtin._postgres import drop_schema

    schema = f"engine_{uuid.uuid4().hex[:12]}"
    resources = tmp_path / "components.yaml"
    resources.write_text(POSTGRES_COMPONENTS.format(conninfo=postgres_conninfo, schema=schema))
    try:
        async with turnout.AsyncRuntime(resources, workflows=wf, working_dir=tmp_path) as rt:
            channel = rt.client().component.engine.store.channel  # type: ignore[attr-defined]
            listener = await psycopg.AsyncConnection.connect(postgres_conninfo, autocommit=True)
            async with listener:
                await listener.execute(f'LISTEN "{channel}"')
                client = rt.client()
                iid = await client.start(three_adds, 0)
                assert (await client.wait(iid, timeout=10)).output == 3
                # Notifications arrive in commit order: one sent now comes after the workflow's.
                await listener.execute("SELECT pg_notify(%s, 'end of test')", (channel,))
                heard = []
                async for notice in listener.notifies(timeout=10):
                    if notice.payload == "end of test":
                        break
                    heard.append(notice.payload.partition("|")[2])
        assert heard == [iid, iid]  # the start (RUNNING), the end (COMPLETED)
    finally:
        await drop_schema(postgres_conninfo, schema)


async def test_a_wait_on_an_instance_running_here_reads_nothing(
    client: turnout.AsyncWorkflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker that runs an instance wrote its state: waiting on it starts from that state,
    and the final one comes with the commit that ends it."""
    store = client.component.engine.store  # type: ignore[attr-defined]
    reads: list[str] = []
    get_instance = store.get_instance

    async def counted(instance_id: str) -> Any:
        reads.append(instance_id)
        return await get_instance(instance_id)

    iid = await client.start(three_adds, 0)
    monkeypatch.setattr(store, "get_instance", counted)
    state = await client.wait(iid, timeout=10)
    assert state.output == 3 and state.runtime_status == turnout.RuntimeStatus.COMPLETED
    assert reads == []
    assert (await client.get(iid)) == state  # what the store holds, read now


async def test_results_of_queued_tasks_are_applied_directly(
    client: turnout.AsyncWorkflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More steps due than activity slots: most tasks wait in the store and are claimed
    later, and their results are still applied by this worker, not sent through the inbox."""
    engine = client.component.engine  # type: ignore[attr-defined]
    monkeypatch.setattr(engine, "max_activities", 1)
    store = engine.store
    delivered: list[int] = []
    finish_tasks = store.finish_tasks

    async def counted(owner: str, outcomes: list[Any]) -> Any:
        delivered.append(len(outcomes))
        return await finish_tasks(owner, outcomes)

    monkeypatch.setattr(store, "finish_tasks", counted)
    ids = await asyncio.gather(*(client.start(three_adds, n) for n in range(6)))
    states = await asyncio.gather(*(client.wait(iid, timeout=10) for iid in ids))
    assert [s.output for s in states] == [n + 3 for n in range(6)]
    assert delivered == []  # no result went through the inbox


async def test_events_raised_while_a_start_commits_are_not_left_waiting(
    client: turnout.AsyncWorkflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims leave an instance alone while its start and first turn commit here; events
    that arrive in that window are claimed right after, not at the next poll (an hour here)."""
    from turnout_builtin import _engine

    monkeypatch.setattr(_engine, "POLL_INTERVAL", 3600.0)
    store = client.component.engine.store  # type: ignore[attr-defined]
    create_instance, claim_turns = store.create_instance, store.claim_turns
    claimed = asyncio.Event()

    async def claim(*args: Any, **kwargs: Any) -> Any:
        works = await claim_turns(*args, **kwargs)
        claimed.set()
        return works

    async def create_then_raise(row: Any, *args: Any, **kwargs: Any) -> Any:
        made = await create_instance(row, *args, **kwargs)
        claimed.clear()
        await client.raise_event(row.instance_id, "go", 1)  # committed, but not yet cached here
        await client.raise_event(row.instance_id, "go", 2)
        await claimed.wait()  # the claim the events set off passes the instance by
        return made

    monkeypatch.setattr(store, "claim_turns", claim)
    monkeypatch.setattr(store, "create_instance", create_then_raise)
    state = await client.wait(await client.start(waiter), timeout=10)
    assert state.output == [1, 2]


async def test_durable_retries_count_attempts(client: turnout.AsyncWorkflowClient) -> None:
    key = uuid.uuid4().hex
    iid = await client.start(with_retry, key)
    state = await client.wait(iid, timeout=10)
    assert state.runtime_status is S.COMPLETED and state.output == 3
    assert ATTEMPTS[key] == [1, 2, 3]
    history = await client.history(iid)
    assert [e.kind for e in history].count("TaskScheduled") == 1  # retries are not new steps


async def test_exhausted_retries_fail_with_the_last_error(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(retry_exhausted, uuid.uuid4().hex)
    state = await client.wait(iid, timeout=10)
    assert state.runtime_status is S.FAILED
    assert state.failure is not None and "ConnectionError: attempt 2 failed" in state.failure.message


async def test_child_workflows_return_outputs_and_failures(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(parent, 1, instance_id="p1")
    state = await client.wait(iid, timeout=10)
    assert state.runtime_status is S.COMPLETED, state.failure
    assert state.output["a"] == 11
    assert "negative input" in state.output["error"]
    kid = await client.get("p1:0000")
    assert kid is not None and kid.parent_instance_id == "p1" and kid.output == 11
    bad = await client.get("p1-bad")
    assert bad is not None and bad.runtime_status is S.FAILED


async def test_events_are_fifo_and_buffered(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(waiter)
    await client.raise_event(iid, "go", 1)
    await client.raise_event(iid, "go", 2)
    state = await client.wait(iid, timeout=10)
    assert state.output == [1, 2]


async def test_terminate_is_recursive(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(parent_of_waiter, instance_id="pw")
    await client.wait(iid, until=[S.RUNNING], timeout=5)
    kid_state = await _eventually(client, "pw:0000", {S.RUNNING})
    assert kid_state.runtime_status is S.RUNNING
    await client.terminate(iid, reason="enough")
    assert (await client.get(iid)).runtime_status is S.TERMINATED  # type: ignore[union-attr]
    kid = await client.wait("pw:0000", timeout=5)
    assert kid.runtime_status is S.TERMINATED


async def test_purge_is_recursive_and_refuses_running_instances(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(parent_of_waiter, instance_id="pp")
    await _eventually(client, "pp:0000", {S.RUNNING})
    with pytest.raises(turnout.InvalidState, match="terminate it first"):
        await client.purge(iid)
    await client.terminate(iid)
    await client.wait("pp:0000", timeout=5)
    await client.purge(iid)
    assert await client.get(iid) is None
    assert await client.get("pp:0000") is None
    with pytest.raises(turnout.InstanceNotFound):
        await client.purge(iid)


async def test_continue_as_new_restarts_with_fresh_history_and_keeps_events(
    client: turnout.AsyncWorkflowClient,
) -> None:
    iid = await client.start(counter, 0)
    await client.raise_event(iid, "done", "early")  # arrives during the first executions
    state = await client.wait(iid, timeout=10)
    assert state.output == {"n": 3, "event": "early"}
    assert state.input == 3
    history = await client.history(iid)
    assert [e.kind for e in history].count("WorkflowStarted") == 1


async def test_cancel_lets_the_workflow_compensate(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(cancellable)
    await client.wait(iid, until=[S.RUNNING], timeout=5)
    await client.cancel(iid, reason="user asked")
    state = await client.wait(iid, timeout=10)
    assert state.runtime_status is S.CANCELED
    assert state.custom_status == {"compensated": 0}


async def test_pause_buffers_events_until_resume(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(waiter)
    await client.wait(iid, until=[S.RUNNING], timeout=5)
    await client.pause(iid)
    assert (await client.get(iid)).runtime_status is S.SUSPENDED  # type: ignore[union-attr]
    await client.raise_event(iid, "go", "a")
    await client.raise_event(iid, "go", "b")
    with pytest.raises(turnout.WaitTimeout):
        await client.wait(iid, timeout=0.3)
    history_before = await client.history(iid)
    assert "EventRaised" not in [e.kind for e in history_before]
    await client.resume(iid)
    state = await client.wait(iid, timeout=10)
    assert state.output == ["a", "b"]


async def test_resume_of_a_running_instance_is_refused(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(waiter)
    await client.wait(iid, until=[S.RUNNING], timeout=5)
    with pytest.raises(turnout.InvalidState, match="only a paused"):
        await client.resume(iid)


async def test_scheduled_start_waits_in_pending(client: turnout.AsyncWorkflowClient) -> None:
    at = datetime.now(UTC) + timedelta(milliseconds=400)
    iid = await client.start(quick, "later", start_at=at)
    state = await client.get(iid)
    assert state is not None and state.runtime_status is S.PENDING and state.scheduled_start_at is not None
    done = await client.wait(iid, timeout=10)
    assert done.output == "later"
    history = await client.history(iid)
    assert history[0].timestamp >= at - timedelta(milliseconds=5)


async def test_unknown_workflow_is_refused_at_start(client: turnout.AsyncWorkflowClient) -> None:
    with pytest.raises(turnout.WorkflowNotRegistered, match=r"no workflow named 'nope'.*registered: "):
        await client.start("nope")
    page = await client.list()
    assert len(page) == 0  # nothing was stored


async def test_unknown_activity_fails_the_instance_instead_of_hanging(
    client: turnout.AsyncWorkflowClient,
) -> None:
    iid = await client.start(calls_unknown_activity)
    state = await client.wait(iid, timeout=10)
    assert state.runtime_status is S.FAILED
    assert state.failure is not None and "no activity named 'not_registered'" in state.failure.message


async def test_start_with_an_id_in_use_and_replace(client: turnout.AsyncWorkflowClient) -> None:
    await client.start(waiter, instance_id="same")
    with pytest.raises(turnout.InstanceExists, match="already exists"):
        await client.start(waiter, instance_id="same")
    with pytest.raises(turnout.InstanceExists):
        await client.start(quick, instance_id="same", replace=True)  # still running: not replaceable
    await client.terminate("same")
    await client.start(quick, 7, instance_id="same", replace=True)
    state = await client.wait("same", timeout=5)
    assert state.workflow_name == "quick" and state.output == 7


async def test_list_pages_through_everything(client: turnout.AsyncWorkflowClient) -> None:
    ids = {await client.start(quick, i) for i in range(7)}
    for iid in ids:
        await client.wait(iid, timeout=5)
    seen: list[str] = []
    token = None
    while True:
        page = await client.list(limit=3, page_token=token, workflow_name="quick", status="COMPLETED")
        seen += [s.instance_id for s in page]
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == sorted(ids)
    with pytest.raises(turnout.InvalidArgument, match="page_token"):
        await client.list(page_token="garbage")


async def test_a_restart_replays_and_continues(tmp_path: Path) -> None:
    async with turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path) as rt:
        c = rt.client()
        iid = await c.start(waiter)
        await c.raise_event(iid, "go", 1)
        await _eventually_history(c, iid, "EventRaised")
    async with turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path) as rt:
        c = rt.client()
        await c.raise_event(iid, "go", 2)
        state = await c.wait(iid, timeout=10)
        assert state.output == [1, 2]
        assert c.component.engine.stats["replays"] == 1  # type: ignore[attr-defined]


async def test_changed_code_fails_the_instance_with_a_clear_message(tmp_path: Path) -> None:
    v1 = turnout.Workflows()
    v1.activity(add)

    @v1.workflow(name="evolving")
    def evolving_v1(ctx: turnout.WorkflowContext) -> Any:
        yield ctx.call_activity(add, input=1)
        return (yield ctx.wait_for_external_event("go"))

    async with turnout.AsyncRuntime(workflows=v1, working_dir=tmp_path) as rt:
        iid = await rt.client().start("evolving")
        await _eventually_history(rt.client(), iid, "TaskCompleted")

    v2 = turnout.Workflows()
    v2.activity(async_add)

    @v2.workflow(name="evolving")
    def evolving_v2(ctx: turnout.WorkflowContext) -> Any:
        yield ctx.call_activity(async_add, input=1)
        return (yield ctx.wait_for_external_event("go"))

    async with turnout.AsyncRuntime(workflows=v2, working_dir=tmp_path) as rt:
        c = rt.client()
        await c.raise_event(iid, "go", 1)
        state = await c.wait(iid, timeout=10)
        assert state.runtime_status is S.FAILED
        assert state.failure is not None
        assert "history holds TaskScheduled 'add'" in state.failure.message
        assert "now asks for TaskScheduled 'async_add'" in state.failure.message


async def test_a_second_process_on_the_same_file_is_refused(tmp_path: Path) -> None:
    async with turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path):
        with pytest.raises(turnout.ComponentError, match="in use by another Turnout process"):
            async with turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path):
                pass


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / ".turnout" / "dapr.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(turnout.ComponentError, match="schema version 99, newer than this Turnout"):
        async with turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path):
            pass


async def test_operations_on_unknown_instances(client: turnout.AsyncWorkflowClient) -> None:
    assert await client.get("missing") is None
    for call in (client.pause, client.terminate, client.cancel):
        with pytest.raises(turnout.InstanceNotFound, match="no workflow instance 'missing'"):
            await call("missing")
    with pytest.raises(turnout.InstanceNotFound):
        await client.raise_event("missing", "go")
    with pytest.raises(turnout.InstanceNotFound):
        await client.history("missing")


async def test_events_to_finished_instances_are_refused(client: turnout.AsyncWorkflowClient) -> None:
    iid = await client.start(quick, 1)
    await client.wait(iid, timeout=5)
    with pytest.raises(turnout.InvalidState, match="has finished"):
        await client.raise_event(iid, "go")


async def _eventually(
    client: turnout.AsyncWorkflowClient, iid: str, statuses: set[S]
) -> turnout.WorkflowState:
    """Wait for an instance that may not exist yet (a child being started)."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        state = await client.get(iid)
        if state is not None:
            return await client.wait(iid, until=statuses, timeout=5)
        assert asyncio.get_running_loop().time() < deadline, f"{iid} never appeared"
        await asyncio.sleep(0.01)


async def _eventually_history(client: turnout.AsyncWorkflowClient, iid: str, kind: str) -> None:
    deadline = asyncio.get_running_loop().time() + 5
    while kind not in [e.kind for e in await client.history(iid)]:
        assert asyncio.get_running_loop().time() < deadline, f"no {kind} in {iid}'s history"
        await asyncio.sleep(0.01)


@wf.workflow
def takes_number(ctx: turnout.WorkflowContext, x: int) -> Any:
    return x


async def test_an_input_the_workflow_cannot_take_is_refused_at_start(
    client: turnout.AsyncWorkflowClient,
) -> None:
    with pytest.raises(turnout.InvalidArgument, match="invalid workflow input 'abc'"):
        await client.start(takes_number, "abc")
    assert len(await client.list()) == 0


async def test_a_turn_the_store_refuses_holds_back_its_own_instance_only(
    client: turnout.AsyncWorkflowClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch the store fails for a reason of its own is committed again turn by turn.

    Retried whole, one turn the store cannot take held back every instance
    batched with it, forever. Now that one instance rests and is tried again.
    """
    from turnout_builtin._sql import SqlStore

    apply = SqlStore._apply_turns
    refusing = True

    def apply_turns(self: SqlStore, db: Any, owner: str, commits: list[Any], found: Any) -> None:
        # After its first turn (committed with its start), every turn of "poison" fails its batch.
        if refusing and any(c.instance_id == "poison" and c.expected_history_length for c in commits):
            raise ValueError("this store cannot keep that turn")
        apply(self, db, owner, commits, found)

    monkeypatch.setattr(SqlStore, "_apply_turns", apply_turns)
    ids = ["poison", *(f"good-{n}" for n in range(12))]
    await asyncio.gather(*(client.start(three_adds, 0, instance_id=iid) for iid in ids))
    for iid in ids[1:]:
        assert (await client.wait(iid, timeout=10)).output == 3
    poison = await client.get("poison")
    assert poison is not None and poison.runtime_status is S.RUNNING
    assert "the store refused a turn of poison" in caplog.text
    refusing = False  # the cause is gone: the instance goes on from where it stopped
    assert (await client.wait("poison", timeout=20)).output == 3


LONE_SURROGATE = "half a pair: \ud800"  # a Python str, but not Unicode any store can keep


@wf.activity
def returns_lone_surrogate(ctx: turnout.ActivityContext) -> str:
    return LONE_SURROGATE


@wf.workflow
def reports_lone_surrogates(ctx: turnout.WorkflowContext, where: str) -> Any:
    if where == "output":
        return LONE_SURROGATE
    try:
        yield ctx.call_activity(returns_lone_surrogate)
    except turnout.TaskFailedError as exc:
        return str(exc)
    return "the activity's result was kept"


async def test_text_that_is_not_unicode_is_refused_with_what_it_was(
    client: turnout.AsyncWorkflowClient,
) -> None:
    """Refused where it enters: a start's input, a workflow's output, an activity's result.

    Before, it reached the store and failed the commit that held it, so a start
    raised an encoding error from deep in the store and a turn could never commit.
    """
    with pytest.raises(turnout.InvalidArgument, match=r"workflow input .*valid Unicode"):
        await client.start(reports_lone_surrogates, LONE_SURROGATE)
    assert len(await client.list()) == 0
    ended = await client.wait(await client.start(reports_lone_surrogates, "output"), timeout=10)
    assert ended.runtime_status is S.FAILED and ended.failure is not None
    assert "output of workflow 'reports_lone_surrogates'" in ended.failure.message
    assert "valid Unicode (a lone surrogate follows" in ended.failure.message
    caught = await client.wait(await client.start(reports_lone_surrogates, "activity"), timeout=10)
    assert caught.runtime_status is S.COMPLETED
    assert "result of activity 'returns_lone_surrogate'" in caught.output
    assert "valid Unicode" in caught.output


def test_non_retryable_errors_accept_exception_classes() -> None:
    policy = turnout.RetryPolicy(non_retryable_errors=(ValueError, "KeyError"))
    assert policy.non_retryable_errors == ("ValueError", "KeyError")
    assert not policy.allows(2, "ValueError", timedelta(0))
    assert policy.allows(2, "ConnectionError", timedelta(0))
