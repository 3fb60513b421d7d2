"""One error hierarchy for every component, mapped once to HTTP and the CLI.

Each error keeps what went wrong as attributes (so callers can branch on them)
and its message says what to do next. Adapters wrap their SDK's exceptions in
these with ``raise ... from exc``; no engine exception leaks to users.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class TurnoutError(Exception):
    """Root of every error Turnout raises on purpose.

    ``code`` is a stable, Dapr-style error code (``ERR_...``) that the HTTP
    server and the CLI report; ``http_status`` is the status the server uses.
    """

    code: str = "ERR_TURNOUT"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ComponentError(TurnoutError):
    """A component file or its metadata is invalid, or a component failed to start.

    ``file``, ``component`` and ``field`` name where the problem is, when known.
    """

    code = "ERR_COMPONENT"
    http_status = 500

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        component: str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.component = component
        self.field = field
        where = []
        if file:
            where.append(file)
        if component:
            where.append(f"component '{component}'")
        if field:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class ComponentErrors(ComponentError):
    """Every problem found in the components, reported at once so one run shows them all.

    ``errors`` keeps each problem as its own :class:`ComponentError` (with its
    ``file``, ``component`` and ``field``); the message lists one per line.
    """

    def __init__(self, errors: Iterable[ComponentError]) -> None:
        self.errors: list[ComponentError] = list(errors)
        if not self.errors:
            raise ValueError("ComponentErrors needs at least one error")
        if len(self.errors) == 1:
            only = self.errors[0]
            super().__init__(only.reason, file=only.file, component=only.component, field=only.field)
        else:
            lines = "\n".join(f"  - {error.message}" for error in self.errors)
            super().__init__(f"{len(self.errors)} problems in the component configuration:\n{lines}")


class ComponentNotFound(TurnoutError):
    """No loaded workflow component has this name (``rt.client(name)``, a route's component)."""

    code = "ERR_WORKFLOW_COMPONENT_NOT_FOUND"
    http_status = 400

    def __init__(self, name: str, loaded: list[str]) -> None:
        self.name = name
        self.loaded = sorted(loaded)
        known = ", ".join(self.loaded) or "none"
        super().__init__(f"no workflow component named '{name}' (loaded: {known}); use one of these names")


class InvalidArgument(TurnoutError):
    """A request carried a bad value: ``field`` names it, ``expected`` says what fits."""

    code = "ERR_INVALID_ARGUMENT"
    http_status = 400

    def __init__(self, field: str, value: Any, expected: str, *, code: str | None = None) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        if code:
            self.code = code
        super().__init__(f"invalid {field} {value!r}: expected {expected}")


class InstanceNotFound(TurnoutError):
    """No instance with this id exists in the component (or it was purged)."""

    code = "ERR_INSTANCE_ID_NOT_FOUND"
    http_status = 404

    def __init__(self, instance_id: str, component: str | None = None) -> None:
        self.instance_id = instance_id
        self.component = component
        where = f" in component '{component}'" if component else ""
        super().__init__(
            f"no workflow instance '{instance_id}'{where}; check the id, or list instances to see which exist"
        )


class InstanceExists(TurnoutError):
    """An instance with this id already exists.

    ``status`` is the existing instance's runtime status; a terminal one can be
    replaced by starting with ``replace=True``.
    """

    code = "ERR_INSTANCE_EXISTS"
    http_status = 409

    def __init__(self, instance_id: str, status: str | None = None, component: str | None = None) -> None:
        self.instance_id = instance_id
        self.status = status
        self.component = component
        state = f" (status {status})" if status else ""
        super().__init__(
            f"workflow instance '{instance_id}' already exists{state}; choose another id, "
            "or purge it (or start with replace=True) once it has finished"
        )


class InvalidState(TurnoutError):
    """The operation does not apply to an instance in its current status."""

    code = "ERR_INVALID_STATE"
    http_status = 409

    def __init__(self, instance_id: str, status: str, operation: str, hint: str) -> None:
        self.instance_id = instance_id
        self.status = status
        self.operation = operation
        super().__init__(f"cannot {operation} workflow instance '{instance_id}' in status {status}: {hint}")


class Unsupported(TurnoutError):
    """The component's engine has no such operation (declared, not discovered)."""

    code = "ERR_NOT_SUPPORTED"
    http_status = 501

    def __init__(self, component_type: str, operation: str, reason: str | None = None) -> None:
        self.component_type = component_type
        self.operation = operation
        self.reason = reason
        why = f": {reason}" if reason else ""
        super().__init__(f"component type '{component_type}' does not support '{operation}'{why}")


class WorkflowNotRegistered(TurnoutError):
    """A workflow or activity name that the host does not know."""

    code = "ERR_WORKFLOW_NOT_REGISTERED"
    http_status = 400

    def __init__(self, kind: str, name: str, registered: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.registered = registered
        known = ", ".join(sorted(registered)) or "none"
        super().__init__(
            f"no {kind} named '{name}' is registered (registered: {known}); "
            f"decorate it with @wf.{kind} and pass that Workflows object to the runtime"
        )


class DefinitionNotFound(TurnoutError):
    """No stored workflow definition has this name (and version)."""

    code = "ERR_DEFINITION_NOT_FOUND"
    http_status = 404

    def __init__(self, name: str, version: str | None = None, component: str | None = None) -> None:
        self.name = name
        self.version = version
        self.component = component
        which = f"'{name}' version '{version}'" if version else f"'{name}'"
        where = f" in component '{component}'" if component else ""
        super().__init__(f"no workflow definition {which}{where}; list the definitions to see which exist")


class DefinitionExists(TurnoutError):
    """A definition of this name and version is stored already, with other content.

    Versions are immutable, so instances that run one always replay the same
    document: a changed definition needs a new ``version``.
    """

    code = "ERR_DEFINITION_EXISTS"
    http_status = 409

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        super().__init__(
            f"workflow definition '{name}' version '{version}' is stored already with other content; "
            "a stored version never changes: give the new document another version"
        )


class WaitTimeout(TurnoutError, TimeoutError):
    """``wait`` gave up before the instance reached the awaited status.

    ``state`` is the last state seen, so the caller can tell how far it got.
    """

    code = "ERR_WAIT_TIMEOUT"
    http_status = 408

    def __init__(self, instance_id: str, timeout: float, state: Any) -> None:
        self.instance_id = instance_id
        self.timeout = timeout
        self.state = state
        status = getattr(getattr(state, "runtime_status", None), "value", None)
        super().__init__(
            f"workflow instance '{instance_id}' did not finish within {timeout:g}s "
            f"(last status {status}); wait longer or check its history"
        )


class EngineError(TurnoutError):
    """The engine behind a component failed (a connection, a server error).

    ``retryable`` says whether the same call may succeed later.
    """

    code = "ERR_ENGINE"
    http_status = 500

    def __init__(self, component_type: str, operation: str, reason: str, *, retryable: bool = False) -> None:
        self.component_type = component_type
        self.operation = operation
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{component_type}: {operation} failed: {reason}")
