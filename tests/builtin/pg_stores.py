"""A PostgreSQL store on a throwaway schema, for the tests that talk to the store directly."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any


@contextlib.asynccontextmanager
async def fresh_pg_store(conninfo: str, **options: Any) -> AsyncIterator[Any]:
    """A store on a schema of its own, dropped after; by default with one connection that every
    call reuses (``options`` go to ``PostgresStore``)."""
    from turnout_builtin._postgres import PostgresStore, drop_schema

    schema = f"test_{uuid.uuid4().hex[:12]}"
    made = PostgresStore(conninfo, schema=schema, **{"max_connections": 1, **options})
    await made.open()
    try:
        yield made
    finally:
        await made.close()
        await drop_schema(conninfo, schema)
