"""The examples of docs/declarative-0.8.md run, each in an empty temporary directory.

A python block is preceded by ``<!-- example: NAME -->``; the code is
compiled with the doc's name and line numbers, so a failure points at the doc.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "declarative-0.8.md"
MARKER = re.compile(r"^<!--\s*example:\s*([\w-]+)\s*-->$")


def examples() -> dict[str, str]:
    """Each named example as one script whose line numbers are the doc's."""
    lines = DOC.read_text().splitlines()
    found: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        if line.strip() != "```python":
            continue
        marker = MARKER.match(lines[index - 1].strip()) if index else None
        assert marker, f"{DOC.name}:{index + 1}: a python block without '<!-- example: NAME -->' above it"
        end = lines.index("```", index + 1)
        script = found.setdefault(marker.group(1), [])
        script += [""] * (index + 1 - len(script)) + lines[index + 1 : end]
    return {name: "\n".join(script) + "\n" for name, script in found.items()}


@pytest.mark.parametrize("name", sorted(examples()))
def test_the_example_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the runtime keeps its SQLite file under ./.turnout
    exec(compile(examples()[name], str(DOC), "exec"), {"__name__": f"doc_example_{name}"})
