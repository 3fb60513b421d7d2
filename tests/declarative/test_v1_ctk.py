"""The CNCF Serverless Workflow conformance scenarios (CTK) and sdk-go's runner cases, on the built-in engine.

Each scenario's definition is read from the shared corpus; its input and
expectations from ``cases.json`` (the Gherkin steps, parsed here). HTTP
scenarios run against the loopback stub.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import turnout

from .conftest import Runner, corpus_dir, fault_of

_FOUND = corpus_dir()
CTK = sorted(p.stem for p in (_FOUND / "slwf-1.0").glob("ctk-*.yaml")) if _FOUND else ["corpus-absent"]
SDKGO = sorted(p.stem for p in (_FOUND / "slwf-1.0").glob("sdkgo-*.yaml")) if _FOUND else ["corpus-absent"]

_PROPERTIES = re.compile(r"should have properties (.+)$")
_CONTAINING = re.compile(r"should have a '([^']+)' property containing (\d+) items")


def _at(value: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        assert isinstance(value, dict) and key in value, f"no '{dotted}' in {value!r}"
        value = value[key]
    return value


def check_case(case: dict[str, Any], state: turnout.WorkflowState) -> None:
    """Assert what a CTK case's steps and expectations say about a finished instance."""
    steps = case.get("steps", [])
    faults = any("should fault" in step for step in steps) or "expected_error" in case
    if faults:
        fault = fault_of(state)
        for key, value in case.get("expected_error", {}).items():
            assert fault.get(key) == value, (key, fault)
        return
    assert state.runtime_status is turnout.RuntimeStatus.COMPLETED, state.failure
    if "expected_output" in case:
        assert state.output == case["expected_output"]
    for key, value in case.get("expected_properties", {}).items():
        assert _at(state.output, key) == value
    for step in steps:
        if match := _PROPERTIES.search(step):
            for name in re.findall(r"'([^']+)'", match.group(1)):
                _at(state.output, name)
        if match := _CONTAINING.search(step):
            assert len(_at(state.output, match.group(1))) == int(match.group(2))


@pytest.mark.parametrize("name", CTK)
async def test_ctk_scenario(name: str, slwf10: Path, cases: dict[str, Any], run: Runner) -> None:
    case = cases[name]
    state = await run(slwf10 / f"{name}.yaml", case.get("input"))
    check_case(case, state)


@pytest.mark.parametrize("name", SDKGO)
async def test_sdkgo_case(name: str, slwf10: Path, cases: dict[str, Any], run: Runner) -> None:
    case = cases[name]
    for variant in [case, *case.get("more_cases", [])]:
        state = await run(slwf10 / f"{name}.yaml", variant.get("input"))
        if "expected_error" in variant:
            fault = fault_of(state)
            for key, value in variant["expected_error"].items():
                assert fault[key] == value
            continue
        assert state.runtime_status is turnout.RuntimeStatus.COMPLETED, state.failure
        assert state.output == variant["expected_output"]


async def test_uncaught_fault_fails_the_instance_with_the_spec_type(slwf10: Path, run: Runner) -> None:
    state = await run(slwf10 / "ctk-try-try-raise-uncaught-error.yaml", {"petName": "Milou"})
    fault = fault_of(state)
    assert state.failure is not None
    assert state.failure.error_type == "https://serverlessworkflow.io/spec/1.0.0/errors/communication"
    assert fault["status"] == 404
    assert fault["instance"] == "/do/0/tryGetPet/try/0/getPet"
