"""``turnout serve``: open the components, serve the API with uvicorn, drain on SIGTERM.

The order matters:

1. Load the workflow code and open every component. Any problem is reported
   (file, component, field) and the command exits 2 before it listens, so
   nothing serves half-configured.
2. Serve. The first SIGTERM or SIGINT stops accepting connections, tells
   long-poll waits to answer at once (503, retry elsewhere), and lets every
   other request in flight finish (up to ``drain_timeout``). A second SIGINT
   stops at once.
3. Close the components (the built-in engine stops its workers), then exit 0.

uvicorn's own signal capture is replaced, because it re-raises the signal
after serving, which would end the process with -15 instead of 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import signal
import ssl
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from .._errors import InvalidArgument, TurnoutError
from .._runtime import AsyncRuntime
from ._app import create_app, server_state_of
from ._config import ServerConfig
from ._imports import load_workflows
from ._routing import ServerState

log = logging.getLogger("turnout.server")

EXIT_OK = 0
EXIT_CONFIG = 2


@dataclass
class ServeOptions:
    """Everything ``turnout serve`` was given."""

    resources: Path | None = None
    workflows: str | None = None
    working_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 3500
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    drain_timeout: float = 30.0
    log_level: str = "info"
    config: ServerConfig = field(default_factory=ServerConfig)
    grpc_port: int | None = None
    """Also serve Dapr's gRPC API (and the Durable Task sidecar protocol) on this port; 0 picks one."""

    def check(self) -> None:
        """Refuse TLS settings that cannot work together, naming the option."""
        if (self.tls_cert is None) != (self.tls_key is None):
            given, missing = ("--tls-cert", "--tls-key") if self.tls_cert else ("--tls-key", "--tls-cert")
            raise InvalidArgument(missing, None, f"a file: {given} needs {missing} too")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise InvalidArgument(
                "--tls-client-ca", str(self.tls_client_ca), "to be used with --tls-cert and --tls-key"
            )

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS."""
        return "https" if self.tls_cert else "http"


class DrainingServer(uvicorn.Server):
    """uvicorn's server, told to drain by :meth:`stop` (from a signal handler or another thread)."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state
        self.on_started: Callable[[DrainingServer], None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The runner installs its own handlers (see the module docstring).
        yield

    def stop(self, *, force: bool = False) -> None:
        """Start draining: long polls answer now, no new connections, in-flight requests finish."""
        self.state.begin_drain()
        if force:
            self.force_exit = True
        self.should_exit = True

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started(self)

    def bound_port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.config.port)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with Turnout's server messages through the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["turnout"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def uvicorn_config(app: object, options: ServeOptions, *, configure_logging: bool = True) -> uvicorn.Config:
    """uvicorn's settings for ``options``: TLS, mutual TLS, drain timeout, logging.

    With ``configure_logging=False`` the process's logging is left alone (an
    embedding application, or a test capturing logs, owns it).
    """
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=options.host,
        port=options.port,
        lifespan="off",
        log_level=options.log_level,
        log_config=_log_config(options.log_level) if configure_logging else None,
        timeout_graceful_shutdown=options.drain_timeout,  # type: ignore[arg-type]  # a float works
        ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
        ssl_keyfile=str(options.tls_key) if options.tls_key else None,
        ssl_ca_certs=str(options.tls_client_ca) if options.tls_client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if options.tls_client_ca else ssl.CERT_NONE,
    )


async def open_runtime(
    options: ServeOptions, before_start: Callable[[AsyncRuntime], None] | None = None
) -> AsyncRuntime:
    """Load the workflow code and open every component; TurnoutError on any problem.

    ``before_start`` sees the runtime before its components open (the gRPC
    services prepare them there).
    """
    workflows = load_workflows(options.workflows) if options.workflows else None
    runtime = AsyncRuntime(options.resources, workflows, working_dir=options.working_dir)
    if before_start is not None:
        before_start(runtime)
    await runtime.start()
    return runtime


GRPC_STOP_GRACE = 5.0
"""Seconds gRPC calls in flight get to finish when the server stops (worker streams are then cut)."""


