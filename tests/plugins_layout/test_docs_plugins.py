"""docs/plugins.md stays true: its Python runs, and it names what the code offers.

The ```python blocks run in order, as one script, in a fresh module (their
line numbers are kept, so a traceback points into the page).
"""

from __future__ import annotations

import re
import sys
import types

import pytest

import turnout
from turnout import Feature
from turnout._plugins import PLUGINS_ENV, HookSpecs

from .conftest import ROOT

DOC = ROOT / "docs" / "plugins.md"


def _python_script() -> tuple[str, int]:
    """The page's Python blocks as one script, each line at its own line number, and the block count."""
    out: list[str] = []
    inside = False
    blocks = 0
    for line in DOC.read_text(encoding="utf-8").splitlines():
        fence = line.strip()
        if not inside and fence == "```python":
            inside, blocks = True, blocks + 1
            out.append("")
        elif inside and fence == "```":
            inside = False
            out.append("")
        else:
            out.append(line if inside else "")
    assert not inside, "an unclosed ```python block"
    return "\n".join(out), blocks


def test_every_code_block_is_python_or_not_code() -> None:
    """Every Python example must be in a ```python block, or this test would not run it."""
    fences = re.findall(r"^```(\S*)", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    languages = {f for f in fences if f}
    assert languages <= {"python", "toml", "yaml", ""}, languages


def test_python_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    script, blocks = _python_script()
    assert blocks >= 4
    monkeypatch.setenv(PLUGINS_ENV, "")  # only the plugin the page defines
    module = types.ModuleType("turnout_docs_plugins_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(script, str(DOC), "exec"), module.__dict__)
    assert "workflow.acme" in module.registry
    assert issubclass(module.AcmeWorkflowComponent, turnout.WorkflowComponent)


def test_every_hook_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    hooks = [name for name in vars(HookSpecs) if name.startswith("turnout_")]
    assert hooks
    for name in hooks:
        assert f"`{name}(" in text, f"docs/plugins.md does not document the hook {name}"


def test_every_feature_is_in_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    for feature in Feature:
        assert f"| `{feature.value}` |" in text, f"docs/plugins.md does not list the feature {feature.value}"


def test_named_turnout_classes_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"\bturnout\.([A-Z]\w*)", text))
    assert named, "the page names no turnout.* class"
    assert named <= set(turnout.__all__), sorted(named - set(turnout.__all__))


def test_conformance_section_is_there() -> None:
    headings = re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert "Running the conformance suite" in headings
    assert "Start from the template" in headings
