"""Test-wide settings and the real back ends the tests share."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from turnout.testing import missing_server

# Stray plugins installed in the environment must never change what the tests see
# (datasette's habit); the entry-point names are those in this repository's pyproject files.
os.environ["TURNOUT_PLUGINS"] = "builtin,secretstores,temporal,aws_stepfunctions,logicapps"

POSTGRES = os.environ.get("TURNOUT_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test")


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


# -- temporalio/sdk-python#300 ---------------------------------------------------------------
# The SDK's Rust threads can call into Python while the interpreter finalizes, which aborts the
# process ("Fatal Python error: PyGILState_Release ... finalizing", exit code 134) after every
# test has passed. The run's outcome is known once pytest has reported it, so when the SDK was
# loaded this run ends the process at the very end of pytest's shutdown with the session's own
# exit status (os._exit), skipping the interpreter finalization where the crash happens.

_session: pytest.Session | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session
    _session = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _session is None or "temporalio.bridge.temporal_sdk_bridge" not in sys.modules:
        return
    status = int(_session.exitstatus)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@pytest.fixture(scope="session")
def _tracer_provider() -> object:
    """One SDK tracer provider for the whole run (OpenTelemetry lets a process set it once)."""
    trace = pytest.importorskip("opentelemetry.trace")
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def span_exporter(_tracer_provider: object) -> Iterator[object]:
    """The in-memory exporter of every span this test makes (tracing stays on for later tests)."""
    _tracer_provider.clear()  # type: ignore[attr-defined]
    yield _tracer_provider
