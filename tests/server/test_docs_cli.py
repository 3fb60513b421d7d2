"""docs/cli.md stays true: its console examples run in order against ``turnout serve``.

The commands find the server through TURNOUT_ADDRESS, as the page says they
can. See doc_console.py for the conventions.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import doc_console
from .conftest import ROOT, ServeProcess
from .test_docs_http import SERVE

PAGE = ROOT / "docs" / "cli.md"
COMMANDS = doc_console.commands(PAGE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    folder = tmp_path_factory.mktemp("docs-cli")
    shutil.copytree(
        ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns(".turnout", "__pycache__")
    )
    with ServeProcess(*SERVE.split(), cwd=folder) as process:
        yield process, folder


def test_the_page_shows_how_the_server_is_started() -> None:
    assert f"$ turnout serve {SERVE}\n" in PAGE.read_text()


@pytest.mark.parametrize("command", COMMANDS, ids=[f"line{c.line}" for c in COMMANDS])
def test_example(server: tuple[ServeProcess, Path], command: doc_console.Command) -> None:
    process, folder = server
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TURNOUT_ADDRESS": process.url,
        "COLUMNS": "200",
    }
    doc_console.run(PAGE, command, cwd=folder, env=env, replace={})
