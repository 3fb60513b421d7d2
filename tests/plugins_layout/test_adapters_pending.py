"""The three external adapters validate their metadata but do not pretend to run workflows yet.

Their engine calls are later issues; until then, starting a runtime with one
of their components fails with a ComponentError that names the file and the
component, never with a half-working component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout._plugins import PLUGINS_ENV, load_registry

from .conftest import NOT_IMPLEMENTED, component_yaml

MINIMAL = [
    ("temporal", "workflow.temporal", {}),
    ("aws_stepfunctions", "workflow.aws.stepfunctions", {"region": "us-east-1"}),
    (
        "logicapps",
        "workflow.azure.logicapps",
        {"subscriptionId": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "resourceGroup": "rg"},
    ),
]


@pytest.mark.parametrize(("entry_point", "component_type", "metadata"), MINIMAL, ids=[m[0] for m in MINIMAL])
async def test_runtime_start_refuses_with_file_and_component(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    entry_point: str,
    component_type: str,
    metadata: dict[str, Any],
) -> None:
    monkeypatch.setenv(PLUGINS_ENV, entry_point)
    path = tmp_path / "orders.yaml"
    path.write_text(component_yaml(component_type, metadata, name="orders"))
    runtime = turnout.AsyncRuntime(resources=path, registry=load_registry(), working_dir=tmp_path)
    with pytest.raises(turnout.ComponentError) as caught:
        await runtime.start()
    error = caught.value
    assert NOT_IMPLEMENTED in error.message
    assert str(path) in error.message and "component 'orders'" in error.message
    assert (error.file, error.component) == (str(path), "orders")
    with pytest.raises(turnout.TurnoutError, match="not started"):
        runtime.client()
