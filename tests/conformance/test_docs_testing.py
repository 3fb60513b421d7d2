"""docs/testing.md stays true: its examples run, and every check of the suite is documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from turnout import Feature
from turnout.testing import WorkflowComponentSuite
from turnout.testing._harness import FEATURE_TESTS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
TEMPLATE = ROOT / "plugins" / "_template"

BLOCK = re.compile(r"^```(?P<lang>\w+)(?P<info>[^\n]*)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(lang: str) -> list[tuple[str | None, str]]:
    """Each ```<lang> block of the page: (its file= name or None, its text)."""
    found = []
    for match in BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        if match["lang"] == lang:
            named = re.search(r"file=(\S+)", match["info"])
            found.append((named.group(1) if named else None, match["code"]))
    return found


def python_blocks() -> list[tuple[str | None, str]]:
    """Each ```python block of the page."""
    return blocks("python")


def suite_checks() -> list[str]:
    return sorted(name for name in dir(WorkflowComponentSuite) if name.startswith("test_"))


@pytest.mark.parametrize("name", [name for name, _ in python_blocks() if name is not None])
def test_example_runs(pytester: pytest.Pytester, name: str) -> None:
    """Each test module on the page runs the suite with no failure and no error."""
    if name == "test_example_engine.py" and not (TEMPLATE / "turnout_example" / "_plugin.py").exists():
        pytest.skip("plugins/_template has no workflow.example plugin yet")
    code = dict(python_blocks())[name]
    pytester.makepyfile(**{name.removesuffix(".py"): code})
    for file, text in blocks("toml"):
        assert file is not None
        (pytester.path / file).write_text(text, encoding="utf-8")
    pytester.syspathinsert(TEMPLATE)  # the template plugin is never installed
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rfEs")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "errors" not in outcomes, result.stdout.str()
    assert outcomes.get("passed", 0) >= 25, result.stdout.str()
    assert result.ret == 0


def test_other_examples_compile() -> None:
    """The snippets that are not whole test modules are valid Python."""
    for name, code in python_blocks():
        if name is None:
            ast.parse(code)


def test_every_check_is_documented() -> None:
    """Each check of the suite has a row in the page's tables, and no row names a missing check."""
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(test_\w+)", text, re.MULTILINE))
    assert documented == set(suite_checks())


def test_feature_messages_name_real_checks() -> None:
    """The check named for each feature in failure messages exists."""
    assert set(FEATURE_TESTS) == set(Feature)
    for check in FEATURE_TESTS.values():
        assert check in suite_checks()


def test_role_table_matches_the_target() -> None:
    """The roles table lists exactly the target's roles."""
    from turnout.testing import ROLES

    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The workflow roles", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)) == set(ROLES)
