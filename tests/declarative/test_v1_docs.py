"""docs/declarative.md runs as written: its files are written out, its Python examples executed.

A fenced block preceded by ``<!-- file: NAME -->`` is written to NAME in an
empty directory; the python blocks preceded by ``<!-- example: NAME -->`` are
run there, those sharing a name as one script, with the doc's line numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "declarative.md"
MARKER = re.compile(r"^<!--\s*(example|file):\s*([\w.-]+)\s*-->$")


def blocks(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(files, examples)`` of the doc: file name -> content, example name -> script."""
    files: dict[str, str] = {}
    scripts: dict[str, list[str]] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        marker = MARKER.match(line.strip())
        if not marker:
            continue
        start = index + 1
        while not lines[start].startswith("```"):
            start += 1
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
        kind, name = marker.groups()
        if kind == "file":
            files[name] = "\n".join(lines[start + 1 : end]) + "\n"
        else:
            script = scripts.setdefault(name, [])
            script += [""] * (start + 1 - len(script))  # keep the doc's line numbers
            script += lines[start + 1 : end]
    return files, {name: "\n".join(code) + "\n" for name, code in scripts.items()}


FILES, EXAMPLES = blocks(DOC.read_text())


def test_the_doc_has_examples() -> None:
    assert set(EXAMPLES) == {"order-approval", "validation", "components", "schema-reference", "starts"}
    assert set(FILES) == {
        "order-approval.yaml",
        "quotes-component.yaml",
        "quote.sw.yaml",
        "order.schema.json",
        "priced-order.yaml",
        "starts-component.yaml",
        "heartbeat.start.yaml",
        "big-order.start.yaml",
        "audit.start.yaml",
    }


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_doc_example(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for file, content in FILES.items():
        (tmp_path / file).write_text(content)
    monkeypatch.chdir(tmp_path)
    exec(compile(EXAMPLES[name], str(DOC), "exec"), {"__name__": f"declarative_doc_{name}"})
