"""``turnout workflow definition ...``: store, list and read declarative workflow definitions.

The same targets as every ``turnout workflow`` command (a server, or the
components in-process); a stored definition then starts by its name with
``turnout workflow start NAME``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._cli_workflow import ManagementClient, Target, _console, run, show_json, target_options, workflow
from ._models import WorkflowDefinition
from ._server._protocol import definition_to_json


@workflow.group("definition")
def definition() -> None:
    """Store, list and read Serverless Workflow definitions (start them with 'workflow start NAME')."""


@definition.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@target_options
def put(target: Target, file: Path) -> None:
    """Validate FILE (YAML or JSON) and store it as a new version."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{file} is not UTF-8 text ({exc.reason})", param_hint="FILE") from None

    async def call(client: ManagementClient) -> WorkflowDefinition:
        return await client.put_definition(text, source=str(file))

    stored = run(target, call)
    if target.as_json:
        show_json(definition_to_json(stored.model_copy(update={"document": None})))
    else:
        click.echo(
            f"stored {stored.name} version {stored.version}: start it with 'workflow start {stored.name}'"
        )


@definition.command("list")
@target_options
def list_definitions(target: Target) -> None:
    """List the definitions the component can start, every version."""
    found = run(target, lambda client: client.list_definitions())
    if target.as_json:
        show_json({"definitions": [definition_to_json(d) for d in found]})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table("Name", "Version", "Dialect", "Workflow", "Stored", box=None, pad_edge=False)
    for item in found:
        table.add_row(
            escape(item.name),
            escape(item.version),
            item.dialect,
            escape(item.workflow_name),
            item.created_at.isoformat(timespec="seconds"),
        )
    _console().print(table)


@definition.command("get")
@click.argument("name")
@click.option("--version", help="This version; the latest when absent.")
@target_options
def get(target: Target, name: str, version: str | None) -> None:
    """Print a stored definition's document (the latest version unless one is named)."""
    found = run(target, lambda client: client.get_definition(name, version))
    if target.as_json:
        show_json(definition_to_json(found))
    else:
        click.echo(found.document or "", nl=not (found.document or "").endswith("\n"))
