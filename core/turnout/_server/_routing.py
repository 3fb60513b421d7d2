"""What every route shares: the server's state, error answers, and Dapr-style path segments.

Each route is a :class:`TurnoutRoute`, whose handler turns any exception into
Dapr's error body through :func:`~turnout._server._errors.error_body` (the one
mapping), named by the route's operation. Path segments may be empty, as in
Dapr, so ``/workflows/dapr//start`` answers ``ERR_WORKFLOW_NAME_MISSING``
rather than a bare 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor

from .._errors import ComponentNotFound, InvalidArgument, TurnoutError
from .._runtime import AsyncRuntime, AsyncWorkflowClient
from ._config import ServerConfig
from ._errors import error_body

log = logging.getLogger("turnout.server")

ERROR_MEDIA = "application/json"


class _Segment(Convertor[str]):
    """One path segment that may be empty (Starlette's ``str`` needs a character)."""

    regex = "[^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("segment", _Segment())


class ServerState:
    """The loaded workflow components and the drain signal, shared by every request."""

    def __init__(self, runtime: AsyncRuntime, config: ServerConfig) -> None:
        self.runtime = runtime
        self.config = config
        self.clients: dict[str, AsyncWorkflowClient] = {
            name: runtime.client(name) for name in sorted(runtime.workflow_components())
        }
        self.draining = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the serving loop, so that :meth:`begin_drain` can be called from any thread."""
        self._loop = loop

    def begin_drain(self) -> None:
        """Tell long-running requests (long-poll waits) to answer now: the server is stopping."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.draining.set()
            return
        loop.call_soon_threadsafe(self.draining.set)

    def client(self, component: str) -> AsyncWorkflowClient:
        """The client of the component a route names; Dapr's errors when it is empty or unknown."""
        if not component:
            raise InvalidArgument(
                "workflow component",
                component,
                f"a component name (loaded: {', '.join(self.clients) or 'none'})",
                code="ERR_WORKFLOW_COMPONENT_MISSING",
            )
        found = self.clients.get(component)
        if found is None:
            raise ComponentNotFound(component, list(self.clients))
        return found


def server_state(request: Request) -> ServerState:
    """The :class:`ServerState` of the application serving ``request``."""
    state: ServerState = request.app.state.turnout
    return state


def error_response(exc: BaseException, operation: str | None, subject: str | None = None) -> JSONResponse:
    """Dapr's error body for ``exc``; failures that are not the caller's are logged."""
    status, body = error_body(exc, operation, subject)
    if not isinstance(exc, TurnoutError):
        log.error("%s failed: %s", operation or "request", body["message"], exc_info=exc)
    elif status >= 500 and status not in (501, 503):
        log.error("%s failed: %s", operation or "request", body["message"])
    return JSONResponse(body, status_code=status, media_type=ERROR_MEDIA)


_EXPECTED = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "greater_than_equal": "a number >= {ge}",
    "greater_than": "a number > {gt}",
    "less_than_equal": "a number <= {le}",
    "less_than": "a number < {lt}",
    "missing": "a value (it is required)",
}


def validation_error(exc: RequestValidationError) -> InvalidArgument:
    """FastAPI's validation error as one InvalidArgument naming the parameter and what fits."""
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    where = location[0] if location else "request"
    name = location[-1] if len(location) > 1 else where
    kind = {"query": "query parameter", "path": "path segment", "header": "header"}.get(where, where)
    template = _EXPECTED.get(str(first.get("type")))
    if template is not None:
        expected = template.format(**(first.get("ctx") or {}))
    else:
        message = str(first.get("msg") or "a valid value")
        expected = message[0].lower() + message[1:]
    return InvalidArgument(f"{kind} '{name}'", first.get("input"), expected)


class TurnoutRoute(APIRoute):
    """A route whose errors are answered as Dapr's error body for its operation (the route's name)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        operation = self.name

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return error_response(validation_error(exc), operation)
            except Exception as exc:
                params = request.path_params
                subject = params.get("instance_id") or params.get("workflow_name")
                return error_response(exc, operation, subject)

        return guarded


def accepted(body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """202 with a JSON body (``{}`` by default, as protojson writes an empty message)."""
    return JSONResponse(body or {}, status_code=202, headers=headers)
