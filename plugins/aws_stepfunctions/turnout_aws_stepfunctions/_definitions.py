"""The ``definitions`` metadata: Amazon States Language files that become state machines at start-up.

Files are read when the component is built (so a missing or broken file
stops start-up before anything connects), and created or updated in Step
Functions when the component opens. One file is one workflow: its name is
the file name without ``.asl.json`` / ``.asl.yaml`` (or ``.json`` /
``.yaml`` / ``.yml``), and it is also the state machine's name.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from turnout import ComponentError

FIELD = "spec.metadata.definitions"
SUFFIXES = (".asl.json", ".asl.yaml", ".asl.yml", ".json", ".yaml", ".yml")

# Step Functions' rule for names: 1-80 characters, none of whitespace, brackets,
# wildcards, the punctuation below or control characters.
_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")


@dataclass(frozen=True)
class Definition:
    """One ASL file: the workflow (and state machine) name, where it came from, and its document."""

    workflow: str
    path: Path
    document: dict[str, Any]

    @property
    def text(self) -> str:
        """The definition as Step Functions stores it (JSON)."""
        return json.dumps(self.document, ensure_ascii=False, indent=2)


def check_machine_name(name: str) -> str | None:
    """Why ``name`` cannot be a state machine's name, or None when it can."""
    if _NAME.match(name):
        return None
    if not name or len(name) > 80:
        return "a state machine name has 1 to 80 characters"
    return (
        "a state machine name has no whitespace, brackets, wildcards, control characters or any of "
        '" # % \\ ^ | ~ ` $ & , ; : /'
    )


def workflow_name(path: Path) -> str:
    """The workflow name a definition file gives: its name without the ASL suffix."""
    lowered = path.name.lower()
    for suffix in SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _error(reason: str, file: str | None, component: str | None) -> ComponentError:
    return ComponentError(reason, file=file, component=component, field=FIELD)


def _files(patterns: Iterable[str], working_dir: Path, file: str | None, component: str | None) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if not full.is_absolute():
            full = working_dir / full
        if glob.has_magic(str(full)):
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
            if not matches:
                raise _error(
                    f"the pattern '{pattern}' matches no file (looked in {full.parent}; relative "
                    f"patterns start at the working directory {working_dir})",
                    file,
                    component,
                )
            found.extend(matches)
        elif full.is_file():
            found.append(full)
        else:
            raise _error(
                f"no definition file '{pattern}' (looked for {full}; relative paths start at the working "
                f"directory {working_dir})",
                file,
                component,
            )
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def _parse(path: Path, file: str | None, component: str | None) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read the definition file {path}: {exc}", file, component) from None
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        document = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "YAML" if is_yaml else "JSON"
        raise _error(f"{path} is not valid {kind}: {exc}", file, component) from None
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("StartAt"), str)
        or not isinstance(document.get("States"), dict)
    ):
        raise _error(
            f"{path} is not an Amazon States Language definition: expected an object with "
            '"StartAt" (the first state\'s name) and "States" (the states by name)',
            file,
            component,
        )
    return document


def load_definitions(
    patterns: Iterable[str],
    working_dir: Path,
    *,
    taken: Mapping[str, str] | None = None,
    file: str | None = None,
    component: str | None = None,
) -> list[Definition]:
    """Read every file the patterns name; refuse what cannot become a state machine.

    ``taken`` holds the workflow names already mapped by ``stateMachines``: a
    definition may not give one of them a second meaning.
    """
    definitions: dict[str, Definition] = {}
    for path in _files(patterns, working_dir, file, component):
        name = workflow_name(path)
        problem = check_machine_name(name)
        if problem is not None:
            raise _error(f"{path}: its name '{name}' cannot name a state machine: {problem}", file, component)
        if name in definitions:
            raise _error(
                f"{definitions[name].path} and {path} both define the workflow '{name}'; rename one",
                file,
                component,
            )
        if taken and name in taken:
            raise _error(
                f"{path} defines the workflow '{name}', which stateMachines already maps to {taken[name]}; "
                "remove one of the two",
                file,
                component,
            )
        definitions[name] = Definition(name, path, _parse(path, file, component))
    return list(definitions.values())
