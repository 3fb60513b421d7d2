"""Every Python example in docs/index.md runs, in order, as one script, and prints what it says.

Conventions in the page:

- ```python blocks run in document order in one namespace (a later block may
  use what an earlier one defined), in a fresh temporary working directory;
- a fenced block right after ``<!-- write: PATH -->`` is written to PATH
  (relative to that directory) before the blocks after it run;
- ``# prints: TEXT`` at the end of a line means the block's output contains TEXT.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "index.md"
FENCE = re.compile(r"(?:<!-- write: (?P<path>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.S | re.M)
PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$", re.M)


@dataclass
class Block:
    """One fenced block of the page."""

    lang: str
    body: str
    line: int
    write_to: str | None


def blocks(text: str) -> list[Block]:
    """The page's fenced blocks, in order."""
    return [
        Block(m["lang"], m["body"], text.count("\n", 0, m.start("body")) + 1, m["path"])
        for m in FENCE.finditer(text)
    ]


def test_the_page_has_python_examples() -> None:
    """Guards the extraction itself: the page's examples must be found."""
    found = blocks(PAGE.read_text(encoding="utf-8"))
    assert sum(b.lang == "python" for b in found) >= 5
    assert any(b.write_to for b in found)


def test_docs_index_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block in turn; a failure names the block's line in docs/index.md."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_index"}
    for block in blocks(PAGE.read_text(encoding="utf-8")):
        if block.write_to:
            target = tmp_path / block.write_to
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body, encoding="utf-8")
        if block.lang != "python":
            continue
        out = io.StringIO()
        try:
            code = compile(block.body, f"docs/index.md:{block.line}", "exec")
            with contextlib.redirect_stdout(out):
                exec(code, namespace)
        except Exception as exc:
            pytest.fail(f"the example at docs/index.md line {block.line} failed: {exc!r}\n{out.getvalue()}")
        for expected in PRINTS.findall(block.body):
            assert expected in out.getvalue(), (
                f"docs/index.md line {block.line}: expected output {expected!r}, got:\n{out.getvalue()}"
            )
