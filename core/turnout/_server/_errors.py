"""Turnout's errors as Dapr's error bodies, in one place, and back again for the client.

The rule, for every route:

* An error with a precise code keeps it, with its HTTP status: Dapr's own
  (``ERR_INSTANCE_ID_NOT_FOUND`` 404, ``ERR_INSTANCE_ID_INVALID`` 400,
  ``ERR_WORKFLOW_NAME_MISSING`` 400, ...) and Turnout's where Dapr has none
  (``ERR_INSTANCE_EXISTS`` 409, ``ERR_INVALID_STATE`` 409,
  ``ERR_NOT_SUPPORTED`` 501, ``ERR_WAIT_TIMEOUT`` 408, ...).
* A failure of the engine (``EngineError``, a component error, a bug) is
  Dapr's per-operation code with status 500: ``ERR_START_WORKFLOW``,
  ``ERR_GET_WORKFLOW``, ... and the message says what failed.

The body is Dapr's ``{"errorCode", "message"}``; some errors add fields that
Dapr clients ignore (``componentType`` and ``operation`` for 501,
``components`` for an unknown component, ``state`` for a wait timeout).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .._errors import ComponentError, ComponentNotFound, EngineError, TurnoutError, Unsupported, WaitTimeout
from ._protocol import state_to_json

log = logging.getLogger("turnout.server")

OPERATION_CODES: dict[str, str] = {
    "start": "ERR_START_WORKFLOW",
    "get": "ERR_GET_WORKFLOW",
    "terminate": "ERR_TERMINATE_WORKFLOW",
    "raise_event": "ERR_RAISE_EVENT_WORKFLOW",
    "pause": "ERR_PAUSE_WORKFLOW",
    "resume": "ERR_RESUME_WORKFLOW",
    "purge": "ERR_PURGE_WORKFLOW",
    "list": "ERR_LIST_WORKFLOWS",
    "history": "ERR_GET_WORKFLOW_HISTORY",
    "wait": "ERR_WAIT_WORKFLOW",
    "cancel": "ERR_CANCEL_WORKFLOW",
}
"""Dapr's code for an engine failure in each operation (Turnout's own for the operations Dapr lacks)."""

_VERBS = {
    "start": "starting",
    "get": "getting",
    "terminate": "terminating",
    "raise_event": "raising an event on",
    "pause": "pausing",
    "resume": "resuming",
    "purge": "purging",
    "list": "listing",
    "history": "reading the history of",
    "wait": "waiting for",
    "cancel": "canceling",
}

INTERNAL_CODE = "ERR_INTERNAL"
"""A failure outside any workflow operation (a bug)."""

_ENGINE_CODES = frozenset({TurnoutError.code, EngineError.code, ComponentError.code})
"""Codes that say only "something failed": these become the operation's Dapr code and 500."""


class RequestTooLarge(TurnoutError):
    """The request body is larger than the server accepts."""

    code = "ERR_REQUEST_TOO_LARGE"
    http_status = 413

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the request body is larger than {limit} bytes; send a smaller payload, or start the "
            "server with a larger --max-body-size"
        )


class Unauthorized(TurnoutError):
    """The ``dapr-api-token`` header is missing or wrong."""

    code = "ERR_UNAUTHORIZED"
    http_status = 401

    def __init__(self, missing: bool) -> None:
        why = "no dapr-api-token header" if missing else "the dapr-api-token header does not match"
        super().__init__(
            f"invalid api token: {why}; send the token the server was started with "
            "(TURNOUT_API_TOKEN or DAPR_API_TOKEN)"
        )


class ShuttingDown(TurnoutError):
    """The server is draining: the request was not finished; retry against a running server."""

    code = "ERR_SHUTTING_DOWN"
    http_status = 503

    def __init__(self) -> None:
        super().__init__("the server is shutting down; retry the request against a running server")


class RouteNotFound(TurnoutError):
    """No route has this path (or not with this method)."""

    code = "ERR_NOT_FOUND"
    http_status = 404

    def __init__(self, method: str, path: str, status: int = 404) -> None:
        self.http_status = status
        if status == 405:
            self.code = "ERR_METHOD_NOT_ALLOWED"
            super().__init__(f"{method} is not allowed on {path}; see /openapi.json for the routes")
        else:
            super().__init__(f"no route {method} {path}; see /openapi.json for the routes")


def error_body(
    exc: BaseException, operation: str | None, subject: str | None = None
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Dapr error body for ``exc`` raised while doing ``operation`` on ``subject``."""
    if isinstance(exc, TurnoutError) and exc.code not in _ENGINE_CODES:
        body: dict[str, Any] = {"errorCode": exc.code, "message": exc.message}
        if isinstance(exc, Unsupported):
            body["componentType"] = exc.component_type
            body["operation"] = exc.operation
        elif isinstance(exc, ComponentNotFound):
            body["components"] = exc.loaded
        elif isinstance(exc, WaitTimeout) and exc.state is not None:
            body["state"] = state_to_json(exc.state)
        return exc.http_status, body
    detail = exc.message if isinstance(exc, TurnoutError) else f"{type(exc).__name__}: {exc}"
    if operation is None or operation not in OPERATION_CODES:
        return 500, {"errorCode": INTERNAL_CODE, "message": f"internal error: {detail}"}
    what = f" '{subject}'" if subject else ""
    message = f"error {_VERBS[operation]} workflow{what}: {detail}"
    return 500, {"errorCode": OPERATION_CODES[operation], "message": message}


def json_bytes(body: dict[str, Any]) -> bytes:
    """A response body as compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------
# the client side


class RemoteError(TurnoutError):
    """An error answered by a Turnout (or Dapr) server, with its code, status and body.

    The CLI decides its exit status from ``code``, exactly as for the errors
    raised in-process, whose codes are the same.
    """

    def __init__(self, code: str, http_status: int, message: str, body: dict[str, Any] | None = None) -> None:
        self.code = code
        self.http_status = http_status
        self.body = body or {}
        super().__init__(message)


class ServerUnreachable(TurnoutError):
    """The client could not reach the server (refused, timed out, TLS failed)."""

    code = "ERR_SERVER_UNREACHABLE"
    http_status = 503

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(
            f"cannot reach the Turnout server at {address}: {reason}; start it with 'turnout serve', "
            "or pass --address (or --resources-path to work in-process)"
        )


def error_from_response(status: int, content: bytes) -> RemoteError:
    """The error a server answered: Dapr's body when there is one, else the status and text."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if isinstance(body, dict) and isinstance(body.get("errorCode"), str):
        return RemoteError(body["errorCode"], status, str(body.get("message", "")), body)
    text = content.decode("utf-8", "replace").strip()[:500]
    return RemoteError(f"HTTP_{status}", status, f"the server answered {status}: {text or 'no body'}")
