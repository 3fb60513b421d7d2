"""Turnout's workflow-component conformance suite, run against workflow.aws.stepfunctions on moto.

The roles the suite needs are state machines this test deploys through the
component's ``definitions``: an echo (one Pass state), a sleeper (a Wait of
an hour, terminated by the suite's clean-up), a failing machine (a Fail
state) and a waiter (a ``.waitForTaskToken`` task named after the suite's
event, sending its token over SQS). Roles that need Turnout code (activity,
custom status, child workflows) do not exist on Step Functions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from turnout import AsyncRuntime, AsyncWorkflowClient
from turnout.testing import (
    ECHO,
    EVENT_NAME,
    FAILING,
    FAILURE_MESSAGE,
    SLEEPER,
    WAITER,
    ConformanceTarget,
    WorkflowComponentSuite,
)

from .conftest import ROLE, MotoServer, callback_task, write_component, write_definitions

NO_CODE = "Step Functions runs state machines, not Turnout workflow code"


def definitions(queue_url: str) -> dict[str, dict[str, object]]:
    """The state machines that play the suite's roles (named as the suite's own workflows)."""
    return {
        ECHO: {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}},
        SLEEPER: {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 3600, "End": True}}},
        FAILING: {
            "StartAt": "Fail",
            "States": {"Fail": {"Type": "Fail", "Error": "ValueError", "Cause": FAILURE_MESSAGE}},
        },
        WAITER: {"StartAt": EVENT_NAME, "States": {EVENT_NAME: callback_task(queue_url, End=True)}},
    }


class TestStepFunctionsConformance(WorkflowComponentSuite):
    """Every check of the suite that Step Functions' declared features allow."""

    @pytest_asyncio.fixture
    async def target(
        self, moto_server: MotoServer, queue_url: str, tmp_path: Path
    ) -> AsyncIterator[ConformanceTarget]:
        folder = write_definitions(tmp_path, definitions(queue_url))
        resources = write_component(
            tmp_path,
            moto_server.metadata(
                roleArn=ROLE, definitions=str(folder / "*.asl.json"), raiseEventTimeout="10"
            ),
        )
        runtime = AsyncRuntime(resources, working_dir=tmp_path)
        await runtime.start()
        holder = {"runtime": runtime}

        async def restart() -> AsyncWorkflowClient:
            # Step Functions keeps the executions: a new runtime finds them by name.
            await holder["runtime"].aclose()
            holder["runtime"] = AsyncRuntime(resources, working_dir=tmp_path)
            await holder["runtime"].start()
            return holder["runtime"].client("sfn")

        try:
            yield ConformanceTarget(
                runtime.client("sfn"),
                echo=ECHO,
                waiter=WAITER,
                sleeper=SLEEPER,
                failing=FAILING,
                failure_error_type="ValueError",
                timeout=20.0,
                restart=restart,
                reasons={"activity": NO_CODE, "custom_status": NO_CODE, "parent": NO_CODE},
            )
        finally:
            await holder["runtime"].aclose()
