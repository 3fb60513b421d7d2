"""The pytest11 plugin ``turnout``: marker, report header and fixtures, as a plugin author sees them."""

from __future__ import annotations

import pytest

from turnout import Workflows
from turnout.testing import ECHO, ROLES, WorkflowComponentSuite

pytest_plugins = ["pytester"]


def test_fixtures(turnout_conformance_workflows: Workflows, turnout_missing_server: object) -> None:
    """The fixtures give the conformance workflows and the skip-or-fail helper."""
    assert ECHO in turnout_conformance_workflows.workflow_names
    assert len(turnout_conformance_workflows.workflow_names) == len(ROLES)
    assert callable(turnout_missing_server)


def test_marker_is_registered(pytestconfig: pytest.Config) -> None:
    """``turnout_conformance`` is a registered marker, and every check of the suite carries it."""
    assert any(line.startswith("turnout_conformance:") for line in pytestconfig.getini("markers"))
    names = [mark.name for mark in WorkflowComponentSuite.pytestmark]
    assert "turnout_conformance" in names and "asyncio" in names


def test_report_header_lists_component_types(pytester: pytest.Pytester) -> None:
    """The run's header names the Turnout version and the installed component types."""
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--strict-markers")
    result.stdout.fnmatch_lines(["turnout *: component types *workflow.builtin*"])
    assert result.ret == 0
