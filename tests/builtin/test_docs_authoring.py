"""Every ```python example in docs/authoring.md runs, each in an empty temporary directory.

A block is preceded by ``<!-- example: NAME -->``; blocks that share a name are
one example, run in order as one script (so a later block may use what an
earlier one defined). The code is compiled with the doc's file name and line
numbers, so a failing assertion points at the line of the doc.
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import turnout

DOC = Path(__file__).resolve().parents[2] / "docs" / "authoring.md"
MARKER = re.compile(r"^<!--\s*example:\s*([\w-]+)\s*-->$")

# Examples that show how the API should work but currently do not (engine or core bugs).
XFAIL: dict[str, str] = {}


@dataclass
class Example:
    """The blocks of one named example, as (first line number, code) pairs."""

    name: str
    blocks: list[tuple[int, str]] = field(default_factory=list)

    def source(self) -> str:
        """The blocks joined into one script whose line numbers are the doc's."""
        lines: list[str] = []
        for first_line, code in self.blocks:
            lines += [""] * (first_line - 1 - len(lines))
            lines += code.splitlines()
        return "\n".join(lines) + "\n"


def parse_examples(text: str) -> dict[str, Example]:
    """The named examples of a Markdown text; every python block must carry a marker."""
    examples: dict[str, Example] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```python":
            index += 1
            continue
        previous = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(previous)
        if marker is None:
            raise AssertionError(
                f"{DOC.name}:{index + 1}: a python block without '<!-- example: NAME -->' above it"
            )
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), None)
        if end is None:
            raise AssertionError(f"{DOC.name}:{index + 1}: unterminated python block")
        example = examples.setdefault(marker.group(1), Example(marker.group(1)))
        example.blocks.append((index + 2, "\n".join(lines[index + 1 : end])))
        index = end + 1
    return examples


EXAMPLES = parse_examples(DOC.read_text(encoding="utf-8"))


def _params() -> list[object]:
    params = []
    for name in EXAMPLES:
        marks = [pytest.mark.xfail(reason=XFAIL[name], strict=True)] if name in XFAIL else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", _params())
def test_example_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # A real module, so that pydantic models, dataclasses and type hints resolve as in a user's file.
    module = types.ModuleType(f"docs_authoring_{name.replace('-', '_')}")
    module.__file__ = str(DOC)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(EXAMPLES[name].source(), str(DOC), "exec"), module.__dict__)


def test_every_example_is_known_and_the_xfails_exist() -> None:
    assert len(EXAMPLES) >= 20
    assert set(XFAIL) <= set(EXAMPLES), "an xfail names an example the doc no longer has"


def _all_code() -> str:
    return "\n".join(code for example in EXAMPLES.values() for _, code in example.blocks)


@pytest.mark.parametrize(
    "member",
    sorted(name for name in vars(turnout.WorkflowContext) if not name.startswith("_")),
)
def test_every_context_member_has_a_running_example(member: str) -> None:
    assert f"ctx.{member}" in _all_code(), f"no example in {DOC.name} uses ctx.{member}"


@pytest.mark.parametrize("field_name", sorted(turnout.RetryPolicy.model_fields))
def test_every_retry_policy_field_has_a_running_example(field_name: str) -> None:
    assert f"{field_name}=" in _all_code(), f"no example in {DOC.name} sets RetryPolicy.{field_name}"


@pytest.mark.parametrize(
    "name", ["when_all", "when_any", "TaskFailedError", "EventTimeoutError", "WorkflowCancelled"]
)
def test_every_helper_has_a_running_example(name: str) -> None:
    assert f"turnout.{name}" in _all_code(), f"no example in {DOC.name} uses turnout.{name}"


@pytest.mark.parametrize("field_name", ["instance_id", "task_id", "attempt", "workflow_name"])
def test_activity_context_fields_have_a_running_example(field_name: str) -> None:
    assert re.search(rf"ctx\.{field_name}\b", _all_code())


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_internal_links_point_at_headings() -> None:
    text = DOC.read_text(encoding="utf-8")
    anchors = {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "the doc has no table of contents"
    assert links <= anchors, f"links to missing headings: {sorted(links - anchors)}"
