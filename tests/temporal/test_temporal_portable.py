"""The same workflows, unchanged, on the built-in engine and on Temporal: their outcomes must agree.

Each scenario of ``portable.py`` runs on both engines at once (the built-in
engine on SQLite under ``tmp_path``, Temporal through ``hostWorker: true``),
and both outcomes must equal each other and the one the scenario expects.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import turnout

from .conftest import component_file
from .portable import SCENARIOS, expected, matches, play, wf


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_same_outcome_on_both_engines(
    name: str, tmp_path: Path, temporal_address: str, task_queue: str
) -> None:
    scenario = SCENARIOS[name]
    resources = component_file(tmp_path / "components", temporal_address, task_queue, hostWorker="true")
    async with (
        turnout.AsyncRuntime(workflows=wf, working_dir=tmp_path / "builtin") as builtin,
        turnout.AsyncRuntime(resources, wf, working_dir=tmp_path / "temporal") as temporal,
    ):
        assert builtin.client().component.component_type == "workflow.builtin"
        assert temporal.client().component.component_type == "workflow.temporal"
        on_builtin, on_temporal = await asyncio.gather(
            play(builtin.client(), scenario), play(temporal.client(), scenario)
        )
    assert matches(on_builtin, scenario), f"built-in engine: {on_builtin}\nexpected: {expected(scenario)}"
    assert on_temporal == on_builtin, f"Temporal: {on_temporal}\nbuilt-in engine: {on_builtin}"
