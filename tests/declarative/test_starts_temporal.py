"""Starts on Temporal: a schedule, an event start and ``run.await: false`` are portable workflow code.

The registry gets a :class:`ClientStarter`, bound to the Temporal component's
client once the runtime runs; :func:`start_schedule` starts the scheduler.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import turnout
from turnout.declarative import ClientStarter, Settings, load_definition, register, start_schedule

from .conftest import on_temporal
from .test_v08_starts import ADMIT, arrived
from .test_v1_schedule import (
    ON_ORDER,
    PARENT,
    SET_ID,
    SHIPPER,
    _at_least,
    aligned,
    definition,
    eventually,
    instances,
    order_event,
)

pytest.importorskip("turnout_temporal.testing", reason="the Temporal adapter is not installed")
S = turnout.RuntimeStatus


@pytest.mark.parametrize(
    ("name", "schedule"),
    [("pulse", "every: PT1S"), ("cronned", "cron: '* * * * * ?'")],
    ids=["every", "cron"],
)
async def test_timed_schedules_on_temporal(
    temporal_address: str, tmp_path: Path, settings: Settings, name: str, schedule: str
) -> None:
    loaded = load_definition(definition(name, f"schedule:\n  {schedule}\n" + SET_ID))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, settings=settings, starter=starter)
    async with on_temporal(temporal_address, tmp_path, settings, workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        await eventually(lambda: _at_least(client, name, 2), timeout=60)
        await client.terminate(sid)
        runs = [await client.wait(r.instance_id, timeout=30) for r in await instances(client, name)]
    stamps = sorted(datetime.strptime(r.instance_id, f"{name}__%Y%m%dT%H%M%SZ") for r in runs)
    assert aligned(stamps, timedelta(seconds=1))
    assert all(r.runtime_status is S.COMPLETED and r.output["input"] == {} for r in runs)


async def test_event_start_and_await_false_on_temporal(
    temporal_address: str, tmp_path: Path, settings: Settings
) -> None:
    admit = load_definition(json.dumps(ADMIT))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, admit, settings=settings, starter=starter)
    register(wf, load_definition(definition("parent", PARENT)))
    register(wf, load_definition(definition("shipper", SHIPPER)))
    async with on_temporal(temporal_address, tmp_path, settings, workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, admit)
        await client.raise_event(sid, "patient.arrived", arrived("Zed", source="lab/1"))  # no match
        await client.raise_event(sid, "patient.arrived", arrived("Ann"))
        (run,) = await eventually(lambda: _at_least(client, "admit", 1), timeout=60)
        admitted = await client.wait(run.instance_id, timeout=30)

        parent = await client.wait(await client.start("parent", {"order": "T-1"}), timeout=30)
        (child,) = await eventually(lambda: _at_least(client, "shipper", 1), timeout=30)
        assert child.runtime_status is S.RUNNING  # the parent finished without it
        await client.raise_event(child.instance_id, "com.example.go", {"type": "com.example.go"})
        shipped = await client.wait(child.instance_id, timeout=30)
        await client.terminate(sid)
    assert admitted.output == {"name": "Ann"}
    assert admitted.input == {}
    assert parent.output == {"parent": "done", "order": "T-1"}
    assert shipped.output == {"shipped": "T-1"}


async def test_a_newer_version_takes_the_scheduler_over_on_temporal(
    temporal_address: str, tmp_path: Path, settings: Settings
) -> None:
    first = load_definition(definition("beat", "schedule:\n  every: PT1S\n" + SET_ID))
    second = load_definition(definition("beat", "schedule:\n  after: PT1S\n" + SET_ID, version="2.0.0"))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, first, settings=settings, starter=starter, name="beat@1")
    register(wf, second, settings=settings, name="beat@2")
    async with on_temporal(temporal_address, tmp_path, settings, workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, first, workflow_name="beat@1")
        await eventually(lambda: _at_least(client, "beat@1", 1), timeout=60)
        assert await start_schedule(client, second, workflow_name="beat@2") == sid
        taken = await client.get(sid)
        assert taken is not None and taken.workflow_name == "beat@2:schedule"
        (run,) = await eventually(lambda: _at_least(client, "beat@2", 1), timeout=60)
        await client.terminate(sid)
        done = await client.wait(run.instance_id, timeout=30)
    assert done.runtime_status is S.COMPLETED and done.instance_id.startswith("beat__")


async def test_on_events_on_temporal(temporal_address: str, tmp_path: Path, settings: Settings) -> None:
    loaded = load_definition(definition("big-orders", ON_ORDER))
    wf = turnout.Workflows()
    starter = ClientStarter()
    register(wf, loaded, settings=settings, starter=starter)
    async with on_temporal(temporal_address, tmp_path, settings, workflows=wf) as client:
        starter.bind(client)
        sid = await start_schedule(client, loaded)
        await client.raise_event(sid, "com.example.order.placed", order_event("small", 20))  # no match
        await client.raise_event(sid, "com.example.order.placed", order_event("B-1", 250))
        await client.raise_event(sid, "com.example.order.placed", order_event("B-2", 900))
        runs = await eventually(lambda: _at_least(client, "big-orders", 2), timeout=60)
        done = sorted(
            [await client.wait(r.instance_id, timeout=30) for r in runs], key=lambda s: s.output["order"]
        )
        await client.terminate(sid)
    assert [d.output for d in done] == [{"order": "B-1", "events": 1}, {"order": "B-2", "events": 1}]
    assert done[0].input == [order_event("B-1", 250)]
