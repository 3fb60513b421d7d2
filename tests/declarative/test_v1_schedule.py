"""Serverless Workflow 1.0 starts: ``schedule`` (every, cron, after, on) and ``run.await: false``.

On the built-in engine, both ways: a component that loads definition files
(it starts the schedulers itself, and hands a newer version's schedule over),
and ``register`` with a starter plus :func:`start_schedule` (what any engine
does). Every wait is on a condition; durations are one second.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

import turnout
from turnout.declarative import (
    SCHEDULER_SUFFIX,
    ClientStarter,
    DefinitionError,
    Settings,
    load_definition,
    register,
    scheduler_id,
    start_schedule,
)
from turnout.declarative._schedule import Schedule, normalize_cron
from turnout.declarative._starts import instance_prefix, timed_run_id

S = turnout.RuntimeStatus
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """The first truthy value of ``check()``, polled until ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.05)


def aligned(moments: list[datetime], period: timedelta) -> bool:
    """Whether fire times are distinct and a whole number of periods apart.

    Usually one period; more when the engine was too busy to fire in time
    (the fires it missed make one run, by design).
    """
    gaps = [b - a for a, b in itertools.pairwise(sorted(moments))]
    return all(gap >= period and gap % period == timedelta(0) for gap in gaps)


async def instances(client: turnout.AsyncWorkflowClient, workflow: str) -> list[turnout.WorkflowState]:
    """The instances of ``workflow``, oldest first."""
    page = await client.list(workflow_name=workflow)
    return sorted(page.items, key=lambda s: s.created_at)


def definition(name: str, body: str, version: str = "1.0.0") -> str:
    return f"document: {{dsl: '1.0.0', namespace: tests, name: {name}, version: '{version}'}}\n{body}"


SET_ID = """
do:
  - stamp:
      set:
        id: ${ $workflow.id }
        input: ${ $workflow.input }
"""