class _Grpc:
    """The gRPC side of ``turnout serve``, when ``--grpc-port`` is given."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.services: list[Any] = []
        self.server: Any = None
        self.port = 0

    def prepare(self, runtime: AsyncRuntime) -> None:
        from ._grpc import prepare_services

        self.services = prepare_services(runtime)

    async def start(self, runtime: AsyncRuntime) -> None:
        from ._grpc import GrpcOptions, start_grpc_server

        options = self.options
        assert options.grpc_port is not None
        where = GrpcOptions(
            host=options.host,
            port=options.grpc_port,
            tls_cert=options.tls_cert,
            tls_key=options.tls_key,
            tls_client_ca=options.tls_client_ca,
        )
        self.server, self.port = await start_grpc_server(runtime, options.config, where, self.services)

    async def stop(self) -> None:
        if self.server is None:
            return
        for servicer, _ in self.services:
            closer = getattr(servicer, "aclose", None)
            if closer is not None:
                await closer()
        await self.server.stop(min(self.options.drain_timeout, GRPC_STOP_GRACE))
        self.server = None


def _require_grpc() -> None:
    try:
        import dapr.proto.runtime.v1  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as exc:
        raise TurnoutError(
            f"--grpc-port needs the grpc extra ({exc.name} is missing): pip install 'turnout[grpc]'"
        ) from None


def _announce(
    options: ServeOptions, out: TextIO, grpc_side: _Grpc | None = None
) -> Callable[[DrainingServer], None]:
    def started(server: DrainingServer) -> None:
        if grpc_side is not None:
            tls = "TLS" if options.tls_cert else "plaintext"
            out.write(f"Turnout is serving the gRPC API on {options.host}:{grpc_side.port} ({tls})\n")
        names = ", ".join(
            f"{name} ({client.component.component_type})" for name, client in server.state.clients.items()
        )
        token = "required" if server.state.config.api_token else "not required"
        mutual = ", client certificates required" if options.tls_client_ca else ""
        out.write(
            f"Turnout is serving the workflow API on {options.scheme}://{options.host}:{server.bound_port()} "
            f"(components: {names}; API token {token}{mutual})\n"
        )
        out.flush()

    return started


async def serve_async(options: ServeOptions, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the server until a signal; the exit status (0 after a clean drain, 2 on bad configuration)."""
    out = out or sys.stdout
    err = err or sys.stderr
    loop = asyncio.get_running_loop()
    server: DrainingServer | None = None
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        signalled.append(sig)
        if server is not None:
            server.stop(force=len(signalled) > 1 and sig == signal.SIGINT)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    grpc_side = _Grpc(options) if options.grpc_port is not None else None
    try:
        try:
            options.check()
            if grpc_side is not None:
                _require_grpc()
            runtime = await open_runtime(options, grpc_side.prepare if grpc_side is not None else None)
        except TurnoutError as exc:
            err.write(f"Error: {exc.message}\nThe server did not start.\n")
            return EXIT_CONFIG
        try:
            app = create_app(runtime, options.config)
            state = server_state_of(app)
            state.bind_loop(loop)
            config = uvicorn_config(app, options)
            try:
                config.load()
            except (OSError, ssl.SSLError) as exc:
                err.write(
                    f"Error: cannot use the TLS files given ({exc}); check --tls-cert, --tls-key "
                    "and --tls-client-ca\nThe server did not start.\n"
                )
                return EXIT_CONFIG
            if grpc_side is not None:
                try:
                    await grpc_side.start(runtime)
                except (OSError, ValueError, RuntimeError) as exc:
                    err.write(f"Error: cannot serve gRPC: {exc}\nThe server did not start.\n")
                    return EXIT_CONFIG
            server = DrainingServer(config, state)
            server.on_started = _announce(options, out, grpc_side)
            if signalled:
                return EXIT_OK  # stopped before it started
            try:
                await server.serve()
            except SystemExit:
                # uvicorn exits when it cannot listen (address in use, no permission); it logged why.
                err.write(
                    f"Error: cannot listen on {options.host}:{options.port}\nThe server did not start.\n"
                )
                return EXIT_CONFIG
        finally:
            if grpc_side is not None:
                await grpc_side.stop()
            await runtime.aclose()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("drained and closed the components")
    return EXIT_OK


def serve(options: ServeOptions) -> int:
    """The blocking entry point of ``turnout serve``."""
    return asyncio.run(serve_async(options))
