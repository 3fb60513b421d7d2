"""The ASGI application: Dapr's workflow routes and Turnout's, over a started runtime.

``create_app`` takes an :class:`~turnout.AsyncRuntime` that is already
started, so that a bad component stops ``turnout serve`` before it listens;
the caller closes the runtime after the server has drained. The application
is the same whichever server runs it (``turnout serve``, uvicorn in a test,
any ASGI server).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._runtime import AsyncRuntime
from .._version import __version__
from ._config import ServerConfig
from ._dapr_routes import add_dapr_routes
from ._definition_routes import add_definition_routes
from ._errors import RouteNotFound
from ._extra_routes import add_extra_routes
from ._middleware import BodyLimitMiddleware, TokenMiddleware, TraceContextMiddleware
from ._protocol import DAPR_PREFIXES
from ._routing import ServerState, TurnoutRoute, error_response, validation_error

DESCRIPTION = """\
Dapr's workflow management API (the same routes, bodies, status codes and
error codes as daprd, under /v1.0, /v1.0-beta1 and /v1.0-alpha1), served by
Turnout over any workflow engine. Turnout's extensions (list, history,
long-poll wait, cancel, components, health) live under /v1.0 only.

When the server has an API token, every route but /v1.0/healthz needs it in
the `dapr-api-token` header.
"""


def create_app(runtime: AsyncRuntime, config: ServerConfig | None = None) -> FastAPI:
    """The ASGI application serving ``runtime``'s workflow components with ``config``'s limits."""
    config = config or ServerConfig()
    app = FastAPI(
        title="Turnout workflow API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # Dapr answers the path asked for; no redirects
    )
    app.router.route_class = TurnoutRoute  # every route answers errors as Dapr does
    app.state.turnout = ServerState(runtime, config)
    for prefix in DAPR_PREFIXES:
        add_dapr_routes(app, prefix)
    add_extra_routes(app, config.max_wait_seconds)
    add_definition_routes(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Raised by the router itself: no route for the path, or not for the method.
        if exc.status_code in (404, 405):
            response = error_response(RouteNotFound(request.method, request.url.path, exc.status_code), None)
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        return JSONResponse(
            {"errorCode": f"ERR_HTTP_{exc.status_code}", "message": str(exc.detail)},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc), None)

    _document_components(app, list(app.state.turnout.clients))
    app.add_middleware(TraceContextMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    if config.api_token:
        app.add_middleware(TokenMiddleware, token=config.api_token)
    return app


def _document_components(app: FastAPI, names: list[str]) -> None:
    """List the loaded components as the values of every ``{component}`` segment in the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        if parameter.get("in") == "path" and parameter.get("name") == "component":
                            parameter["schema"] = {"type": "string", "enum": names}
                            parameter["description"] = (
                                "A loaded workflow component (metadata.name in its YAML)."
                            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def server_state_of(app: FastAPI) -> ServerState:
    """The :class:`ServerState` of an application made by :func:`create_app` (for the runner)."""
    state: ServerState = app.state.turnout
    return state
