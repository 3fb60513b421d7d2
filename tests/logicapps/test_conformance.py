"""Turnout's workflow-component conformance suite, run against workflow.azure.logicapps and the ARM double.

The roles are Logic Apps definitions (``definitions.py``): echo returns its
trigger body as the output ``output``, waiter waits in an HTTP Webhook action
named ``go``, sleeper waits an hour in a Wait action, failing ends itself with
a Terminate action. ``restart`` opens a new component on the same resource
group, which finds its instances again through ``runs.list`` and the client
tracking id.

Two ways in: ``direct`` builds the component in Python with a static token
credential; ``runtime`` reads a component file in a Turnout runtime, whose
ClientSecretCredential signs in at the double's token endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from turnout.testing import ConformanceTarget, WorkflowComponentSuite

from .arm_double import ArmDouble
from .support import logicapps_target, runtime_target


class TestLogicAppsConformance(WorkflowComponentSuite):
    """Every check of the suite, gated by the features the component declares."""

    @pytest_asyncio.fixture(params=["direct", "runtime"])
    async def target(
        self,
        request: pytest.FixtureRequest,
        arm_double: ArmDouble,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> AsyncIterator[ConformanceTarget]:
        if request.param == "direct":
            async with logicapps_target(arm_double) as target:
                yield target
            return
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", arm_double.base_url)
        async with runtime_target(arm_double, tmp_path / "components") as target:
            yield target
