"""The suite itself: a correct component passes it, and each seeded bug fails the check meant for it.

A small in-memory component (echo, sleep and fail workflows; start, get,
terminate) runs the suite in a pytester project, once as written and once
per seeded bug.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

FAKE_ENGINE = """
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import ClassVar
import uuid

import pytest_asyncio
from pydantic import BaseModel

from turnout import (
    ComponentRegistry, ComponentType, FailureDetails, Feature, InstanceExists, InstanceNotFound,
    RuntimeStatus, StartRequest, WorkflowComponent, WorkflowState, hookimpl,
)
from turnout.testing import ConformanceTarget, WorkflowComponentSuite, open_client

BUG = {bug!r}


def now():
    return datetime.now() if BUG == "naive_times" else datetime.now(UTC)


class Fake(WorkflowComponent):
    features: ClassVar = frozenset(
        {{Feature.TERMINATE, Feature.PURGE}} if BUG == "purge_declared_only" else {{Feature.TERMINATE}}
    )

    def __init__(self):
        self.instances = {{}}

    async def start(self, request: StartRequest) -> str:
        iid = request.instance_id or uuid.uuid4().hex
        if iid in self.instances:
            raise InstanceExists(iid, self.instances[iid].runtime_status.value)
        status, output, failure = RuntimeStatus.RUNNING, None, None
        if request.workflow_name == "echo":
            status, output = RuntimeStatus.COMPLETED, request.input
        elif request.workflow_name == "fail":
            status, failure = RuntimeStatus.FAILED, FailureDetails(error_type="ValueError", message="boom")
        t = now()
        self.instances[iid] = WorkflowState(
            instance_id=iid, workflow_name=request.workflow_name, runtime_status=status,
            created_at=t, last_updated_at=t, input=request.input, output=output, failure=failure,
        )
        return iid

    async def get(self, instance_id):
        if instance_id not in self.instances and BUG == "get_unknown_raises":
            raise InstanceNotFound(instance_id)
        state = self.instances.get(instance_id)
        return None if state is None else state.model_copy()

    async def terminate(self, instance_id, reason=None):
        state = self.instances.get(instance_id)
        if state is None:
            if BUG == "terminate_unknown_silent":
                return
            raise InstanceNotFound(instance_id)
        if not state.runtime_status.is_terminal:
            state.runtime_status = RuntimeStatus.TERMINATED
            state.last_updated_at = now()

    if BUG == "pause_undeclared":
        async def pause(self, instance_id, reason=None):
            self.instances[instance_id].runtime_status = RuntimeStatus.SUSPENDED


class Metadata(BaseModel):
    pass


class FakePlugin:
    @hookimpl
    def turnout_register_components(self, registry: ComponentRegistry) -> None:
        registry.register(ComponentType(
            type="workflow.fake", metadata_model=Metadata, factory=lambda m, c: Fake(), distribution="tests",
        ))


COMPONENT = (
    "apiVersion: dapr.io/v1alpha1\\nkind: Component\\n"
    "metadata: {{name: fake}}\\nspec: {{type: workflow.fake, version: v1}}\\n"
)


class TestFake(WorkflowComponentSuite):
    @pytest_asyncio.fixture
    async def target(self, tmp_path) -> AsyncIterator[ConformanceTarget]:
        resources = tmp_path / "fake.yaml"
        resources.write_text(COMPONENT)
        async with open_client(resources, working_dir=tmp_path, plugins=(FakePlugin(),)) as client:
            yield ConformanceTarget(
                client, echo="echo", sleeper="sleep", failing="fail", failure_message="boom", timeout=5.0
            )
"""

BUGS = {
    "pause_undeclared": {"test_feature_declaration[pause]"},
    "purge_declared_only": {
        "test_feature_declaration[purge]",
        "test_purge_finished_instance",
        "test_purge_running_instance_is_invalid",
        "test_unknown_instance_raises_not_found[purge]",
    },
    "naive_times": {"test_start_and_get"},
    "get_unknown_raises": {"test_get_unknown_instance_returns_none"},
    "terminate_unknown_silent": {"test_unknown_instance_raises_not_found[terminate]"},
}


def failed_checks(pytester: pytest.Pytester, bug: str | None) -> set[str]:
    pytester.makepyfile(test_fake=textwrap.dedent(FAKE_ENGINE).format(bug=bug))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    passed, _skipped, failed = recorder.listoutcomes()
    assert passed, "no check passed: the fake engine itself is broken"
    return {report.nodeid.split("::")[-1] for report in failed}


def test_a_correct_component_passes(pytester: pytest.Pytester) -> None:
    """Control: the fake engine as written fails no check (so the seeded bugs are what fails)."""
    assert failed_checks(pytester, None) == set()


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_a_seeded_bug_fails_its_check(pytester: pytest.Pytester, bug: str) -> None:
    """Each seeded bug fails exactly the checks that are about it."""
    assert failed_checks(pytester, bug) == BUGS[bug]