@asynccontextmanager
async def component(folder: Path, **files: str) -> AsyncIterator[turnout.AsyncWorkflowClient]:
    """A built-in component that loads ``files`` (name -> YAML) as its definitions."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "component.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "flows"},
                "spec": {
                    "type": "workflow.builtin",
                    "version": "v1",
                    "metadata": [{"name": "definitions", "value": "*.sw.yaml"}],
                },
            }
        )
    )
    async with turnout.AsyncRuntime(folder / "component.yaml", working_dir=folder) as rt:
        yield rt.client("flows")


# -- every and cron ----------------------------------------------------------------------------------


async def test_every_starts_a_run_each_period_named_by_its_fire_time(tmp_path: Path) -> None:
    text = definition("tick", "schedule:\n  every: PT1S\n" + SET_ID)
    async with component(tmp_path, **{"tick.sw.yaml": text}) as client:
        sid = scheduler_id("tick")
        assert sid == "tick__schedule"

        async def three() -> list[turnout.WorkflowState] | None:
            runs = await instances(client, "tick@1.0.0")
            return runs if len(runs) >= 3 else None

        await eventually(three)
        await client.terminate(sid, "enough")
        scheduler = await client.get(sid)
        assert scheduler is not None and scheduler.workflow_name == "tick@1.0.0" + SCHEDULER_SUFFIX
        runs = [await client.wait(r.instance_id, timeout=10) for r in await instances(client, "tick@1.0.0")]
        await asyncio.sleep(1.5)  # a fire would have come by now: the stopped schedule starts nothing
        assert len(await instances(client, "tick@1.0.0")) == len(runs)
    stamps = [datetime.strptime(r.instance_id, "tick__%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for r in runs]
    assert aligned(stamps, timedelta(seconds=1))
    for run in runs:
        assert run.runtime_status is S.COMPLETED
        assert run.output == {"id": run.instance_id, "input": {}}


async def test_cron_with_seconds_fires_on_whole_seconds(running: Any, settings: Settings) -> None:
    """On any engine: register with a starter, then start the scheduler with start_schedule."""
    loaded = load_definition(definition("cronned", "schedule:\n  cron: '* * * * * ?'\n" + SET_ID))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, settings=settings, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        assert await start_schedule(client, loaded) == sid  # already running: left as it is
        runs = await eventually(lambda: _at_least(client, "cronned", 2))
        await client.terminate(sid)
    for run in runs[:2]:
        fired = datetime.strptime(run.instance_id, "cronned__%Y%m%dT%H%M%SZ")
        assert fired.microsecond == 0
        assert run.input == {}


async def _at_least(client: turnout.AsyncWorkflowClient, workflow: str, count: int) -> list[Any] | None:
    runs = await instances(client, workflow)
    return runs if len(runs) >= count else None


async def settled(client: turnout.AsyncWorkflowClient, sid: str, last_event: str) -> bool:
    """Whether the scheduler applied the event whose id is ``last_event`` and all the starts it asked for.

    Events are applied in the order they were raised, so after the last one
    the runs it started are all it will ever start for them: a check that
    nothing more started needs no sleep.
    """
    history = await client.history(sid)
    kinds = [e.kind for e in history]
    applied = any(e.kind == "EventRaised" and e.data["payload"].get("id") == last_event for e in history)
    returned = kinds.count("TaskCompleted") + kinds.count("TaskFailed")
    return applied and kinds.count("TaskScheduled") == returned


# -- after ---------------------------------------------------------------------------------------------


async def test_after_starts_the_next_run_that_long_after_the_previous_one_ended(
    running: Any, settings: Settings
) -> None:
    slow = definition("slow", "schedule:\n  after: PT1S\ndo:\n  - work:\n      wait: PT1S\n")
    loaded = load_definition(slow)
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, settings=settings, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        first, second = (await eventually(lambda: _at_least(client, "slow", 2), timeout=30))[:2]
        await client.terminate(sid)
        first = await client.wait(first.instance_id, timeout=10)
    assert first.runtime_status is S.COMPLETED
    assert second.created_at - first.last_updated_at >= timedelta(seconds=1)  # never overlapping


# -- on: events start instances ----------------------------------------------------------------------------


ON_ORDER = """
schedule:
  on:
    one:
      with:
        type: com.example.order.placed
        data: ${ .total > 100 }
do:
  - take:
      set:
        order: ${ $workflow.input[0].data.id }
        events: ${ $workflow.input | length }
"""


def order_event(order: str, total: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e-{order}",
        "source": "https://shop.example.com",
        "type": "com.example.order.placed",
        "data": {"id": order, "total": total},
    }


async def test_on_starts_one_instance_per_matching_event_whose_input_is_the_events(tmp_path: Path) -> None:
    async with component(tmp_path, **{"big.sw.yaml": definition("big-orders", ON_ORDER)}) as client:
        sid = scheduler_id("big-orders")
        await eventually(lambda: client.get(sid))
        await client.raise_event(sid, "com.example.order.placed", order_event("small", 20))  # no match
        await client.raise_event(sid, "com.example.other", order_event("other", 500))  # not listened to
        bad = {**order_event("text", 0), "data": "not an order"}  # the filter's jq fails on it: dropped
        await client.raise_event(sid, "com.example.order.placed", bad)
        await client.raise_event(sid, "com.example.order.placed", order_event("B-1", 250))
        await client.raise_event(sid, "com.example.order.placed", order_event("B-2", 900))
        await client.raise_event(sid, "com.example.order.placed", order_event("last", 5))  # no match
        await eventually(lambda: settled(client, sid, "e-last"))
        runs = await instances(client, "big-orders@1.0.0")
        assert len(runs) == 2  # of six events, the two that match
        done = sorted(
            [await client.wait(r.instance_id, timeout=10) for r in runs], key=lambda s: s.output["order"]
        )
    assert [d.output for d in done] == [{"order": "B-1", "events": 1}, {"order": "B-2", "events": 1}]
    assert done[0].input == [order_event("B-1", 250)]
    assert all(d.instance_id.startswith("big-orders__") for d in done)


ON_ALL = """
schedule:
  on:
    all:
      - with: {type: com.example.paid}
      - with: {type: com.example.packed}
