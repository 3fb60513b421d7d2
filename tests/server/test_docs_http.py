"""docs/http-api.md stays true: its console examples run in order against ``turnout serve``.

The server is started as the page says (the examples' order workflow and
components, copied to a scratch folder), on a free port that replaces the
page's ``localhost:3500``. See doc_console.py for the conventions.
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

PAGE = ROOT / "docs" / "http-api.md"
SERVE = "--resources-path examples/components --workflows examples/order_workflow.py:wf"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    folder = tmp_path_factory.mktemp("docs-http")
    shutil.copytree(
        ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns(".turnout", "__pycache__")
    )
    with ServeProcess(*SERVE.split(), cwd=folder) as process:
        yield process, folder


def test_the_page_shows_how_the_server_is_started() -> None:
    assert f"$ turnout serve {SERVE}\n" in PAGE.read_text()


COMMANDS = doc_console.commands(PAGE)


@pytest.mark.parametrize("command", COMMANDS, ids=[f"line{c.line}" for c in COMMANDS])
def test_example(server: tuple[ServeProcess, Path], command: doc_console.Command) -> None:
    process, folder = server
    host = process.url.removeprefix("http://")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    doc_console.run(PAGE, command, cwd=folder, env=env, replace={"localhost:3500": host})
