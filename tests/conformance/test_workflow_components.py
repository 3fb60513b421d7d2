"""The workflow-component conformance suite, run against every installed workflow component type.

The suite itself is ``turnout.testing.WorkflowComponentSuite``; the recipes
that start each type are in ``workflow_targets.py``. A type that cannot run
here is a skip that says why (not implemented yet, no server, no recipe);
with ``CI=true`` a missing server is a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from turnout.testing import ConformanceTarget, WorkflowComponentSuite, in_ci, missing_server

from .workflow_targets import RECIPES, Recipe, installed_workflow_types, recipes

ALL = recipes()


class TestWorkflowComponent(WorkflowComponentSuite):
    """Every check of the suite, once per recipe."""

    @pytest_asyncio.fixture(params=[pytest.param(r, id=r.id) for r in ALL])
    async def target(self, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
        recipe: Recipe = request.param
        async with recipe.open(request, tmp_path) as target:
            yield target


def test_every_installed_workflow_type_has_an_entry() -> None:
    """No installed type is dropped silently: each has a recipe, or an entry that skips with the reason."""
    installed = installed_workflow_types()
    assert "workflow.builtin" in installed
    covered = {r.component_type for r in ALL}
    assert covered == set(installed)
    ids = [r.id for r in ALL]
    assert len(ids) == len(set(ids)), f"duplicate recipe ids: {ids}"


def test_the_known_engines_have_recipes() -> None:
    """The engines of this repository each have a recipe, so their entry is real once they can run."""
    assert {
        "workflow.builtin",
        "workflow.example",
        "workflow.temporal",
        "workflow.aws.stepfunctions",
        "workflow.azure.logicapps",
    } <= set(RECIPES)


@pytest.mark.parametrize("component_type", ["workflow.temporal", "workflow.aws.stepfunctions", "workflow.azure.logicapps"])
async def test_not_implemented_adapter_skips_even_in_ci(
    component_type: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adapter that is not implemented yet is a skip saying so, not a missing server, even in CI."""
    if component_type not in installed_workflow_types():
        pytest.skip(f"{component_type} is not installed")
    monkeypatch.setenv("CI", "true")
    (_, opener), *_ = RECIPES[component_type]
    try:
        async with opener(request, tmp_path):
            pass
    except pytest.skip.Exception as skipped:
        assert "not implemented yet" in str(skipped)
        return
    pytest.skip(f"{component_type} is implemented now: its conformance run is its own test")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_server_fails_only_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type) -> None:
    """missing_server skips outside CI and fails with CI=true, saying which server is missing."""
    monkeypatch.setenv("CI", ci)
    assert in_ci() is (ci == "true")
    with pytest.raises(outcome, match="no server at nowhere:1"):
        missing_server("no server at nowhere:1")
