"""Fixtures of the gRPC tests: one server and one SDK worker per module (see sidecar_support.py).

This folder has no ``__init__.py`` on purpose: a package named ``grpc`` would
hide the grpc library.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sidecar_support import HERE, STARTED, Process, Server, start_worker

try:
    import dapr.ext.workflow  # noqa: F401
except ImportError:
    if os.environ.get("CI") == "true":
        raise  # in CI a missing dependency fails, never skips
    MISSING = "tests/grpc not run: the Dapr SDK is not installed (pip install 'turnout[grpc]')"
    collect_ignore_glob = ["test_*.py"]

    def pytest_report_header(config: pytest.Config) -> str:
        return MISSING


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a module's tests, hosting the in-process workflows of local_flows.py."""
    folder = tmp_path_factory.mktemp("grpc-server")
    proc = Server(folder, "--workflows", f"{HERE / 'local_flows.py'}:wf").start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.output


@pytest.fixture(scope="module")
def worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """One SDK worker connected to the module's server."""
    proc = start_worker(server, tmp_path_factory.mktemp("grpc-worker"))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Whatever a test started and did not stop (it failed half-way) is killed after it."""
    before = len(STARTED)
    yield
    for proc in STARTED[before:]:
        proc.kill()
