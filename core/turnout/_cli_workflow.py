"""``turnout workflow ...``: the management API from the command line.

Every command talks either to a Turnout server (``--address``, the default
``http://127.0.0.1:3500``, with ``--token`` and TLS options) or, with
``--resources-path`` or ``--workflows``, to the components in-process. Both
paths use the same calls (:class:`~turnout.AsyncWorkflowClient` or the HTTP
client with the same methods) and the same errors, so a command behaves the
same either way. ``--json`` prints exactly what the HTTP API answers.

Exit statuses (documented in docs/cli.md) come from the errors' codes, in
:func:`exit_status`, whichever path raised them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from ._cli import USER_ERROR, TurnoutGroup, main
from ._errors import ComponentError, InstanceNotFound, TurnoutError, WaitTimeout
from ._models import (
    TERMINAL_STATUSES,
    HistoryEvent,
    RuntimeStatus,
    WorkflowDefinition,
    WorkflowPage,
    WorkflowState,
)
from ._server._config import DEFAULT_MAX_DEPTH, TOKEN_ENV
from ._server._protocol import (
    decode_payload,
    history_to_json,
    page_to_json,
    parse_statuses,
    parse_time,
    state_to_json,
)

DEFAULT_ADDRESS = "http://127.0.0.1:3500"
INSTALL_HINT = "pip install 'turnout[server]'"

OK = 0
ENDED_BADLY = 1
USAGE = USER_ERROR
NOT_FOUND = 3
TIMED_OUT = 4
CONFLICT = 5
UNSUPPORTED = 6
UNREACHABLE = 7
UNAUTHORIZED = 8
ENGINE_FAILED = 9
INTERNAL = 70

_BY_CODE = {
    "ERR_COMPONENT": USAGE,  # a bad component file, or a component that cannot open, in-process
    "ERR_INSTANCE_ID_NOT_FOUND": NOT_FOUND,
    "ERR_WAIT_TIMEOUT": TIMED_OUT,
    "ERR_INSTANCE_EXISTS": CONFLICT,
    "ERR_INVALID_STATE": CONFLICT,
    "ERR_NOT_SUPPORTED": UNSUPPORTED,
    "ERR_SERVER_UNREACHABLE": UNREACHABLE,
    "ERR_SHUTTING_DOWN": UNREACHABLE,
    "ERR_UNAUTHORIZED": UNAUTHORIZED,
}


def exit_status(error: TurnoutError) -> int:
    """The exit status for an error, by its code, else by its HTTP status."""
    if error.code in _BY_CODE:
        return _BY_CODE[error.code]
    status = error.http_status
    if status == 401:
        return UNAUTHORIZED
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return CONFLICT
    if status == 501:
        return UNSUPPORTED
    if 400 <= status < 500:
        return USAGE
    return ENGINE_FAILED


class WorkflowGroup(TurnoutGroup):
    """Turns each error into its documented exit status and a one-line message on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            # click.Group.invoke, past TurnoutGroup's handler, which would make every TurnoutError exit 2.
            return super(TurnoutGroup, self).invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except TurnoutError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            raise click.exceptions.Exit(exit_status(exc)) from exc
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(
                f"Error: internal error: {type(exc).__name__}: {exc}; this is a bug in Turnout or a plugin: "
                "run again with 'turnout --debug ...' to see where, and report it",
                err=True,
            )
            raise click.exceptions.Exit(INTERNAL) from exc


T = TypeVar("T")