do:
  - both:
      set:
        types: '${ [$workflow.input[].type] }'
"""


async def test_on_all_starts_one_instance_with_every_event_in_filter_order(running: Any) -> None:
    loaded = load_definition(definition("ship", ON_ALL))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        await client.raise_event(sid, "com.example.packed", {"type": "com.example.packed", "id": "1"})
        await eventually(lambda: settled(client, sid, "1"))
        assert await instances(client, "ship") == []  # one of two: nothing starts yet
        await client.raise_event(sid, "com.example.paid", {"type": "com.example.paid", "id": "2"})
        (run,) = await eventually(lambda: _at_least(client, "ship", 1))
        done = await client.wait(run.instance_id, timeout=10)
    assert done.output == {"types": ["com.example.paid", "com.example.packed"]}


# -- a newer version takes the schedule over ---------------------------------------------------------------


async def test_a_newer_version_takes_the_scheduler_over_and_one_without_a_schedule_stops_it(
    tmp_path: Path,
) -> None:
    first = definition("hook", ON_ORDER)
    async with component(tmp_path, **{"hook.sw.yaml": first}) as client:
        sid = scheduler_id("hook")
        assert (await eventually(lambda: client.get(sid))).workflow_name == "hook@1.0.0:schedule"
        await client.put_definition(definition("hook", ON_ORDER, version="2.0.0"))
        taken = await client.get(sid)
        assert taken is not None and taken.workflow_name == "hook@2.0.0:schedule"
        assert taken.runtime_status in (S.PENDING, S.RUNNING)
        await client.raise_event(sid, "com.example.order.placed", order_event("V2", 500))
        (run,) = await eventually(lambda: _at_least(client, "hook@2.0.0", 1))
        assert (await client.wait(run.instance_id, timeout=10)).output["order"] == "V2"
        await client.put_definition(definition("hook", SET_ID, version="3.0.0"))
        stopped = await client.get(sid)
        assert stopped is not None and stopped.runtime_status is S.TERMINATED
    # Opened again: the latest version (3.0.0) has no schedule, so nothing is started.
    async with component(tmp_path) as client:
        again = await client.get(sid)
        assert again is not None and again.runtime_status is S.TERMINATED


# -- run.await: false ---------------------------------------------------------------------------------------


PARENT = """
do:
  - shipLater:
      input:
        from: '{order: .order}'
      run:
        await: false
        workflow:
          namespace: tests
          name: shipper
          version: '1.0.0'
          input:
            order: ${ .order }
  - after:
      set:
        parent: done
        order: ${ .order }
"""

SHIPPER = """
do:
  - hold:
      listen:
        to:
          one:
            with: {type: com.example.go}
  - ship:
      set:
        shipped: ${ $workflow.input.order }
