"""The ``turnout`` command line.

``main`` is the root group; each area of commands is its own group added to it
(``components`` here; ``workflow`` and ``serve`` can live in their own modules
and be added with ``main.add_command``). The root group turns every
:class:`TurnoutError` into a message on stderr and exit status 2, so no
command prints a traceback for a user's mistake.
"""

from __future__ import annotations

import json
import os
import sys
import types
import typing
from collections.abc import Sequence
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from ._build import validate_specs
from ._errors import ComponentError, TurnoutError
from ._plugins import ENTRY_POINT_GROUP, PLUGINS_ENV, allowed_plugins, load_registry
from ._registry import KNOWN_DISTRIBUTIONS, ComponentRegistry, ComponentType
from ._specs import SkippedDocument, read_specs, yaml_name
from ._version import __version__

USER_ERROR = 2
"""Exit status for a user's mistake (bad file, unknown type), as for click's usage errors."""

INTERNAL_ERROR = 1
"""Exit status for a bug in Turnout or a plugin."""


class CliError(click.ClickException):
    """A TurnoutError shown to the user: ``Error: <message>`` on stderr, exit status 2."""

    exit_code = USER_ERROR


class TurnoutGroup(click.Group):
    """A click group that reports Turnout's errors as messages, never as tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except TurnoutError as exc:
            raise CliError(exc.message) from exc
        except BrokenPipeError:
            # The reader went away (``turnout ... | head``): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(INTERNAL_ERROR) from None
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            error = click.ClickException(
                f"internal error: {type(exc).__name__}: {exc}; this is a bug in Turnout or a plugin: "
                "run again with 'turnout --debug ...' to see where, and report it"
            )
            error.exit_code = INTERNAL_ERROR
            raise error from exc


@click.group(cls=TurnoutGroup)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def main(debug: bool) -> None:
    """Turnout: one management API for any workflow engine."""


def _registry() -> ComponentRegistry:
    """The installed component types; a plugin that fails to load is a user-facing error."""
    try:
        return load_registry()
    except TurnoutError:
        raise
    except Exception as exc:
        raise CliError(
            f"a Turnout plugin failed to load: {type(exc).__name__}: {exc}; reinstall it, or leave it "
            f"out with {PLUGINS_ENV} (a comma-separated list of the plugins to load)"
        ) from exc


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# turnout components ...


@main.group(cls=TurnoutGroup)
def components() -> None:
    """Component types and component YAML files."""


def _type_summary(component_type: ComponentType) -> dict[str, Any]:
    return {
        "type": component_type.type,
        "aliases": list(component_type.aliases),
        "kind": component_type.kind.value,
        "distribution": component_type.distribution,
        "versions": list(component_type.versions),
        "description": component_type.description,
    }


@components.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_components(as_json: bool) -> None:
    """List every installed component type."""
    registry = _registry()
    types_ = [_type_summary(t) for t in registry]
    if as_json:
        click.echo(json.dumps(types_, indent=2))
        return
    rows = [("TYPE", "ALIASES", "KIND", "DISTRIBUTION", "DESCRIPTION")]
    rows += [
        (t["type"], ", ".join(t["aliases"]) or "-", t["kind"], t["distribution"], t["description"])
        for t in types_
    ]
    click.echo(_table(rows))
    missing = sorted(name for name in KNOWN_DISTRIBUTIONS if name not in registry)
    if missing:
        click.echo("\nNot installed (install the plugin to use them):")
        click.echo(_table([("", name, f"pip install {KNOWN_DISTRIBUTIONS[name]}") for name in missing]))


_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "mapping",
    list: "list",
    timedelta: "duration",
    SecretStr: "string (secret)",
}


def type_label(annotation: Any) -> str:
    """A metadata field's type in words: ``integer``, ``string``, ``one of 'a', 'b'``, ``list of string``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        parts = [type_label(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(parts)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_label(typing.get_args(annotation)[0])
    if origin in (list, tuple, set, frozenset, Sequence):
        args = typing.get_args(annotation)
        return f"list of {type_label(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type):
        if annotation in _TYPE_NAMES:
            return _TYPE_NAMES[annotation]
        if issubclass(annotation, Path):
            return "path"
        if issubclass(annotation, BaseModel):
            return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _constraints(info: FieldInfo) -> str:
    words = {
        "ge": ">=",
        "gt": ">",
        "le": "<=",
        "lt": "<",
        "min_length": "min length",
        "max_length": "max length",
    }
    found = []
    for item in info.metadata:
        for attribute, word in words.items():
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{word} {value}")
    return f" ({', '.join(found)})" if found else ""