class ManagementClient(Protocol):
    """What the commands call: AsyncWorkflowClient (in-process) and HttpWorkflowClient (a server) both are."""

    async def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | timedelta | None = None,
    ) -> str: ...

    async def get(self, instance_id: str) -> WorkflowState | None: ...

    async def wait(
        self,
        instance_id: str,
        *,
        timeout: float | None = None,
        until: Collection[RuntimeStatus] | None = None,
    ) -> WorkflowState: ...

    async def list(
        self,
        *,
        status: list[RuntimeStatus] | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> WorkflowPage: ...

    async def history(self, instance_id: str) -> list[HistoryEvent]: ...

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None: ...

    async def pause(self, instance_id: str, reason: str | None = None) -> None: ...

    async def resume(self, instance_id: str, reason: str | None = None) -> None: ...

    async def terminate(self, instance_id: str, reason: str | None = None) -> None: ...

    async def cancel(self, instance_id: str, reason: str | None = None) -> None: ...

    async def purge(self, instance_id: str) -> None: ...

    async def put_definition(self, document: str, *, source: str | None = None) -> WorkflowDefinition: ...

    async def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition: ...

    async def list_definitions(self) -> list[WorkflowDefinition]: ...


@dataclass
class Target:
    """Where the commands go, from the shared options."""

    address: str
    address_given: bool
    token: str | None
    tls_ca: str | None
    tls_cert: str | None
    tls_key: str | None
    resources: Path | None
    workflows: str | None
    working_dir: Path | None
    component: str | None
    as_json: bool

    @property
    def in_process(self) -> bool:
        return self.resources is not None or self.workflows is not None


def _token_default() -> str | None:
    return next((os.environ[name] for name in TOKEN_ENV if os.environ.get(name)), None)


def target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every workflow command shares, gathered into one ``target`` argument."""
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print the HTTP API's JSON instead of a table."),
        click.option(
            "--component", "-c", default=None, help="Workflow component name (default: the only one)."
        ),
        click.option(
            "--working-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="In-process: folder for SQLite files.",
        ),
        click.option(
            "--workflows", metavar="MODULE:OBJ", help="In-process: the turnout.Workflows object to run."
        ),
        click.option(
            "--resources-path",
            "resources",
            type=click.Path(exists=True, path_type=Path),
            help="Work in-process with these component files instead of a server.",
        ),
        click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Key of --tls-cert."),
        click.option(
            "--tls-cert",
            type=click.Path(exists=True, dir_okay=False),
            help="Client certificate (mutual TLS).",
        ),
        click.option(
            "--tls-ca",
            type=click.Path(exists=True, dir_okay=False),
            help="CA that signed the server's certificate.",
        ),
        click.option(
            "--token",
            default=_token_default,
            show_default="$TURNOUT_API_TOKEN or $DAPR_API_TOKEN",
            help="API token (sent as dapr-api-token).",
        ),
        click.option(
            "--address",
            default=DEFAULT_ADDRESS,
            envvar="TURNOUT_ADDRESS",
            show_default=True,
            help="The Turnout server.",
        ),
    ]

    def build(**kwargs: Any) -> Any:
        ctx = click.get_current_context()
        source = ctx.get_parameter_source("address")
        target = Target(
            address=kwargs.pop("address"),
            address_given=source is click.core.ParameterSource.COMMANDLINE,
            token=kwargs.pop("token"),
            tls_ca=kwargs.pop("tls_ca"),
            tls_cert=kwargs.pop("tls_cert"),
            tls_key=kwargs.pop("tls_key"),
            resources=kwargs.pop("resources"),
            workflows=kwargs.pop("workflows"),
            working_dir=kwargs.pop("working_dir"),
            component=kwargs.pop("component"),
            as_json=kwargs.pop("as_json"),
        )
        return fn(target, **kwargs)

    build.__name__ = fn.__name__
    build.__doc__ = fn.__doc__
    for option in options:
        build = option(build)
    return build


@contextlib.asynccontextmanager
async def open_client(target: Target) -> AsyncIterator[ManagementClient]:
    """The client the target names: an in-process runtime's, or the HTTP client of a server."""
    if target.in_process:
        if target.address_given:
            raise click.UsageError(
                "--address talks to a server; --resources-path and --workflows work in-process: choose one"
            )
        from ._runtime import AsyncRuntime
        from ._server._imports import load_workflows

        workflows = load_workflows(target.workflows) if target.workflows else None
        async with AsyncRuntime(target.resources, workflows, working_dir=target.working_dir) as runtime:
            names = sorted(runtime.workflow_components())
            if target.component is None and len(names) != 1:
                raise ComponentError(
                    f"there are {len(names)} workflow components ({', '.join(names)}): "
                    "name one with --component"
                )
            yield runtime.client(target.component)
        return
    try:
        from ._server._client import HttpWorkflowClient, tls_context
    except ImportError as exc:
        raise click.UsageError(
            f"talking to a server needs the server extras ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    verify = tls_context(target.tls_ca, target.tls_cert, target.tls_key)
    async with HttpWorkflowClient(
        target.address, target.component, token=target.token, verify=verify
    ) as client:
        yield client


def run(target: Target, call: Callable[[ManagementClient], Awaitable[T]]) -> T:
    """Run ``call(client)`` (a coroutine function) against the target."""

    async def go() -> T:
        async with open_client(target) as client:
            return await call(client)

    return asyncio.run(go())


# -- output ----------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Any:
    try:
        from rich.console import Console
    except ImportError:
        raise click.UsageError(f"tables need rich ({INSTALL_HINT}); or pass --json") from None
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(file=stream, stderr=stderr, width=width, highlight=False)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


STATUS_STYLE = {
    "COMPLETED": "green",
    "FAILED": "red",
    "TERMINATED": "red",
    "CANCELED": "yellow",
    "SUSPENDED": "yellow",
}


def _styled(status: RuntimeStatus) -> str:
    style = STATUS_STYLE.get(status.value, "cyan")
    return f"[{style}]{status.value}[/{style}]"


def show_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def show_state(target: Target, state: WorkflowState) -> None:
    if target.as_json:
        show_json(state_to_json(state))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("Instance", escape(state.instance_id)),
        ("Workflow", escape(state.workflow_name)),
        ("Status", _styled(state.runtime_status)),
        ("Created", state.created_at.isoformat()),
        ("Updated", state.last_updated_at.isoformat()),
    ]
    if state.scheduled_start_at:
        rows.append(("Starts at", state.scheduled_start_at.isoformat()))
    for label, value in (
        ("Input", state.input),
        ("Custom status", state.custom_status),
        ("Output", state.output),
    ):
        if value is not None:
            rows.append((label, escape(_text(value))))
    if state.failure is not None:
        rows.append(("Failure", escape(f"{state.failure.error_type}: {state.failure.message}")))
    rows += [(escape(key), escape(value)) for key, value in sorted(state.properties.items())]
    for label, value in rows:
        table.add_row(label, value)
    _console().print(table)


def show_done(target: Target, message: str) -> None:
    if target.as_json:
        show_json({})
    else:
        click.echo(message)


# -- commands --------------------------------------------------------------------------------


@main.group("workflow", cls=WorkflowGroup)
def workflow() -> None:
    """Start, inspect and manage workflow instances, on a server or in-process.

    \b
    Exit statuses: 0 ok; 1 (wait) the instance ended FAILED, TERMINATED or
    CANCELED; 2 usage or configuration error; 3 no such instance; 4 wait
    timed out; 5 conflict (instance exists, wrong status); 6 unsupported by
    the component; 7 server unreachable; 8 API token refused; 9 the engine
    or server failed; 70 a bug.
    """


def _payload(text: str | None, file: Any, what: str) -> Any:
    if text is not None and file is not None:
        raise click.UsageError(f"give {what} inline or from a file, not both")
    raw = text.encode() if text is not None else file.read() if file is not None else b""
    return decode_payload(raw, None, max_depth=DEFAULT_MAX_DEPTH, what=what)


@workflow.command("start")
@click.argument("name")
@click.option("--input", "input_text", help="The input: JSON, or any other text (taken as a string).")
@click.option("--input-file", type=click.File("rb"), help="Read the input from a file ('-' for stdin).")
@click.option(
    "--instance-id", help="The new instance's id (1-64 letters, digits, '_', '-'); generated if absent."
)
@click.option("--start-at", help="Start no earlier than this RFC 3339 time, e.g. 2030-01-02T03:04:05Z.")
@target_options
def start(
    target: Target,
    name: str,
    input_text: str | None,
    input_file: Any,
    instance_id: str | None,
    start_at: str | None,
) -> None:
    """Start an instance of workflow NAME; prints its id."""
    payload = _payload(input_text, input_file, "--input")
    when = parse_time(start_at, field="--start-at") if start_at else None

    async def call(client: ManagementClient) -> str:
        return str(await client.start(name, payload, instance_id=instance_id, start_at=when))

    new_id = run(target, call)
    if target.as_json:
        show_json({"instanceID": new_id})
    else:
        click.echo(new_id)


async def _require(client: ManagementClient, instance_id: str) -> WorkflowState:
    state = await client.get(instance_id)
    if state is None:
        raise InstanceNotFound(instance_id, target_name(client))
    return state


def target_name(client: ManagementClient) -> str | None:
    component = getattr(client, "component", None)
    return getattr(component, "name", None) or getattr(client, "component_name", None)


@workflow.command("get")
@click.argument("instance_id")
@target_options
def get(target: Target, instance_id: str) -> None:
    """Show an instance's state."""
    show_state(target, run(target, lambda client: _require(client, instance_id)))


@workflow.command("list")
@click.option("--status", multiple=True, help="Only this status (repeat, or separate with commas).")
@click.option("--workflow-name", help="Only instances of this workflow.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--page-token", help="The token printed after the previous page.")
@target_options
def list_instances(
    target: Target, status: tuple[str, ...], workflow_name: str | None, limit: int, page_token: str | None
) -> None:
    """List instances, newest first, one page at a time."""
    statuses = parse_statuses(list(status), field="--status")

    async def call(client: ManagementClient) -> WorkflowPage:
        return await client.list(
            status=statuses, workflow_name=workflow_name, limit=limit, page_token=page_token
        )

    page = run(target, call)
    if target.as_json:
        show_json(page_to_json(page))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("INSTANCE", "WORKFLOW", "STATUS", "CREATED", "UPDATED"):
        table.add_column(column, no_wrap=True)
    for state in page:
        table.add_row(
            escape(state.instance_id),
            escape(state.workflow_name),
            _styled(state.runtime_status),
            state.created_at.isoformat(timespec="seconds"),
            state.last_updated_at.isoformat(timespec="seconds"),
        )
    console = _console()
    console.print(table if len(page) else "no instances")
    if page.next_page_token:
        console.print(f"more: --page-token {escape(page.next_page_token)}")


@workflow.command("history")
@click.argument("instance_id")
@target_options
def history(target: Target, instance_id: str) -> None:
    """Show an instance's history, oldest first."""
    events = run(target, lambda client: client.history(instance_id))
    if target.as_json:
        show_json(history_to_json(instance_id, events))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("SEQ", "TIME", "KIND", "NAME", "TASK", "DATA"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            str(event.sequence),
            event.timestamp.isoformat(timespec="milliseconds"),
            escape(event.kind),
            escape(event.name or ""),
            "" if event.task_id is None else str(event.task_id),
            escape(_text(event.data)) if event.data else "",
        )
    _console().print(table)


@workflow.command("wait")
@click.argument("instance_id")
@click.option(
    "--timeout", type=click.FloatRange(0), default=None, help="Give up after this many seconds (exit 4)."
)
@click.option(
    "--until", multiple=True, help="Stop at this status (repeat, or commas); default: any final status."
)
@target_options
def wait(target: Target, instance_id: str, timeout: float | None, until: tuple[str, ...]) -> None:
    """Wait for an instance to finish (or reach --until), showing its status while it waits.

    Exits 0 when it completes (or reaches --until), 1 when it ends FAILED,
    TERMINATED or CANCELED, 4 on --timeout.
    """
    asked = parse_statuses(list(until), field="--until")
    wanted = frozenset(asked) if asked else TERMINAL_STATUSES
    live = not target.as_json and sys.stderr.isatty()

    async def call(client: ManagementClient) -> WorkflowState:
        if not live:
            return await client.wait(instance_id, timeout=timeout, until=wanted)
        return await _wait_live(client, instance_id, timeout, wanted)

    state = run(target, call)
    show_state(target, state)
    if state.runtime_status in TERMINAL_STATUSES - {RuntimeStatus.COMPLETED} and state.runtime_status not in (
        asked or ()
    ):
        raise click.exceptions.Exit(ENDED_BADLY)


async def _wait_live(
    client: ManagementClient, instance_id: str, timeout: float | None, wanted: frozenset[RuntimeStatus]
) -> WorkflowState:
    """Wait in short polls, redrawing one status line on stderr (a TTY) after each."""
    began = time.monotonic()
    state = await _require(client, instance_id)
    console = _console(stderr=True)
    with console.status("") as line:
        while state.runtime_status not in wanted:
            elapsed = time.monotonic() - began
            custom = f" ({_text(state.custom_status)})" if state.custom_status is not None else ""
            line.update(f"{instance_id}: {state.runtime_status.value}{custom}, {elapsed:.0f}s")
            remaining = None if timeout is None else timeout - elapsed
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(instance_id, timeout or 0.0, state)
            changed = wanted | (frozenset(RuntimeStatus) - {state.runtime_status})
            try:
                state = await client.wait(instance_id, timeout=min(1.0, remaining or 1.0), until=changed)
            except WaitTimeout as exc:
                state = exc.state or state
    return state


def _command(name: str, verb: str, summary: str, *, reason: bool = True) -> None:
    """A command that sends one instruction to an instance (pause, resume, terminate, cancel, purge)."""

    def body(target: Target, instance_id: str, reason: str | None = None) -> None:
        method = name.replace("-", "_")
        run(
            target,
            lambda client: getattr(client, method)(instance_id, *([reason] if name != "purge" else [])),
        )
        show_done(target, f"{verb} {instance_id}")

    body.__doc__ = summary
    command = target_options(body)
    if reason:
        command = click.option("--reason", help="Why; recorded where the engine keeps it.")(command)
    command = click.argument("instance_id")(command)
    workflow.command(name)(command)


_command("pause", "paused", "Pause (suspend) an instance until resume.")
_command("resume", "resumed", "Resume a paused instance.")
_command("terminate", "terminated", "Stop an instance (and its children) at once.")
_command("cancel", "asked to cancel", "Ask an instance to stop; it may compensate, then ends CANCELED.")
_command("purge", "purged", "Delete a finished instance and its history.", reason=False)


@workflow.command("raise-event")
@click.argument("instance_id")
@click.argument("event_name")
@click.option("--data", help="The event's data: JSON, or any other text (taken as a string).")
@click.option("--data-file", type=click.File("rb"), help="Read the data from a file ('-' for stdin).")
@target_options
def raise_event(target: Target, instance_id: str, event_name: str, data: str | None, data_file: Any) -> None:
    """Send event EVENT_NAME to an instance; it is buffered until the workflow waits for it."""
    payload = _payload(data, data_file, "--data")
    run(target, lambda client: client.raise_event(instance_id, event_name, payload))
    show_done(target, f"raised {event_name} on {instance_id}")
