"""Temporal's errors as Turnout's: every SDK or RPC error is wrapped here, none leaks.

Call sites that know what a NOT_FOUND or UNIMPLEMENTED means for their
operation handle those codes themselves; :func:`engine_error` turns the rest
into :class:`turnout.EngineError`, retryable when the same call may succeed
later (the server is unreachable, busy or timed out).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode

from turnout import EngineError, TurnoutError

COMPONENT_TYPE = "workflow.temporal"

RETRYABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.CANCELLED,
    }
)

_HINTS = {
    RPCStatusCode.UNAUTHENTICATED: "check apiKey and the TLS settings of the component",
    RPCStatusCode.PERMISSION_DENIED: "the identity or API key is not allowed to do this in the namespace",
    RPCStatusCode.UNAVAILABLE: "is the Temporal server running and reachable at hostPort?",
}


def is_status(exc: BaseException, *codes: RPCStatusCode) -> bool:
    """Whether ``exc`` is an RPC error with one of ``codes``."""
    return isinstance(exc, RPCError) and exc.status in codes


def engine_error(exc: BaseException, operation: str) -> EngineError:
    """A Turnout EngineError for an SDK or RPC failure, saying whether a retry may help."""
    if isinstance(exc, RPCError):
        hint = _HINTS.get(exc.status)
        reason = f"{exc.status.name}: {exc.message}" + (f" ({hint})" if hint else "")
        return EngineError(COMPONENT_TYPE, operation, reason, retryable=exc.status in RETRYABLE)
    if isinstance(exc, TimeoutError):
        return EngineError(COMPONENT_TYPE, operation, f"timed out: {exc}", retryable=True)
    return EngineError(COMPONENT_TYPE, operation, f"{type(exc).__name__}: {exc}", retryable=False)


@contextmanager
def wrapped(operation: str) -> Iterator[None]:
    """Run a block of Temporal calls; anything but a Turnout error leaves as an EngineError."""
    try:
        yield
    except TurnoutError:
        raise
    except (TemporalError, RPCError, RuntimeError, TimeoutError, OSError, ValueError) as exc:
        # RuntimeError: the SDK's bridge (connections); ValueError: SDK enums that do not know
        # a server value (PAUSED in list_workflows); both are engine trouble, not the caller's.
        raise engine_error(exc, operation) from exc
