"""Serverless Workflow 0.8 starts: an event start state creates instances, and ``start.schedule`` runs them.

The events that start instances are raised to the definition's scheduler
instance (``<id>__schedule``) under their CloudEvent type, as ``listen``
events are raised to an instance.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.declarative import (
    ClientStarter,
    DefinitionError,
    load_definition,
    register,
    scheduler_id,
    start_schedule,
)

from .test_v1_schedule import _at_least, aligned, component, eventually, instances

S = turnout.RuntimeStatus

ADMIT = {
    "id": "admit",
    "version": "1.0",
    "specVersion": "0.8",
    "start": "Arrive",
    "events": [{"name": "Arrived", "type": "patient.arrived", "source": "clinic/+"}],
    "states": [
        {
            "name": "Arrive",
            "type": "event",
            "onEvents": [{"eventRefs": ["Arrived"], "eventDataFilter": {"data": "${ .patient }"}}],
            "end": True,
        }
    ],
}


def arrived(patient: str, source: str = "clinic/7") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"a-{patient}",
        "type": "patient.arrived",
        "source": source,
        "data": {"patient": {"name": patient}},
    }


async def test_a_matching_event_creates_one_instance_and_a_foreign_one_none(tmp_path: Path) -> None:
    async with component(tmp_path, **{"admit.sw.yaml": json.dumps(ADMIT)}) as client:
        sid = scheduler_id("admit")
        await eventually(lambda: client.get(sid))
        await client.raise_event(sid, "patient.arrived", arrived("Zed", source="lab/1"))  # another source
        await client.raise_event(sid, "patient.arrived", arrived("Ann"))
        (run,) = await eventually(lambda: _at_least(client, "admit@1.0", 1))
        done = await client.wait(run.instance_id, timeout=10)
        await asyncio.sleep(0.3)
        assert len(await instances(client, "admit@1.0")) == 1
    assert done.runtime_status is S.COMPLETED
    assert done.output == {"name": "Ann"}
    assert done.input == {} and done.instance_id.startswith("admit__")


CHECKOUT = {
    "id": "checkout",
    "version": "1.0",
    "specVersion": "0.8",
    "events": [
        {"name": "Paid", "type": "order.paid", "correlation": [{"contextAttributeName": "orderid"}]},
        {"name": "Packed", "type": "order.packed", "correlation": [{"contextAttributeName": "orderid"}]},
    ],
    "states": [
        {
            "name": "Both",
            "type": "event",
            "exclusive": False,
            "onEvents": [
                {"eventRefs": ["Paid"], "eventDataFilter": {"toStateData": "${ .paid }"}},
                {"eventRefs": ["Packed"], "eventDataFilter": {"toStateData": "${ .packed }"}},
            ],
            "end": True,
        }
    ],
}


def order(kind: str, order_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{kind}-{order_id}",
        "type": f"order.{kind}",
        "source": "shop",
        "orderid": order_id,
        "data": {"order": order_id},
    }


async def test_a_non_exclusive_start_gathers_correlated_events_into_one_instance(running: Any) -> None:
    loaded = load_definition(json.dumps(CHECKOUT))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        await client.raise_event(sid, "order.paid", order("paid", "O-1"))
        await client.raise_event(sid, "order.packed", order("packed", "O-2"))  # another order: waits
        await asyncio.sleep(0.3)
        assert await instances(client, "checkout") == []
        await client.raise_event(sid, "order.packed", order("packed", "O-1"))
        (run,) = await eventually(lambda: _at_least(client, "checkout", 1))
        done = await client.wait(run.instance_id, timeout=10)
        assert done.output == {"paid": {"order": "O-1"}, "packed": {"order": "O-1"}}
        await client.raise_event(sid, "order.paid", order("paid", "O-2"))
        runs = await eventually(lambda: _at_least(client, "checkout", 2))
        other = next(r for r in runs if r.instance_id != run.instance_id)
        second = await client.wait(other.instance_id, timeout=10)
    assert second.output == {"paid": {"order": "O-2"}, "packed": {"order": "O-2"}}


def ticking(schedule: Any) -> dict[str, Any]:
    return {
        "id": "ticking",
        "version": "1.0",
        "specVersion": "0.8",
        "start": {"stateName": "Tick", "schedule": schedule},
        "states": [{"name": "Tick", "type": "inject", "data": {"ticked": True}, "end": True}],
    }


async def test_a_repeating_interval_with_a_count_fires_exactly_that_often(running: Any) -> None:
    loaded = load_definition(json.dumps(ticking("R3/PT1S")))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        scheduler = await client.wait(sid, timeout=20)
        runs = [await client.wait(r.instance_id, timeout=10) for r in await instances(client, "ticking")]
    assert scheduler.runtime_status is S.COMPLETED and scheduler.output == {"fired": 3}
    assert len(runs) == 3
    assert all(r.output == {"ticked": True} and r.input == {} for r in runs)
    stamps = sorted(datetime.strptime(r.instance_id, "ticking__%Y%m%dT%H%M%SZ") for r in runs)
    assert aligned(stamps, timedelta(seconds=1))


async def test_a_cron_ends_at_valid_until(running: Any) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=2.5)).replace(microsecond=0)
    schedule = {"cron": {"expression": "* * * * * ?", "validUntil": until.isoformat()}, "timezone": "UTC"}
    loaded = load_definition(json.dumps(ticking(schedule)))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        scheduler = await client.wait(sid, timeout=20)
        runs = await instances(client, "ticking")
    assert scheduler.runtime_status is S.COMPLETED
    stamps = sorted(
        datetime.strptime(r.instance_id, "ticking__%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for r in runs
    )
    assert stamps and stamps[-1] <= until  # none after validUntil (normally the last is validUntil itself)
    assert scheduler.output == {"fired": len(runs)}


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        ("PT1H", "/start/schedule/interval", "not an ISO 8601 repeating interval"),
        ("R0/PT1H", "/start/schedule/interval", "repeats zero times"),
        ({"cron": "0 0 31 2 * * 2026"}, "/start/schedule/cron/expression", "has 7 fields"),
        ({"cron": {"expression": "* * * * *", "validUntil": "soon"}}, "/start/schedule/cron/validUntil", ""),
        ({"interval": "R/PT1H", "timezone": "Mars/Base"}, "/start/schedule/timezone", "unknown time zone"),
        ({"timezone": "UTC"}, "/start/schedule", "exactly one of interval"),
    ],
)
def test_bad_start_schedules_are_refused_with_their_path(schedule: Any, path: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(json.dumps(ticking(schedule)))
    problems = dict(caught.value.problems)
    assert path in problems, caught.value.problems
    assert message in problems[path]


def test_a_scheduled_event_start_is_refused() -> None:
    scheduled = {**ADMIT, "start": {"stateName": "Arrive", "schedule": "R/PT1H"}}
    with pytest.raises(DefinitionError) as caught:
        load_definition(json.dumps(scheduled))
    assert "event start state is not supported" in dict(caught.value.problems)["/start/schedule"]


async def test_an_event_start_instance_may_still_be_started_by_hand(running: Any) -> None:
    async with running(load_definition(json.dumps(ADMIT))) as client:
        iid = await client.start("admit", {})
        await client.raise_event(iid, "patient.arrived", arrived("Bo"))
        done = await client.wait(iid, timeout=10)
    assert done.output == {"name": "Bo"}


async def test_a_counted_interval_keeps_its_count_across_generations(
    running: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("turnout.declarative._scheduler.RUNS_PER_GENERATION", 2)
    loaded = load_definition(json.dumps(ticking("R3/PT1S")))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, starter=starter)
    async with running(workflows=wf) as client:
        starter.bind(client)
        scheduler = await client.wait(await start_schedule(client, loaded), timeout=20)
        runs = await instances(client, "ticking")
    assert scheduler.output == {"fired": 3} and len(runs) == 3


def test_repeating_intervals_read_as_iso_8601_says() -> None:
    from turnout.declarative._schedule import parse_interval

    hourly = parse_interval("R/PT1H")
    assert (hourly.period, hourly.first, hourly.until, hourly.count) == (timedelta(hours=1), None, None, None)
    counted = parse_interval("R5/2026-01-01T08:00:00/PT30M", "Europe/Paris")  # no offset: read in the zone
    assert counted.first == datetime(2026, 1, 1, 7, tzinfo=UTC) and counted.count == 5
    ending = parse_interval("R/PT1H/2026-12-31T00:00:00Z")
    assert ending.until == datetime(2026, 12, 31, tzinfo=UTC)
    anchor = datetime(2026, 12, 30, 23, 30, tzinfo=UTC)
    assert ending.following(anchor - timedelta(hours=1), anchor) == anchor  # the last fire before the end
    assert ending.following(anchor, anchor) is None  # 00:30 would be past the end
    after_first = datetime(2026, 1, 1, 7, 10, tzinfo=UTC)
    assert counted.following(after_first, anchor) == datetime(2026, 1, 1, 7, 30, tzinfo=UTC)  # aligned
