"""Loading a definition (either dialect) and registering it as a Turnout workflow."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import turnout

from ._definition import Definition, DefinitionError, Settings
from ._effects import install
from ._starts import SCHEDULER_SUFFIX, Starter, awaitless_runs, install_starts, schedule_of
from ._v1_model import parse_v1


def load_definition(text_or_path: str | os.PathLike[str], *, source: str | None = None) -> Definition:
    """Parse a definition from YAML or JSON text, or from a file; detect its dialect and validate it.

    A ``Path`` (or a one-line string naming an existing file) is read from
    disk and becomes the ``source``. Bad definitions raise
    :class:`DefinitionError` listing every problem with its JSON pointer.
    Text from elsewhere (an upload) goes to :func:`parse_definition`, which
    never reads a file.
    """
    if isinstance(text_or_path, os.PathLike) or (
        isinstance(text_or_path, str) and "\n" not in text_or_path and _is_file(text_or_path)
    ):
        path = Path(text_or_path)
        source = source or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError([("", f"cannot read the file: {exc}")], source=source) from None
        return parse_definition(text, source=source)
    return parse_definition(str(text_or_path), source=source)


def _is_file(text: str) -> bool:
    """Whether a one-line string names a file (JSON on one line may be too long to be a path at all)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def parse_definition(text: str, *, source: str | None = None) -> Definition:
    """Parse and validate a definition given as YAML or JSON text (never a file name)."""
    document = _parse(text, source)
    if not isinstance(document, dict):
        raise DefinitionError(
            [("", "expected a mapping (YAML or JSON object) at the top level")], source=source
        )
    meta = document.get("document")
    if isinstance(meta, dict) and "dsl" in meta:
        if not str(meta["dsl"]).startswith("1."):
            raise DefinitionError(
                [
                    (
                        "/document/dsl",
                        f"DSL version {meta['dsl']!r} is not supported: expected 1.x (or a 0.8 definition)",
                    )
                ],
                source=source,
            )
        return parse_v1(document, source)
    if "specVersion" in document or "states" in document:
        return _v08_module("_v08_model").parse_v08(document, source)
    raise DefinitionError(
        [
            (
                "",
                "cannot tell the dialect: expected 'document: {dsl: 1.x, ...}' (Serverless Workflow 1.0) "
                "or 'specVersion'/'states' (0.8)",
            )
        ],
        source=source,
    )


def _parse(text: str, source: str | None) -> Any:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style, perhaps; let the YAML parser say what is wrong
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError([("", f"not valid YAML or JSON{where}: {problem}")], source=source) from None


def _v08_module(name: str) -> Any:
    try:
        return importlib.import_module(f"turnout.declarative.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"turnout.declarative.{name}":
            raise
        raise DefinitionError(
            [("", "Serverless Workflow 0.8 definitions are not supported by this installation yet")]
        ) from None


@dataclass
class _RegistryState:
    """What :func:`register` has put on one ``Workflows`` registry."""

    settings: Settings
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    starter: Starter | None = None  # bound by the first register(..., starter=...)


_STATES: weakref.WeakKeyDictionary[turnout.Workflows, _RegistryState] = weakref.WeakKeyDictionary()


def register(
    workflows: turnout.Workflows,
    definition: Definition,
    *,
    settings: Settings | None = None,
    name: str | None = None,
    starter: Starter | None = None,
) -> str:
    """Register a workflow that interprets ``definition``; returns its name.

    The name is ``definition.name`` unless ``name`` is given (the built-in
    engine registers each stored version as ``name@version``).

    The effect activities (HTTP, document fetch, emit, start) are installed
    once per registry, bound to ``settings``: one registry has one set of
    settings. ``starter`` is how the registry's declarative workflows start
    independent instances (``run.await: false``, schedules, event starts); it
    too is bound once per registry. A definition with a schedule or an event
    start state also gets its scheduler, the workflow ``<name>:schedule``
    (see :func:`start_schedule`). Registering the same document twice is a
    no-op; another document under a name already taken is refused, and so is
    a definition that must start instances when the registry has no starter.
    """
    state = _STATES.get(workflows)
    if state is None:
        state = _RegistryState(settings or Settings())
        install(workflows, state.settings)
        install_starts(workflows, _starter_of(state))
        _STATES[workflows] = state
    elif settings is not None and settings != state.settings:
        raise ValueError(
            "this registry already runs declarative workflows with other settings; "
            "settings apply to a whole registry: pass the same Settings (or none) to every register() call"
        )
    if starter is not None and starter is not state.starter:
        if state.starter is not None:
            raise ValueError(
                "this registry already starts instances through another starter; a registry starts "
                "instances through one starter (one component): pass the same one to every register() call"
            )
        state.starter = starter
    if name is not None and name != definition.name:
        definition = dataclasses.replace(definition, name=name)
    known = state.documents.get(definition.name)
    if known is not None:
        if known == definition.document:
            return definition.name
        raise ValueError(
            f"a different definition named '{definition.name}' is already registered on this registry; "
            "rename one of them (document.name) or use another registry"
        )
    if workflows.has_workflow(definition.name):
        raise ValueError(
            f"a workflow named '{definition.name}' is already registered (as code); "
            "declarative workflows take their name from document.name: rename one of them"
        )
    awaitless = list(awaitless_runs(definition.document)) if definition.dialect == "1.0" else []
    if awaitless and state.starter is None:
        raise DefinitionError(
            [
                (
                    pointer,
                    "run.await: false starts an independent instance, and this registry has no starter: "
                    "pass register(..., starter=...) (a turnout.AsyncWorkflowClient, or a "
                    "turnout.declarative.ClientStarter bound once the runtime runs)",
                )
                for pointer in awaitless
            ],
            source=definition.source,
        )
    if definition.dialect == "0.8":
        registered: str = _v08_module("_v08_run").register_v08(workflows, definition, state.settings)
    else:
        from ._v1_run import workflow_function

        workflows.workflow(workflow_function(definition, state.settings), name=definition.name)
        registered = definition.name
    schedule = schedule_of(definition)
    if schedule is not None:
        from ._scheduler import scheduler_function

        scheduler = scheduler_function(definition, registered, schedule, state.settings)
        workflows.workflow(scheduler, name=registered + SCHEDULER_SUFFIX)
    state.documents[definition.name] = definition.document
    return registered


def _starter_of(state: _RegistryState) -> Callable[[], Starter | None]:
    """The registry's starter as the start activity finds it: when it runs, so it may be bound late."""
    return lambda: state.starter
