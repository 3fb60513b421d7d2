"""The hub that hands work items to remote workers: tokens, hand-over on disconnect, closing."""

from __future__ import annotations

import asyncio

import pytest
from dapr.ext.workflow._durabletask.internal import protos as pb

from turnout_builtin._sidecar._hub import NoWorkers, WorkerHub


def item(name: str) -> pb.WorkItem:
    return pb.WorkItem(activityRequest=pb.ActivityRequest(name=name))


async def test_no_worker_no_wait() -> None:
    with pytest.raises(NoWorkers):
        await WorkerHub().submit(item("a"))


async def test_a_disconnected_worker_hands_its_items_to_the_next() -> None:
    hub = WorkerHub()
    first, second = hub.connect(), hub.connect()
    answer = asyncio.ensure_future(hub.submit(item("a")))
    taken = await hub.next(first)
    assert taken.activityRequest.name == "a" and taken.completionToken
    hub.disconnect(first)  # gone without answering
    again = await hub.next(second)
    assert again.activityRequest.name == "a"
    assert again.completionToken != taken.completionToken
    assert not hub.complete(taken.completionToken, pb.ActivityResponse())  # the old token is stale
    response = pb.ActivityResponse(taskId=7)
    assert hub.complete(again.completionToken, response)
    assert await answer == response
    assert not hub.complete(again.completionToken, response)  # answered once


async def test_the_last_worker_leaving_lets_the_waiting_items_go() -> None:
    hub = WorkerHub()
    only = hub.connect()
    taken_answer = asyncio.ensure_future(hub.submit(item("taken")))
    waiting_answer = asyncio.ensure_future(hub.submit(item("waiting")))
    await hub.next(only)
    hub.disconnect(only)
    for answer in (taken_answer, waiting_answer):
        with pytest.raises(NoWorkers):
            await answer


async def test_closing_ends_the_streams() -> None:
    hub = WorkerHub()
    streams = [asyncio.ensure_future(hub.next(hub.connect())) for _ in range(2)]
    await asyncio.sleep(0)  # one turn of the loop: both streams block on the empty queue
    hub.close()
    assert await asyncio.gather(*streams) == [None, None]
