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
from pydantic import BaseModel

from turnout import ComponentContext, ComponentError, ComponentRegistry, ComponentType, hookimpl
from turnout.testing import ConformanceTarget, WorkflowComponentSuite, in_ci, missing_server

from .workflow_targets import (
    RECIPES,
    Recipe,
    component,
    installed_workflow_types,
    recipes,
    serve,
    write_components,
)

ALL = recipes()

KNOWN_BUGS: dict[tuple[str, str], str] = {}
"""Checks a recipe is known to fail, by (check, recipe id): strict xfails, so that a fix shows."""


class TestWorkflowComponent(WorkflowComponentSuite):
    """Every check of the suite, once per recipe."""

    @pytest_asyncio.fixture(params=[pytest.param(r, id=r.id) for r in ALL])
    async def target(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[ConformanceTarget]:
        recipe: Recipe = request.param
        bug = KNOWN_BUGS.get((request.node.originalname, recipe.id))
        if bug is not None:
            request.node.add_marker(pytest.mark.xfail(strict=True, reason=bug))
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


def test_known_bugs_name_real_checks() -> None:
    """Every known-bug entry names a check of the suite and a recipe."""
    recipe_ids = {recipe_id for known in RECIPES.values() for recipe_id, _ in known}
    for check, recipe_id in KNOWN_BUGS:
        assert callable(getattr(WorkflowComponentSuite, check, None)), f"no check named {check}"
        assert recipe_id in recipe_ids, f"no recipe named {recipe_id}"


def test_the_known_engines_have_recipes() -> None:
    """The engines of this repository each have a recipe, so their entry is real once they can run."""
    assert {
        "workflow.builtin",
        "workflow.example",
        "workflow.temporal",
        "workflow.aws.stepfunctions",
        "workflow.azure.logicapps",
    } <= set(RECIPES)


class PendingMetadata(BaseModel):
    """No settings."""


class PendingPlugin:
    """An adapter whose engine calls are not written yet, as the adapters' factories say it."""

    @hookimpl
    def turnout_register_components(self, registry: ComponentRegistry) -> None:
        def refuse(metadata: BaseModel, context: ComponentContext) -> object:
            raise ComponentError(
                "the metadata is valid, but the workflow.pending adapter's engine calls are not "
                "implemented in this version yet",
                file=context.file,
                component=context.name,
            )

        registry.register(
            ComponentType(
                type="workflow.pending", metadata_model=PendingMetadata, factory=refuse, distribution="tests"
            )
        )


async def test_not_implemented_adapter_skips_even_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An adapter that is not implemented yet is a skip saying so, not a missing server, even in CI."""
    monkeypatch.setenv("CI", "true")
    resources = write_components(tmp_path, component("pending", "workflow.pending"))
    with pytest.raises(pytest.skip.Exception, match="installed but not implemented yet"):
        async with serve(
            tmp_path,
            resources,
            component_type="workflow.pending",
            plugins=(PendingPlugin(),),
            server=lambda: "the server would be missing too",
        ):
            pytest.fail("a component that is not implemented ran")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_server_fails_only_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type) -> None:
    """missing_server skips outside CI and fails with CI=true, saying which server is missing."""
    monkeypatch.setenv("CI", ci)
    assert in_ci() is (ci == "true")
    with pytest.raises(outcome, match="no server at nowhere:1"):
        missing_server("no server at nowhere:1")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
async def test_a_recipe_without_its_server_fails_only_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type
) -> None:
    """A recipe whose server is missing skips outside CI and fails in CI, naming the server."""
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"no server at 127\.0\.0\.1:1"):
        async with serve(
            tmp_path, None, component_type="workflow.builtin", server=lambda: "no server at 127.0.0.1:1"
        ):
            pytest.fail("the recipe ran without its server")
