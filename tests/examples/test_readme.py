"""The README's Python example runs as written and prints the workflow's output."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    """The first block of the README is exactly `make demo` and `make test` (CI and users rely on it)."""
    first = re.search(r"```\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [code] = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert out.getvalue().strip() == "{'receipt': {'charged': 42}, 'approved': True}"
    assert (tmp_path / ".turnout" / "dapr.db").is_file()
