"""``turnout serve``: Dapr's workflow HTTP API (and Turnout's extensions) over the loaded components.

The command parses its options here; the server itself (FastAPI, uvicorn) is
imported only when it runs, so ``pip install turnout`` stays light and a
missing extra is one clear message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from ._cli import USER_ERROR, CliError, main

DEFAULT_MAX_BODY = 4 * 1024 * 1024
INSTALL_HINT = "pip install 'turnout[server]'"

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2}
_UNITS.update({"mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3})


class ByteSize(click.ParamType):
    """A size in bytes: ``4194304``, ``4MiB``, ``512KiB``, ``1MB``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        if match is None or int(match.group(1)) < 1:
            self.fail(
                f"{value!r} is not a size: expected bytes or a number with KiB, MiB, KB, MB", param, ctx
            )
        return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


def require_server_extras() -> None:
    """Exit 2 with the install command when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        error = CliError(f"'turnout serve' needs the server extras ({exc.name} is missing): {INSTALL_HINT}")
        error.exit_code = USER_ERROR
        raise error from None


@main.command("serve")
@click.option(
    "--resources-path",
    "resources",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Component YAML file or folder (as for daprd). Default: the built-in engine, named 'dapr'.",
)
@click.option("--workflows", metavar="MODULE:OBJ", default=None, help="The turnout.Workflows object to host.")
@click.option(
    "--working-dir",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for relative paths in components (SQLite files); default: the current folder.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--http-port",
    "port",
    type=click.IntRange(0, 65535),
    default=3500,
    show_default=True,
    help="Port to listen on (Dapr's default); 0 picks a free one.",
)
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Also serve Dapr's gRPC workflow API and the Durable Task sidecar protocol (for the Dapr "
    "workflow SDKs) on this port (Dapr's default: 50001); 0 picks a free one. Needs turnout[grpc].",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Serve HTTPS.")
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Key of --tls-cert."
)
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Require client certificates signed by this CA (mutual TLS).",
)
@click.option(
    "--max-body-size",
    type=ByteSize(),
    default=DEFAULT_MAX_BODY,
    show_default="4MiB",
    help="Larger bodies get 413.",
)
@click.option(
    "--max-json-depth",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    help="Deeper payloads get 400.",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(0, min_open=True),
    default=300.0,
    show_default=True,
    help="Longest long-poll wait a client may ask for, in seconds.",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight requests get to finish after SIGTERM.",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
def serve(
    resources: Path | None,
    workflows: str | None,
    working_dir: Path | None,
    host: str,
    port: int,
    grpc_port: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    max_body_size: int,
    max_json_depth: int,
    max_wait: float,
    drain_timeout: float,
    log_level: str,
) -> None:
    """Serve Dapr's workflow HTTP API over the components, until SIGTERM or Ctrl-C.

    Every component is loaded and opened first: any problem is reported and
    the command exits 2 without listening. When TURNOUT_API_TOKEN (or
    DAPR_API_TOKEN) is set, every route but /v1.0/healthz needs it in the
    dapr-api-token header. On SIGTERM the server drains (requests in flight
    finish, long-poll waits answer 503) and exits 0. With --grpc-port it also
    serves gRPC (same token, same TLS): Dapr's workflow RPCs and the Durable
    Task sidecar protocol, so apps written with Dapr's workflow SDK run here.
    """
    require_server_extras()
    from ._server._config import ServerConfig, token_from_env
    from ._server._runner import ServeOptions
    from ._server._runner import serve as run

    options = ServeOptions(
        resources=resources,
        workflows=workflows,
        working_dir=working_dir,
        host=host,
        port=port,
        grpc_port=grpc_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        drain_timeout=drain_timeout,
        log_level=log_level,
        config=ServerConfig(
            max_body_bytes=max_body_size,
            max_json_depth=max_json_depth,
            max_wait_seconds=max_wait,
            api_token=token_from_env(),
        ),
    )
    raise click.exceptions.Exit(run(options))
