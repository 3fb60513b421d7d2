"""Opt-in: the conformance suite against real Azure Logic Apps.

Runs only when ``TURNOUT_LOGICAPPS_LIVE_SUBSCRIPTION`` and
``TURNOUT_LOGICAPPS_LIVE_RESOURCE_GROUP`` are set, and skips otherwise, in CI
too (CI has no Azure account). It signs in with azure-identity's
DefaultAzureCredential, creates the role Logic Apps under unique names in the
resource group, and deletes them afterwards. The waiter role is left out: a
real HTTP Webhook action needs a subscribe endpoint on the internet that
answers, which these tests do not have.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from turnout import AsyncWorkflowClient
from turnout.testing import ConformanceTarget, WorkflowComponentSuite
from turnout_logicapps import LogicAppsComponent, LogicAppsMetadata

from . import definitions
from .support import REASONS

SUBSCRIPTION = os.environ.get("TURNOUT_LOGICAPPS_LIVE_SUBSCRIPTION", "")
GROUP = os.environ.get("TURNOUT_LOGICAPPS_LIVE_RESOURCE_GROUP", "")
LOCATION = os.environ.get("TURNOUT_LOGICAPPS_LIVE_LOCATION", "westeurope")

pytestmark = pytest.mark.skipif(
    not (SUBSCRIPTION and GROUP),
    reason="live Azure tests are opt-in: set TURNOUT_LOGICAPPS_LIVE_SUBSCRIPTION and "
    "TURNOUT_LOGICAPPS_LIVE_RESOURCE_GROUP (and sign in for DefaultAzureCredential)",
)


class TestLiveLogicApps(WorkflowComponentSuite):
    """The suite against Logic Apps in the given resource group."""

    @pytest_asyncio.fixture
    async def target(self) -> AsyncIterator[ConformanceTarget]:
        from azure.identity import DefaultAzureCredential
        from azure.mgmt.logic import LogicManagementClient
        from azure.mgmt.logic.models import Workflow

        suffix = uuid.uuid4().hex[:8]
        roles = {
            "echo": (f"turnout-echo-{suffix}", definitions.echo()),
            "sleeper": (f"turnout-sleeper-{suffix}", definitions.sleeper()),
            "failing": (f"turnout-failing-{suffix}", definitions.failing()),
        }
        arm = LogicManagementClient(DefaultAzureCredential(), SUBSCRIPTION)
        for name, definition in roles.values():
            arm.workflows.create_or_update(GROUP, name, Workflow(location=LOCATION, definition=definition))
        metadata = LogicAppsMetadata.model_validate({"subscriptionId": SUBSCRIPTION, "resourceGroup": GROUP})
        component = LogicAppsComponent(metadata, name="live")
        await component.open()
        try:
            yield ConformanceTarget(
                AsyncWorkflowClient(component),
                **{role: name for role, (name, _d) in roles.items()},
                failure_message=definitions.FAILURE_MESSAGE,
                failure_error_type=definitions.FAILURE_CODE,
                timeout=120.0,
                clock_skew=5.0,
                reasons={**REASONS, "waiter": "a real webhook needs a subscribe endpoint on the internet"},
            )
        finally:
            await component.close()
            for name, _definition in roles.values():
                arm.workflows.delete(GROUP, name)
            arm.close()
