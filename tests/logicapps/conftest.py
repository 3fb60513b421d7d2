"""Fixtures of the Logic Apps adapter's tests: the ARM double (HTTPS, one per session) and helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .arm_double import ArmDouble
from .support import start_double


@pytest.fixture(scope="session")
def arm_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmDouble]:
    """The double over HTTPS, with a CA of its own (``arm_double.ca_file``)."""
    double = start_double(tmp_path_factory.mktemp("arm-double-tls"))
    try:
        yield double
    finally:
        double.stop()