"""


async def test_run_without_await_returns_at_once_and_the_child_still_completes(running: Any) -> None:
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, load_definition(definition("parent", PARENT)), starter=starter)
    register(wf, load_definition(definition("shipper", SHIPPER)))
    async with running(workflows=wf) as client:
        starter.bind(client)
        iid = await client.start("parent", {"order": "A-7", "noise": True})
        parent = await client.wait(iid, timeout=10)
        assert parent.output == {"parent": "done", "order": "A-7"}  # the task's output: its transformed input
        (child,) = await instances(client, "shipper")
        assert child.runtime_status in (S.PENDING, S.RUNNING)  # still waiting: the parent did not
        assert child.parent_instance_id is None and child.instance_id.startswith("shipper__")
        await client.raise_event(child.instance_id, "com.example.go", {"type": "com.example.go"})
        done = await client.wait(child.instance_id, timeout=10)
    assert done.output == {"shipped": "A-7"}


def test_run_without_await_needs_a_starter() -> None:
    with pytest.raises(DefinitionError) as caught:
        register(turnout.Workflows(), load_definition(definition("parent", PARENT), source="parent.yaml"))
    assert caught.value.source == "parent.yaml"
    assert [path for path, _ in caught.value.problems] == ["/do/0/shipLater/run/await"]
    assert "no starter" in str(caught.value) and "register(..., starter=...)" in str(caught.value)


async def test_a_scheduler_without_a_starter_fails_and_says_why(running: Any, settings: Settings) -> None:
    loaded = load_definition(definition("lonely", "schedule:\n  every: PT1S\n" + SET_ID))
    wf = turnout.Workflows()
    register(wf, loaded, settings=settings)  # a schedule may be started by hand: no starter needed here
    async with running(workflows=wf) as client:
        sid = await start_schedule(client, loaded)
        failed = await client.wait(sid, timeout=20)
    assert failed.runtime_status is S.FAILED
    assert failed.failure is not None and "no starter" in failed.failure.message


# -- refused at load time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        ("cron: '61 * * * *'", "/schedule/cron", "not a valid cron expression"),
        ("cron: '* * *'", "/schedule/cron", "has 3 fields"),
        ("every: PT0S", "/schedule/every", "not longer than zero"),
        ("every: soon", "/schedule/every", "not an ISO 8601 duration"),
        ("after: '${ .delay }'", "/schedule/after", "literal duration"),
        ("on: {some: [{with: {type: x}}]}", "/schedule/on", "exactly one of one, any, all"),
        ("on: {any: []}", "/schedule/on/any", "at least one event filter"),
        ("on: {one: {with: {source: x}}}", "/schedule/on/one/with/type", "required"),
        ("{every: PT1S, cron: '* * * * *'}", "/schedule", "exactly one of every, cron, after and on"),
        ("{every: PT1S, at: noon}", "/schedule", "unexpected key at"),
    ],
)
def test_bad_schedules_are_refused_with_their_path(schedule: str, path: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        body = schedule if schedule.startswith("{") else "{" + schedule + "}"
        load_definition(definition("bad", f"schedule: {body}\n" + SET_ID))
    problems = dict(caught.value.problems)
    assert path in problems, caught.value.problems
    assert message in problems[path]


def test_run_await_must_be_a_boolean() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(definition("bad", PARENT.replace("await: false", "await: later")))
    assert dict(caught.value.problems)["/do/0/shipLater/run/await"].startswith("expected true")


# -- fire times and ids -----------------------------------------------------------------------------


def test_fire_times_are_aligned_and_missed_ones_are_skipped() -> None:
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    every = Schedule("every", period=timedelta(minutes=10))
    assert every.following(anchor, anchor) == anchor + timedelta(minutes=10)
    assert every.following(anchor + timedelta(minutes=35), anchor) == anchor + timedelta(minutes=40)
    paris = Schedule("cron", cron=normalize_cron("0 9 * * *"), timezone="Europe/Paris")
    assert paris.following(anchor, anchor) == datetime(2026, 1, 1, 8, tzinfo=UTC)  # 9:00 in Paris, winter
    until = Schedule("cron", cron=normalize_cron("0 * * * *"), until=anchor + timedelta(minutes=30))
    assert until.following(anchor, anchor) is None


def test_ids_keep_to_dapr_instance_id_rules() -> None:
    assert timed_run_id("report", datetime(2026, 11, 26, 15, tzinfo=UTC)) == "report__20261126T150000Z"
    assert timed_run_id("r", datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)) == "r__20260101T000000250Z"
    assert instance_prefix("orders.v2/eu west") == "orders-v2-eu-west"
    long = instance_prefix("x" * 80)
    assert len(long) == 40 and long != instance_prefix("x" * 81)
    assert SCHEDULER_SUFFIX == ":schedule"


def test_the_builtin_engine_knows_the_scheduler_suffix() -> None:
    from turnout_builtin._definitions import SCHEDULER_SUFFIX as BUILTIN

    assert BUILTIN == SCHEDULER_SUFFIX


# -- long-lived schedulers continue as new ---------------------------------------------------------------


ON_ANY = """
schedule:
  on:
    any:
      - with: {type: com.example.a}
      - with: {type: com.example.b}
