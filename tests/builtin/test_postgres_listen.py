"""The LISTEN connection: what other workers commit reaches this one, and a gap in it is told.

Waiters poll only as a safety net (every ``WAIT_POLL_SECONDS``), so a
notification lost while the listening connection was down must not leave them
waiting: on every (re)connect the listener says "anything may have changed".
"""

from __future__ import annotations

import asyncio
import queue
from typing import Any

import pytest


@pytest.fixture
def store(pg_store: Any) -> Any:
    return pg_store


async def heard(calls: queue.Queue[Any]) -> Any:
    return await asyncio.to_thread(calls.get, True, 10)


async def test_the_listener_says_look_again_whenever_it_connects(store: Any, postgres_conninfo: str) -> None:
    import psycopg

    calls: queue.Queue[Any] = queue.Queue()
    store.listen(calls.put, tag="this-worker")
    assert await heard(calls) is None  # connected: what came before it was told to nobody
    with psycopg.connect(postgres_conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_notify(%s, 'other-worker|a,b')", (store.channel,))
        assert await heard(calls) == ["a", "b"]
        admin.execute("SELECT pg_notify(%s, 'this-worker|c')", (store.channel,))  # its own: not told
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
            (f'LISTEN "{store.channel}"',),
        ).fetchall()
        assert cut == [(True,)]
        assert await heard(calls) is None  # reconnected: whatever the gap held, look again
        admin.execute("SELECT pg_notify(%s, 'other-worker|d')", (store.channel,))
        assert await heard(calls) == ["d"]
