"""The spec's errors: RFC 7807 style faults, their standard types, and how they travel.

A fault is a plain dict (``type``, ``status``, ``title``, ``detail``,
``instance``) so it can go through jq (``catch.as``), JSON histories and
failure messages unchanged. Inside the interpreter it is raised as
:class:`Fault`; across an activity or a child workflow, and out of the
instance, it travels as the failure's message (the fault's JSON) with the
fault's type as the failure's error type.
"""

from __future__ import annotations

import functools
import json
from typing import Any

SPEC_ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"
#: The standard error kinds (the last segment of their type URI) and their usual status.
STANDARD_STATUS = {
    "configuration": 400,
    "validation": 400,
    "expression": 400,
    "authentication": 401,
    "authorization": 403,
    "timeout": 408,
    "communication": 500,
    "runtime": 500,
}
_SPEC_HOST = "serverlessworkflow.io/"


def error_type(kind: str) -> str:
    """The type URI of a standard error kind (``communication`` -> ``https://.../errors/communication``)."""
    return SPEC_ERRORS + kind


def make_fault(
    kind: str,
    *,
    status: int | None = None,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """A fault of one of the standard kinds."""
    fault: dict[str, Any] = {"type": error_type(kind), "status": status or STANDARD_STATUS[kind]}
    if title is not None:
        fault["title"] = title
    if detail is not None:
        fault["detail"] = detail
    if instance is not None:
        fault["instance"] = instance
    return fault


class Fault(Exception):
    """A spec error raised inside the interpreter; ``try``/``catch`` handles it.

    Not an instance failure by itself: the interpreter turns an uncaught one
    into :func:`failure_exception`.
    """

    def __init__(self, fault: dict[str, Any]) -> None:
        super().__init__(json.dumps(fault, sort_keys=True))
        self.fault = fault


class FaultFailure(Exception):
    """Base of the exceptions that carry a fault out of an activity or an instance.

    Engines record a failure's error type as the exception's class name, so
    each fault type gets a subclass *named by its type URI* (see
    :func:`failure_exception`): ``state.failure.error_type`` is then the spec
    error type, and the message is the fault's JSON.
    """

    def __init__(self, fault: dict[str, Any]) -> None:
        super().__init__(json.dumps(fault, sort_keys=True))
        self.fault = fault
        self.error_type = str(fault.get("type", ""))


@functools.lru_cache(maxsize=256)
def _failure_class(type_uri: str) -> type[FaultFailure]:
    # A class whose __name__ is the URI: failure_of() records type(exc).__name__.
    return type(type_uri, (FaultFailure,), {"__module__": __name__, "__qualname__": type_uri})


def failure_exception(fault: dict[str, Any]) -> FaultFailure:
    """The exception that fails an activity or an instance with ``fault``."""
    return _failure_class(str(fault.get("type") or error_type("runtime")))(fault)


def fault_from_failure(error_type_name: str, message: str, *, instance: str) -> dict[str, Any]:
    """The fault behind a failed activity or child workflow.

    A failure raised by :func:`failure_exception` carries its fault as JSON;
    any other failure (a Python activity raising ``ValueError``) becomes a
    runtime error whose detail is the original type and message.
    """
    try:
        decoded = json.loads(message)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("type"), str) and "status" in decoded:
        fault = dict(decoded)
        fault.setdefault("instance", instance)
        return fault
    return make_fault(
        "runtime", title="Task failed", detail=f"{error_type_name}: {message}", instance=instance
    )


def same_type(expected: str, actual: str) -> bool:
    """Whether a ``catch.errors.with.type`` filter matches a fault's type.

    Exact match, or two URIs of the spec's own standard error types with the
    same kind: the CTK writes ``https://serverlessworkflow.io/dsl/errors/types/communication``
    for what the DSL reference calls ``https://serverlessworkflow.io/spec/1.0.0/errors/communication``.
    """
    if expected == actual:
        return True
    if _SPEC_HOST not in expected or _SPEC_HOST not in actual:
        return False
    kind_a = expected.rstrip("/").rsplit("/", 1)[-1]
    kind_b = actual.rstrip("/").rsplit("/", 1)[-1]
    return kind_a == kind_b and kind_a in STANDARD_STATUS