do:
  - seen:
      set:
        id: ${ $workflow.input[0].id }
"""


async def test_a_scheduler_continues_as_new_without_losing_an_event(
    running: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("turnout.declarative._scheduler.RUNS_PER_GENERATION", 2)
    loaded = load_definition(definition("either", ON_ANY))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, starter=starter)
    sent = ["a1", "b1", "a2", "b2", "a3"]
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        for event_id in sent:
            kind = f"com.example.{event_id[0]}"
            await client.raise_event(sid, kind, {"type": kind, "id": event_id})
        runs = await eventually(lambda: _at_least(client, "either", len(sent)))
        done = [await client.wait(r.instance_id, timeout=10) for r in runs]
        # Carried-over events are applied first in the next generation, so no one event
        # marks the end here (see settled): a duplicate start would have come by now.
        await asyncio.sleep(0.3)
        assert len(await instances(client, "either")) == len(sent)
        started = [e for e in await client.history(sid) if e.kind == "TaskScheduled"]
    assert sorted(d.output["id"] for d in done) == sorted(sent)
    assert len(started) < len(sent)  # the history holds the last generation's starts only


# -- one registry, several runtimes ------------------------------------------------------------------------


def component_file(folder: Path, name: str, pattern: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "dapr.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": name},
                "spec": {
                    "type": "workflow.builtin",
                    "version": "v1",
                    "metadata": [{"name": "definitions", "value": pattern}],
                },
            }
        )
    )
    return path


async def test_a_registry_used_again_starts_its_runs_in_the_new_runtime(tmp_path: Path) -> None:
    (tmp_path / "tick.sw.yaml").write_text(definition("tick", "schedule:\n  every: PT1S\n" + SET_ID))
    resources = component_file(tmp_path, "flows", "*.sw.yaml")
    wf = turnout.Workflows()  # the application's registry, given to both runtimes
    async with turnout.AsyncRuntime(resources, wf, working_dir=tmp_path) as rt:
        client = rt.client("flows")
        before = len(await eventually(lambda: _at_least(client, "tick@1.0.0", 1)))
    async with turnout.AsyncRuntime(resources, wf, working_dir=tmp_path) as rt:
        client = rt.client("flows")
        await eventually(lambda: _at_least(client, "tick@1.0.0", before + 2))  # the same scheduler goes on
        await client.terminate(scheduler_id("tick"))


async def test_two_running_components_cannot_share_a_registry_that_starts_instances(tmp_path: Path) -> None:
    components = tmp_path / "components"
    components.mkdir()
    for name in ("a", "b"):
        text = definition(f"tick-{name}", "schedule:\n  every: PT1S\n" + SET_ID)
        (tmp_path / f"{name}.sw.yaml").write_text(text)
    component_file(components, "first", "../a.sw.yaml")
    component_file(components, "second", "../b.sw.yaml")
    with pytest.raises(turnout.ComponentError, match="already used by component 'first'"):
        async with turnout.AsyncRuntime(components, turnout.Workflows(), working_dir=tmp_path):
            pass


async def test_start_schedule_never_replaces_an_instance_of_another_workflow(
    running: Any, settings: Settings
) -> None:
    wf = turnout.Workflows()

    @wf.workflow
    def squatter(ctx: turnout.WorkflowContext, _: Any = None) -> Any:
        yield ctx.wait_for_external_event("never")

    loaded = load_definition(definition("tick", "schedule:\n  every: PT1S\n" + SET_ID))
    register(wf, loaded, settings=settings, starter=ClientStarter())
    async with running(workflows=wf) as client:
        await client.start("squatter", instance_id=scheduler_id("tick"))
        with pytest.raises(turnout.InstanceExists):
            await start_schedule(client, loaded)
        squatting = await client.get(scheduler_id("tick"))
    assert squatting is not None and squatting.workflow_name == "squatter"
