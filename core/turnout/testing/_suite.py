"""The workflow-component conformance suite: subclass it in a test module and give it a target."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
import pytest_asyncio

from ._checks_core import CoreChecks
from ._checks_management import ManagementChecks
from ._harness import Conformance
from ._target import ConformanceTarget


class WorkflowComponentSuite(CoreChecks, ManagementChecks):
    """Every check a workflow component must pass, written once against the client.

    Subclass it in a module whose name pytest collects (``class TestMyEngine(
    WorkflowComponentSuite)``) and override the ``target`` fixture: an async
    generator fixture that starts the component, yields a
    :class:`ConformanceTarget` and stops the component afterwards. Each check
    is gated by the features the component declares, and
    ``test_feature_declaration`` checks the other side: an undeclared feature
    is refused with :class:`turnout.Unsupported`. Parametrize ``target`` to run
    the suite against several components or configurations.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio, pytest.mark.turnout_conformance]

    @pytest.fixture
    def target(self) -> ConformanceTarget:
        """Override in the subclass: yield a :class:`ConformanceTarget` of a started component."""
        pytest.fail(
            f"{type(self).__name__} must define the 'target' fixture: an async generator fixture that "
            "starts the component and yields a turnout.testing.ConformanceTarget (see docs/testing.md)",
            pytrace=False,
        )

    @pytest_asyncio.fixture
    async def conformance(self, target: ConformanceTarget) -> AsyncIterator[Conformance]:
        """The target seen by one check; terminates the check's leftover instances afterwards."""
        if not isinstance(target, ConformanceTarget):
            pytest.fail(
                f"the 'target' fixture gave {type(target).__name__}, not a ConformanceTarget: define it "
                "with @pytest_asyncio.fixture (or set asyncio_mode = 'auto') and yield the target",
                pytrace=False,
            )
        harness = Conformance(target)
        yield harness
        await harness.cleanup()
