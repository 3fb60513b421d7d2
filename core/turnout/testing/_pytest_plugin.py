"""pytest plugin (entry point ``pytest11: turnout``): what plugin authors need to run the suite.

Loaded by pytest in every project where Turnout is installed, so it stays
light: it imports nothing heavy at load time. It gives

- the ``turnout_conformance`` marker (every check of the suite carries it, so
  ``pytest -m turnout_conformance`` runs only the suite, and
  ``--strict-markers`` accepts it);
- a report-header line listing the installed Turnout component types, so a
  CI log shows which engines the run could see;
- the fixtures ``turnout_conformance_workflows`` (a fresh registry of the
  conformance workflows) and ``turnout_missing_server`` (skip, or fail when
  ``CI=true``, for a server a test cannot reach).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from turnout import Workflows

MARKER = "turnout_conformance"


def pytest_configure(config: pytest.Config) -> None:
    """Register the suite's marker."""
    config.addinivalue_line(
        "markers", f"{MARKER}: a check of Turnout's workflow-component conformance suite (turnout.testing)"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One line naming the Turnout version and the installed component types."""
    try:
        from turnout import __version__
        from turnout._plugins import load_registry

        types = ", ".join(t.type for t in load_registry()) or "none"
    except Exception as exc:  # a broken plugin must not break someone else's test run
        return [f"turnout: could not load plugins ({type(exc).__name__}: {exc})"]
    return [f"turnout {__version__}: component types {types}"]


@pytest.fixture
def turnout_conformance_workflows() -> Workflows:
    """A new :class:`turnout.Workflows` holding the conformance workflows."""
    from turnout.testing import conformance_workflows

    return conformance_workflows()


@pytest.fixture
def turnout_missing_server() -> Callable[[str], NoReturn]:
    """``turnout_missing_server(reason)``: skip the test, or fail it when ``CI=true``."""
    from turnout.testing import missing_server

    return missing_server
