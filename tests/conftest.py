"""Test-wide settings and the real back ends the tests share."""

from __future__ import annotations

import os

import pytest

# Stray plugins installed in the environment must never change what the tests see
# (datasette's habit); the entry-point names are those in this repository's pyproject files.
os.environ["TURNOUT_PLUGINS"] = "builtin,secretstores,temporal,aws_stepfunctions,logicapps"

POSTGRES = os.environ.get("TURNOUT_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def missing_server(reason: str) -> None:
    """Skip outside CI; in CI (CI=true) a missing server is a failure, never a silent skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing server fails the run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_conninfo() -> str:
    """A connection string to the machine's PostgreSQL (127.0.0.1:5432), checked once."""
    try:
        import psycopg
    except ImportError:
        missing_server("psycopg is not installed: pip install 'turnout[postgresql]'")
    try:
        with psycopg.connect(POSTGRES, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        missing_server(f"PostgreSQL is not reachable at {POSTGRES!r}: {exc}".strip())
    return POSTGRES
