"""The helper every conformance check uses: start by role, wait, poll with a deadline, clean up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from .._errors import TurnoutError
from .._models import Feature, RuntimeStatus, WorkflowState
from ._target import ConformanceTarget

FEATURE_TESTS: dict[Feature, str] = {
    Feature.START_AT: "test_start_at_keeps_the_instance_pending",
    Feature.LIST: "test_list_filters",
    Feature.TERMINATE: "test_terminate",
    Feature.CANCEL: "test_cancel",
    Feature.RAISE_EVENT: "test_raise_event_delivers_data",
    Feature.PAUSE: "test_pause_and_resume",
    Feature.PURGE: "test_purge_finished_instance",
    Feature.HISTORY: "test_history_is_ordered",
    Feature.REPLACE: "test_replace_finished_instance",
    Feature.WORKFLOW_CODE: "test_unknown_workflow_is_refused",
    Feature.DEFINITIONS: "test_stored_definition_starts_by_name",
}


class Conformance:
    """One check's view of the target: starts instances by role and finds out what became of them.

    Every instance it starts is terminated at teardown when the component can
    terminate, so that a shared server does not fill up with sleepers.
    """

    def __init__(self, target: ConformanceTarget) -> None:
        self.target = target
        self.client = target.client
        self.started: list[str] = []

    @property
    def features(self) -> frozenset[Feature]:
        """What the component under test declares."""
        return self.client.features

    def requires(self, *features: Feature) -> None:
        """Skip the check unless the component declares every one of ``features``."""
        for feature in features:
            if feature in self.features:
                continue
            if feature is Feature.WORKFLOW_CODE:
                pytest.skip(f"{self.target.component_type} runs no Turnout code (no Feature.WORKFLOW_CODE)")
            pytest.skip(
                f"{self.target.component_type} does not declare Feature.{feature.name}; its refusal "
                f"is checked by test_feature_declaration[{feature.value}]"
            )

    @staticmethod
    def new_id(prefix: str = "conf") -> str:
        """A fresh, valid instance id (engines on shared servers keep old instances)."""
        return f"{prefix}-{uuid.uuid4().hex[:16]}"

    async def start(
        self,
        role: str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | timedelta | None = None,
        replace: bool = False,
    ) -> str:
        """Start the workflow that plays ``role`` (skips when the target has none)."""
        name = self.target.role(role)
        instance_id = await self.client.start(
            name, input, instance_id=instance_id, start_at=start_at, replace=replace
        )
        self.started.append(instance_id)
        return instance_id

    async def wait(self, instance_id: str, *until: RuntimeStatus) -> WorkflowState:
        """Wait (at most the target's timeout) until one of ``until``, or the end."""
        return await self.client.wait(instance_id, until=until or None, timeout=self.target.timeout)

    async def finish(self, instance_id: str, expected: RuntimeStatus) -> WorkflowState:
        """Wait for the end and check it is ``expected``; the failure, if any, is in the message."""
        state = await self.wait(instance_id)
        assert state.runtime_status is expected, (
            f"{instance_id} ended {state.runtime_status}, expected {expected} "
            f"(failure: {state.failure}, output: {state.output!r}) on {self.target.describe()}"
        )
        return state

    async def eventually(
        self, instance_id: str, predicate: Callable[[WorkflowState], bool], what: str
    ) -> WorkflowState:
        """Poll ``get`` until ``predicate(state)`` holds; fail after the target's timeout."""
        deadline = time.monotonic() + self.target.timeout
        delay = 0.01
        state = None
        while True:
            state = await self.client.get(instance_id)
            if state is not None and predicate(state):
                return state
            if time.monotonic() >= deadline:
                seen = "no instance" if state is None else f"status {state.runtime_status}"
                pytest.fail(f"{instance_id}: {what} did not happen within {self.target.timeout:g}s ({seen})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def running(self, instance_id: str) -> WorkflowState:
        """Wait until the instance is RUNNING (a check that needs it running starts here)."""
        state = await self.wait(instance_id, RuntimeStatus.RUNNING)
        assert state.runtime_status is RuntimeStatus.RUNNING, (
            f"{instance_id} ended {state.runtime_status} before it was seen RUNNING "
            f"(failure: {state.failure})"
        )
        return state

    async def restart(self) -> None:
        """Restart the component on the same state (skips when the target cannot)."""
        if self.target.restart is None:
            reason = self.target.reasons.get("restart") or "the target gives no restart function"
            pytest.skip(f"{self.target.component_type} target cannot restart: {reason}")
        self.client = await self.target.restart()
        self.target.client = self.client

    async def cleanup(self) -> None:
        """Terminate what is still running (best effort: a failing cleanup hides no check)."""
        if Feature.TERMINATE not in self.features:
            return
        for instance_id in self.started:
            try:
                state = await self.client.get(instance_id)
                if state is not None and not state.runtime_status.is_terminal:
                    await self.client.terminate(instance_id, "conformance suite cleanup")
            except TurnoutError:
                pass
