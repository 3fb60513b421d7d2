"""SQL that differs between the store's dialects, for tests that fill a store's tables directly."""

from __future__ import annotations

import sqlite3
from typing import Any

SQLITE_DEFAULT_MAX_VARIABLES = 32_766
"""SQLite's default limit on a statement's parameters; this machine's Python is built with more."""


def is_postgres(store: Any) -> bool:
    return type(store).__name__ == "PostgresStore"


def numbers(count: int, store: Any) -> str:
    """A FROM item: the integers 1 to ``count``, as column ``n`` of ``g``."""
    if is_postgres(store):
        return f"generate_series(1, {count}) AS g(n)"
    return (
        f"(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count}) "
        "SELECT n FROM g) AS g"
    )


def with_default_sqlite_limits(store: Any) -> None:
    """Hold a SQLite store to the parameter limit most builds have, so that tests see what users would."""
    if not is_postgres(store):
        store._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, SQLITE_DEFAULT_MAX_VARIABLES)
