"""The shared conformance suite, run against workflow.temporal with hostWorker: true.

Every check starts a runtime of its own on a task queue of its own, against
the session's dev server, and runs the suite's workflows
(``turnout.testing.conformance_workflows``) on Temporal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

import turnout
from turnout.testing import ConformanceTarget, WorkflowComponentSuite, conformance_workflows

from .conftest import component_file


class TestTemporalConformance(WorkflowComponentSuite):
    """Every check of the suite, against a Temporal dev server."""

    @pytest_asyncio.fixture
    async def target(
        self, tmp_path: Path, temporal_address: str, task_queue: str
    ) -> AsyncIterator[ConformanceTarget]:
        resources = component_file(tmp_path / "components", temporal_address, task_queue, hostWorker="true")
        runtimes: list[turnout.AsyncRuntime] = []

        async def open_client() -> turnout.AsyncWorkflowClient:
            runtime = turnout.AsyncRuntime(resources, conformance_workflows(), working_dir=tmp_path)
            await runtime.start()
            runtimes.append(runtime)
            return runtime.client()

        async def restart() -> turnout.AsyncWorkflowClient:
            await runtimes.pop().aclose()
            return await open_client()

        client = await open_client()
        try:
            yield ConformanceTarget.for_workflow_code(client, timeout=20.0, latency=2.0, restart=restart)
        finally:
            for runtime in runtimes:
                await runtime.aclose()