def describe_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each metadata field of a model as the YAML sees it: name (the alias), type, required or default."""
    fields = []
    for python_name, info in model.model_fields.items():
        required = info.is_required()
        default: Any = None
        if not required and info.default_factory is None:
            default = info.default
        fields.append(
            {
                "name": yaml_name(python_name, info),
                "type": type_label(info.annotation) + _constraints(info),
                "required": required,
                "default": default,
                "description": info.description or "",
            }
        )
    return fields


def default_text(value: Any) -> str:
    """A default as a component file would spell it: JSON, and a duration as Go writes it (``1h30m``)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds and seconds == int(seconds):
            whole = int(seconds)
            parts = [(whole // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
            return "".join(f"{n}{unit}" for n, unit in parts if n)
        return f"{seconds:g}s"
    return json.dumps(value)


@components.command("describe")
@click.argument("component_type", metavar="TYPE")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata's JSON schema.")
def describe_component(component_type: str, as_json: bool) -> None:
    """Show a component type and the metadata fields its YAML takes."""
    try:
        found = _registry().lookup(component_type)
    except ComponentError as exc:
        raise CliError(exc.reason) from exc
    model = found.metadata_model
    if as_json:
        click.echo(json.dumps(model.model_json_schema(by_alias=True), indent=2))
        return
    aliases = f" (alias: {', '.join(found.aliases)})" if found.aliases else ""
    click.echo(f"{found.type}{aliases}")
    if found.description:
        click.echo(found.description)
    click.echo(f"Kind: {found.kind.value}")
    click.echo(f"Distribution: {found.distribution}")
    click.echo(f"Versions: {', '.join(found.versions)}")
    click.echo("\nMetadata fields (spec.metadata):")
    fields = describe_fields(model)
    if not fields:
        click.echo("  none")
    for item in fields:
        if item["required"]:
            need = "required"
        elif item["default"] is None:
            need = "optional"
        else:
            need = f"default {default_text(item['default'])}"
        click.echo(f"  {item['name']}: {item['type']}, {need}")
        if item["description"]:
            click.echo(f"      {item['description']}")


@components.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--working-dir",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder that relative paths (a secrets file) are resolved against; default: the current folder.",
)
def validate_components(path: Path, working_dir: Path | None) -> None:
    """Check a component file or folder: every problem is listed, nothing is started.

    Secret stores are read to resolve secretKeyRef, and envRef variables must
    be set, as at start-up. Exit status 0 when valid, 2 otherwise.
    """
    skipped: list[SkippedDocument] = []
    specs = read_specs(path, _registry(), skipped=skipped)
    validate_specs(specs, working_dir=working_dir or Path.cwd())
    rows = [(s.name, f"{s.component_type.type} {s.version}".rstrip(), s.file or "") for s in specs]
    click.echo(_table(rows))
    for doc in skipped:
        name = f" '{doc.name}'" if doc.name else ""
        click.echo(
            f"skipped {doc.kind}{name} ({doc.file}, line {doc.line}): Turnout reads only kind Component"
        )
    count = len(specs)
    click.echo(f"{count} component{'s' if count != 1 else ''} valid")


# ---------------------------------------------------------------------------
# turnout version


@main.command("version")
def version() -> None:
    """Show the versions of Turnout and of the installed plugins."""
    click.echo(f"turnout {__version__}")
    allowed = allowed_plugins()
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = entry.dist
        where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
        off = "" if allowed is None or entry.name in allowed else f" (not loaded: not in {PLUGINS_ENV})"
        click.echo(f"plugin {entry.name}: {where}{off}")


# The other command areas live in their own modules and register themselves on ``main``.
# turnout serve, turnout workflow ..., turnout workflow definition ...
from . import _cli_definitions, _cli_serve, _cli_workflow  # noqa: E402, F401
