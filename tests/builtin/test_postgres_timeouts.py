"""``state.postgresql``'s ``timeout``: no database operation waits for ever.

A statement stuck behind somebody else's lock is cancelled by the server, and
a call to a frozen server is cut by the client; both are reported as
retryable errors. A start-up waiting on a frozen migration fails, naming the
schema, and the session of a worker frozen mid-step is ended by a live
worker's heartbeat. Each wait is bounded, so that code without the timeout
fails the test instead of hanging it. The network timeouts (a server, or a
worker's machine, that vanishes without a word) cannot be provoked on
loopback, where the kernel answers for both ends: their tests check that
every connection carries them, at both ends.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pg_cluster import PgCluster
from pg_stores import fresh_pg_store
from pydantic import ValidationError

from turnout import ComponentError, EngineError, RuntimeStatus
from turnout_builtin import PostgresMetadata
from turnout_builtin._events import Event, Kind
from turnout_builtin._postgres import PostgresStore, drop_schema, redacted, with_network_timeouts
from turnout_builtin._store import InstanceRow

TIMEOUT = 0.5
BOUND = 30.0  # how long a test waits before it calls the wait endless
T0 = 1_700_000_000.0


async def add_instance(store: Any, instance_id: str) -> None:
    row = InstanceRow(instance_id, "wf", RuntimeStatus.PENDING, "e1", T0, T0)
    await store.create_instance(row, Event(Kind.WORKFLOW_STARTED, T0, name="wf"), T0, False)


def admin(conninfo: str, schema: str) -> Any:
    import psycopg

    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


async def test_a_statement_behind_a_foreign_lock_is_cancelled_and_retryable(postgres_conninfo: str) -> None:
    async with fresh_pg_store(postgres_conninfo, timeout=TIMEOUT) as store:
        await add_instance(store, "a")
        with admin(postgres_conninfo, store.schema) as other:
            # Somebody's ALTER TABLE, or a session left open in psql, holds the table.
            other.execute("BEGIN")
            other.execute("LOCK TABLE instances IN ACCESS EXCLUSIVE MODE")
            # A read, and a write: a pipelined transaction, whose statements run to its Sync.
            for call in (lambda: store.get_instance("a"), lambda: add_instance(store, "b")):
                started = time.monotonic()
                with pytest.raises(EngineError) as caught:
                    await asyncio.wait_for(call(), BOUND)
                assert caught.value.retryable
                assert "statement timeout" in str(caught.value)
                assert time.monotonic() - started >= TIMEOUT
            other.execute("ROLLBACK")
        # The connection survived the cancel, and the write left nothing behind: it is retried.
        assert await store.get_instance("b") is None
        await add_instance(store, "b")
        row = await store.get_instance("b")
        assert row is not None and row.status is RuntimeStatus.PENDING


async def test_a_call_to_a_frozen_server_is_cut_after_twice_the_timeout(cluster: PgCluster) -> None:
    async with fresh_pg_store(cluster.conninfo, timeout=TIMEOUT) as store:
        await add_instance(store, "a")
        with cluster.frozen():
            # Stopped, it cancels nothing, and its kernel acknowledges every packet and keepalive.
            started = time.monotonic()
            with pytest.raises(EngineError) as caught:
                await asyncio.wait_for(store.get_instance("a"), BOUND)
            waited = time.monotonic() - started
        assert caught.value.retryable
        assert waited >= 2 * TIMEOUT
        # Woken, the server answers a new connection; the cut one was dropped from the pool.
        row = await asyncio.wait_for(store.get_instance("a"), BOUND)
        assert row is not None and row.instance_id == "a"


async def test_a_worker_stops_while_its_server_is_frozen(cluster: PgCluster) -> None:
    store = PostgresStore(cluster.conninfo, schema="frozen_close", max_connections=2, timeout=TIMEOUT)
    await store.open()
    store.listen(lambda _: None, tag="this-worker")
    await add_instance(store, "a")
    with cluster.frozen():
        # Its call that wakes the listener is cut after twice the timeout; the listener sees
        # the stop by itself within half a second. Before, the close waited for ever.
        await asyncio.wait_for(store.close(), BOUND)


async def test_a_start_up_waiting_on_a_frozen_migration_fails_with_the_schema_named(
    postgres_conninfo: str,
) -> None:
    schema = f"frozen_migration_{os.getpid()}"
    store = PostgresStore(postgres_conninfo, schema=schema, max_connections=2, timeout=TIMEOUT)
    with admin(postgres_conninfo, "public") as other:
        # A worker that froze while it migrated this schema holds the lock every worker takes.
        other.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"turnout-migrate-{schema}",))
        started = time.monotonic()
        with pytest.raises(ComponentError, match=f"did not finish migrating schema '{schema}'") as caught:
            await asyncio.wait_for(store.open(), BOUND)
        assert time.monotonic() - started >= 2 * TIMEOUT
        assert "migration lock" in str(caught.value)
        assert store._deadlines._thread is None  # a refused open leaves no watchdog behind
        other.execute("SELECT pg_advisory_unlock_all()")
    try:
        await asyncio.wait_for(store.open(), BOUND)  # the same store, once the lock is free
        await add_instance(store, "a")
        assert await store.get_instance("a") is not None
    finally:
        await store.close()
        await drop_schema(postgres_conninfo, schema)


async def test_a_start_up_against_a_frozen_server_fails(cluster: PgCluster) -> None:
    store = PostgresStore(cluster.conninfo, schema="frozen_open", max_connections=2, timeout=TIMEOUT)
    with cluster.frozen(), pytest.raises(ComponentError, match="cannot connect to PostgreSQL"):
        # The connection itself waits on the server: libpq's connect_timeout ends it.
        await asyncio.wait_for(store.open(), BOUND)
    await store.close()


def session_in_transaction(conninfo: str, schema: str, name: str, instance_id: str) -> Any:
    """A session that locked an instance's row in the middle of a step, then said nothing more.

    What a worker stopped mid-step leaves: its step's first statements sent in
    a pipeline, no Sync, the server waiting on its next word (``ClientRead``).
    """
    import psycopg

    conn = psycopg.connect(f"{conninfo} application_name={name}", autocommit=True)
    conn.execute(f'SET search_path TO "{schema}"')
    pipeline = conn.pipeline()
    pipeline.__enter__()
    conn.execute("BEGIN")
    conn.execute("SELECT 1 FROM instances WHERE instance_id = %s FOR UPDATE", (instance_id,))
    conn.pgconn.flush()
    return conn


def alive(conn: Any, pid: int) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return bool(row[0])


async def test_a_worker_frozen_mid_step_has_its_session_ended_by_a_live_one(postgres_conninfo: str) -> None:
    async with fresh_pg_store(postgres_conninfo, timeout=TIMEOUT) as store:
        for instance_id in ("frozen", "theirs"):
            await add_instance(store, instance_id)
        frozen = session_in_transaction(postgres_conninfo, store.schema, "turnout:elsewhere:1", "frozen")
        # Somebody else's session, as stuck: not Turnout's to end.
        foreign = session_in_transaction(postgres_conninfo, store.schema, "psql", "theirs")
        froze = time.monotonic()
        try:
            # An idle session of another worker (its pool, its LISTEN): not in a transaction.
            with (
                admin(f"{postgres_conninfo} application_name=turnout:elsewhere:2", store.schema) as idle,
                admin(postgres_conninfo, store.schema) as other,
            ):
                frozen_pid, foreign_pid, idle_pid = (c.info.backend_pid for c in (frozen, foreign, idle))
                while alive(other, frozen_pid):
                    assert time.monotonic() - froze < BOUND, "the frozen worker's session was never ended"
                    await store.heartbeat("this-worker", time.time(), [])
                    await asyncio.sleep(0.1)
                ended = time.monotonic() - froze
                # Its row is free for the workers that take its instance over.
                other.execute("SET lock_timeout = '1s'")
                other.execute("SELECT 1 FROM instances WHERE instance_id = 'frozen' FOR UPDATE")
                assert alive(other, foreign_pid) and alive(other, idle_pid)
        finally:
            for conn in (frozen, foreign):
                conn.pgconn.finish()  # their locks go with them, or the schema could not be dropped
        assert ended >= 2 * TIMEOUT  # no sooner than any call of a live worker may take


async def test_the_documented_query_lists_this_workers_sessions(postgres_conninfo: str) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "components.md").read_text()
    query = re.search(r"^```sql name=worker-sessions\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert query is not None, "docs/components.md lost its worker-sessions query"
    async with fresh_pg_store(postgres_conninfo, timeout=TIMEOUT) as store:
        await add_instance(store, "a")
        with admin(postgres_conninfo, store.schema) as other:
            rows = other.execute(query.group(1)).fetchall()
    names = {row[1] for row in rows}
    assert f"turnout:{socket.gethostname()}:{os.getpid()}"[:63] in names


async def test_the_store_connections_carry_the_timeouts(postgres_conninfo: str) -> None:
    async with fresh_pg_store(postgres_conninfo, timeout=TIMEOUT) as store:
        with store._pool.connection() as conn:
            server = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', "
                "'tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', "
                "'tcp_user_timeout') ORDER BY name"
            ).fetchall()
            client = conn.info.dsn.split()
            # A DBA finds a worker's sessions by the prefix of its leases' owner (host:pid).
            named = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"turnout:{socket.gethostname()}:{os.getpid()}",),
            ).fetchone()
    assert named is not None and named[0] >= 1
    # The server's: it ends a session whose worker's machine went silent mid-transaction.
    assert server == [
        ("statement_timeout", "500"),
        ("tcp_keepalives_count", "4"),
        ("tcp_keepalives_idle", "1"),
        ("tcp_keepalives_interval", "1"),
        ("tcp_user_timeout", "2000"),
    ]
    # The client's: it gives up on a server that went silent.
    for parameter in (
        "connect_timeout=1",
        "keepalives_idle=1",
        "keepalives_count=4",
        "tcp_user_timeout=2000",
    ):
        assert parameter in client


def test_network_timeouts_fill_only_what_the_connection_string_leaves_out() -> None:
    from psycopg.conninfo import conninfo_to_dict

    filled = conninfo_to_dict(with_network_timeouts("host=db user=app", 20))
    assert filled == {
        "host": "db",
        "user": "app",
        "connect_timeout": "20",
        "keepalives": "1",
        "keepalives_idle": "20",
        "keepalives_interval": "5",
        "keepalives_count": "4",
        "tcp_user_timeout": "40000",
        "application_name": f"turnout:{socket.gethostname()}:{os.getpid()}",
    }
    kept = conninfo_to_dict(
        with_network_timeouts(
            "postgresql://app@db/orders?connect_timeout=3&keepalives_idle=60&application_name=billing", 20
        )
    )
    assert (kept["connect_timeout"], kept["keepalives_idle"], kept["dbname"]) == ("3", "60", "orders")
    assert kept["application_name"] == "billing"


def test_timeout_takes_dapr_spellings_and_refuses_the_rest() -> None:
    base = {"connectionString": "host=db"}
    assert PostgresMetadata.model_validate(base).timeout == timedelta(seconds=20)
    for value, seconds in (("1m30s", 90), ("5", 5), (2.5, 2.5), ("PT1M", 60)):
        metadata = PostgresMetadata.model_validate({**base, "timeout": value})
        assert PostgresStore.from_metadata(metadata).timeout == seconds
    for value, expected in (("soon", "a duration such as '30s'"), ("0", "a positive duration")):
        with pytest.raises(ValidationError) as caught:
            PostgresMetadata.model_validate({**base, "timeout": value})
        [error] = caught.value.errors()
        assert error["loc"] == ("timeout",) and expected in error["msg"]


def test_a_connection_string_libpq_cannot_read_is_refused_without_echoing_it() -> None:
    with pytest.raises(ComponentError, match="connectionString is neither") as caught:
        PostgresStore("host='unclosed password=hunter2")
    assert "hunter2" not in str(caught.value)
    assert redacted("postgresql://app:hunter2@db/orders") == "user=app password=*** dbname=orders host=db"


async def test_an_unreachable_server_is_reported_without_the_password(unused_tcp_port: int) -> None:
    store = PostgresStore(f"host=127.0.0.1 port={unused_tcp_port} user=app password=hunter2", timeout=2)
    with pytest.raises(ComponentError, match="cannot connect to PostgreSQL") as caught:
        await asyncio.wait_for(store.open(), BOUND)
    assert "hunter2" not in str(caught.value) and "password=***" in str(caught.value)
    await store.close()
