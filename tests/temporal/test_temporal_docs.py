"""The Temporal docs stay true, and the authoring guide's examples run unchanged on Temporal.

docs/engines/temporal.md: its component files are written (pointed at the
test server and at task queues of their own) and its Python examples run.
docs/authoring.md: every example runs with ``turnout.Runtime`` and
``turnout.AsyncRuntime`` given a Temporal component with ``hostWorker``
instead of the built-in engine; the few that assert what only the built-in
engine shows (its history's event kinds) are listed with the reason.
"""

from __future__ import annotations

import re
import sys
import types
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import turnout
from turnout_temporal import STATUS_MAP, TemporalMetadata
from turnout_temporal._mapping import S

from .conftest import component_file

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "engines" / "temporal.md"
GUIDE = ROOT / "docs" / "authoring.md"
MARKER = re.compile(r"^<!--\s*(example|file):\s*([\w./-]+)\s*-->$")


@dataclass
class Blocks:
    """The marked code blocks of a page: examples (python, by name) and files (by path)."""

    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def source(self, name: str) -> str:
        """An example's blocks as one script whose line numbers are the page's."""
        lines: list[str] = []
        for first_line, code in self.examples[name]:
            lines += [""] * (first_line - 1 - len(lines))
            lines += code.splitlines()
        return "\n".join(lines) + "\n"


def parse(path: Path) -> Blocks:
    """Every fenced block preceded by ``<!-- example: NAME -->`` or ``<!-- file: PATH -->``."""
    blocks = Blocks()
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("```") or line.strip() == "```":
            continue
        previous = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(previous)
        if marker is None:
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        code = "\n".join(lines[index + 1 : end])
        if marker.group(1) == "example":
            blocks.examples.setdefault(marker.group(2), []).append((index + 2, code))
        else:
            blocks.files[marker.group(2)] = code
    return blocks


def run_script(source: str, filename: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real module, so that pydantic models, dataclasses and type hints resolve as in a user's file.
    module = types.ModuleType(f"docs_temporal_{name.replace('-', '_')}")
    module.__file__ = str(filename)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, str(filename), "exec"), module.__dict__)


PAGE_BLOCKS = parse(PAGE)


# -- docs/engines/temporal.md ------------------------------------------------------------------


def test_the_full_example_runs(
    tmp_path: Path, temporal_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(PAGE_BLOCKS.files) == {"components/orders.yaml", "components/reports.yaml"}
    for relative, text in PAGE_BLOCKS.files.items():
        document = yaml.safe_load(text)
        for item in document["spec"]["metadata"]:
            if item["name"] == "hostPort":
                item["value"] = temporal_address
            if item["name"] == "taskQueue":  # the page's queue names, made unique to this run
                item["value"] = f"{item['value']}-{uuid.uuid4().hex[:8]}"
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    source = PAGE_BLOCKS.source("orders").replace(' == "orders"', '.startswith("orders-")')
    run_script(source, PAGE, "orders", monkeypatch)


def test_the_dev_server_example_runs(monkeypatch: pytest.MonkeyPatch, temporal_address: str) -> None:
    run_script(PAGE_BLOCKS.source("dev-server"), PAGE, "dev-server", monkeypatch)


def test_every_metadata_field_is_in_the_table() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    for name, info in TemporalMetadata.model_fields.items():
        alias = info.alias or name
        assert any(f"`{alias}`" in row.split("|")[1] for row in rows), f"{PAGE.name} does not list {alias}"


@pytest.mark.parametrize("value", sorted(STATUS_MAP), ids=lambda v: S.Name(v))
def test_the_status_table_is_the_code(value: int) -> None:
    name = S.Name(value).removeprefix("WORKFLOW_EXECUTION_STATUS_")
    row = next(
        (line for line in PAGE.read_text(encoding="utf-8").splitlines() if line.startswith(f"| `{name}` ")),
        None,
    )
    assert row is not None, f"{PAGE.name} has no row for {name}"
    assert f"({value})" in row
    mapped = STATUS_MAP[value]
    turnout_side = row.split("|")[2]
    if mapped is None:
        assert "refused" in turnout_side
    else:
        assert f"`{mapped.value}`" in turnout_side


# -- docs/authoring.md on Temporal ----------------------------------------------------------------

GUIDE_BLOCKS = parse(GUIDE)

ENGINE_SPECIFIC = {
    "retries": "asserts the built-in engine's history event kinds (TaskScheduled)",
    "continue-as-new": "asserts the built-in engine's history event kinds (WorkflowStarted)",
    "how-it-runs": "asserts the built-in engine's history event kinds and turns",
    "versioning": "asserts the built-in engine's non-determinism message (Temporal words it its own way)",
}
"""Examples that fail on Temporal every time, for the reason given (strict xfails)."""


def test_the_guide_is_all_here() -> None:
    assert len(GUIDE_BLOCKS.examples) >= 20
    assert set(ENGINE_SPECIFIC) <= set(GUIDE_BLOCKS.examples)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.xfail(reason=ENGINE_SPECIFIC[name], strict=True)])
        if name in ENGINE_SPECIFIC
        else name
        for name in GUIDE_BLOCKS.examples
    ],
)
def test_guide_example_runs_on_temporal(
    name: str, tmp_path: Path, temporal_address: str, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each example of docs/authoring.md, its runtimes pointed at Temporal through a component file."""
    resources = component_file(tmp_path / "components", temporal_address, task_queue, hostWorker="true")
    real_runtime, real_async_runtime = turnout.Runtime, turnout.AsyncRuntime

    def on_temporal(real: Any) -> Any:
        def make(resources_: Any = None, workflows: Any = None, **options: Any) -> Any:
            assert resources_ is None, "the guide's examples use the built-in engine's defaults"
            return real(resources, workflows, **options)

        return make

    monkeypatch.setattr(turnout, "Runtime", on_temporal(real_runtime))
    monkeypatch.setattr(turnout, "AsyncRuntime", on_temporal(real_async_runtime))
    monkeypatch.chdir(tmp_path)
    run_script(GUIDE_BLOCKS.source(name), GUIDE, f"guide_{name}", monkeypatch)
