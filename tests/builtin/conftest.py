"""Fixtures shared by the built-in engine's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pg_stores import fresh_pg_store


@pytest.fixture
async def pg_store(postgres_conninfo: str) -> AsyncIterator[Any]:
    """A PostgreSQL store on a throwaway schema (see ``pg_stores``)."""
    async with fresh_pg_store(postgres_conninfo) as store:
        yield store
