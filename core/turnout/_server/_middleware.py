"""ASGI middleware: the API token and the request-size limit, before any route runs.

Plain ASGI (no framework), so they guard every route, the OpenAPI document
included, and refuse early: a request without the token is answered before
its body is read, and an oversized body is refused from its Content-Length
or as soon as the bytes read pass the limit.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .. import _tracing as tracing
from .._errors import TurnoutError
from ._config import TOKEN_HEADER
from ._errors import RequestTooLarge, Unauthorized, error_body, json_bytes

log = logging.getLogger("turnout.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/v1.0/healthz"})
"""Routes answered without the token (Dapr leaves its health check open too)."""


async def send_error(send: Send, exc: TurnoutError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``exc`` as Dapr's error body, from middleware (outside any route)."""
    status, body = error_body(exc, None)
    payload = json_bytes(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class TraceContextMiddleware:
    """Continues a caller's trace: a W3C ``traceparent`` header becomes the current context.

    Turnout's spans for the call (and, through the instance, for its turns and
    activities) then belong to the caller's trace.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name.lower() in (b"traceparent", b"tracestate")
        }
        with tracing.continued(carrier):
            await self.app(scope, receive, send)


class TokenMiddleware:
    """Requires the ``dapr-api-token`` header on every route but the health check.

    The comparison takes constant time, and neither the expected nor the
    offered token is ever logged.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        offered = [value for name, value in scope.get("headers", []) if name.lower() == TOKEN_HEADER.encode()]
        if len(offered) == 1 and hmac.compare_digest(offered[0], self._token):
            await self.app(scope, receive, send)
            return
        log.warning(
            "refused %s %s from %s: %s api token",
            scope.get("method"),
            scope.get("path"),
            _client(scope),
            "missing" if not offered else "wrong",
        )
        await send_error(send, Unauthorized(missing=not offered))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown client"


class _TooLarge(RequestTooLarge):
    """Raised inside ``receive`` when the body passes the limit (a route answers it as 413)."""


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``limit`` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await send_error(send, RequestTooLarge(self.limit), [(b"connection", b"close")])
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await send_error(send, RequestTooLarge(self.limit), [(b"connection", b"close")])
