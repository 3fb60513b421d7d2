"""Run the ``console`` blocks of a docs page, in order, against a running server.

The convention is docs/components.md's:

- In a ```` ```console ```` block, a line starting with ``$ `` is a command
  (a line ending in ``\\`` continues on the next); the lines after it, up to the
  next command, are its expected output. It runs in bash, in the scratch
  folder, with the variables the page exported so far.
- An expected line ``...`` matches any number of lines; a line ending in
  ``...`` matches any line that starts with the rest. Leading and trailing
  blank space of each line is ignored.
- A command whose expected output is ``[exit N]`` on its last line must exit
  with N; every other command must exit 0.
- ```` ```console norun ```` blocks are shown, not run (each says where it is
  tested instead).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

BLOCK = re.compile(r"^```console([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"^\[exit (\d+)\]$")


@dataclass
class Command:
    """One ``$`` command of a page, with what it must print and its exit status."""

    line: int
    text: str
    expected: list[str]
    exit_status: int


def commands(page: Path) -> list[Command]:
    """Every command of the page's runnable console blocks, in order."""
    text = page.read_text(encoding="utf-8")
    found: list[Command] = []
    for match in BLOCK.finditer(text):
        if "norun" in match.group(1):
            continue
        first_line = text.count("\n", 0, match.start(2)) + 1
        lines = match.group(2).splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            if not line.startswith("$ "):
                raise AssertionError(
                    f"{page.name}:{first_line + index}: expected a '$ ' command, got {line!r}"
                )
            parts = [line[2:]]
            while parts[-1].endswith("\\") and index + 1 < len(lines):
                index += 1
                parts.append(lines[index])
            command = Command(first_line + index, "\n".join(parts), [], 0)
            index += 1
            while index < len(lines) and not lines[index].startswith("$ "):
                command.expected.append(lines[index].strip())
                index += 1
            if command.expected and EXIT.match(command.expected[-1]):
                command.exit_status = int(EXIT.match(command.expected.pop()).group(1))  # type: ignore[union-attr]
            found.append(command)
    return found


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` fits ``expected``, where ``...`` lines are wildcards."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    fits = actual[0].startswith(head[:-3]) if head.endswith("...") else actual[0] == head
    return fits and matches(rest, actual[1:])


def _split_pipeline(script: str) -> tuple[str, str | None]:
    """The first command of a pipeline and the rest (``|`` outside quotes), joined continuation lines."""
    script = script.replace("\\\n", " ")
    quote = ""
    for index, char in enumerate(script):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "|" and script[index + 1 : index + 2] != "|":
            return script[:index].strip(), script[index + 1 :].strip()
    return script.strip(), None


def _run_turnout(command: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run a ``turnout ...`` command with click in this process (no interpreter start-up per command)."""
    from click.testing import CliRunner

    from turnout._cli import main

    result = CliRunner().invoke(main, shlex.split(command)[1:], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run(page: Path, command: Command, *, cwd: Path, env: dict[str, str], replace: dict[str, str]) -> None:
    """Run one command and check its output and exit status; ``replace`` rewrites the command (ports).

    A pipeline that starts with ``turnout`` runs that command in this process
    (the rest of the pipeline in bash, fed its output), with ``cwd`` as the
    current folder: the same result as the shell gives, much faster.
    """
    script = command.text
    for old, new in replace.items():
        script = script.replace(old, new)
    first, rest = _split_pipeline(script)
    if first.startswith("turnout "):
        previous = Path.cwd()
        os.chdir(cwd)
        try:
            status, stdout, stderr = _run_turnout(first, env)
        finally:
            os.chdir(previous)
        if rest is not None:
            tail = subprocess.run(
                ["bash", "-o", "pipefail", "-c", rest],
                cwd=cwd,
                env=env,
                input=stdout,
                capture_output=True,
                text=True,
                timeout=60,
            )
            status = status or tail.returncode
            stdout, stderr = tail.stdout, stderr + tail.stderr
    else:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        status, stdout, stderr = result.returncode, result.stdout, result.stderr
    where = f"{page.name}:{command.line}: {command.text}"
    assert status == command.exit_status, (
        f"{where}\nexited {status}, expected {command.exit_status}\n{stdout}{stderr}"
    )
    actual = [line.strip() for line in (stdout + stderr).splitlines()]
    assert matches(command.expected, actual), (
        f"{where}\nexpected:\n" + "\n".join(command.expected) + "\nactual:\n" + "\n".join(actual)
    )
