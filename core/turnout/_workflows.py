"""Workflow as code: the registry of workflows and activities, and their contexts.

Engine-independent. A workflow is a generator function ``(ctx, input)`` that
yields tasks made by its :class:`WorkflowContext`; an activity is a plain or
``async`` function ``(ctx, input)`` that does the real work. Each engine that
runs Turnout code implements the context; users only see this interface.
"""

from __future__ import annotations

import contextlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from ._errors import WorkflowNotRegistered
from ._serialization import input_annotation, output_annotation, parameter_count
from ._tasks import RetryPolicy, Task

F = TypeVar("F", bound=Callable[..., Any])

_NAME_ATTR = "__turnout_name__"


@dataclass(frozen=True)
class Registered:
    """A workflow or activity function as registered, with what the engine needs to call it."""

    name: str
    fn: Callable[..., Any]
    takes_input: bool
    input_type: Any
    output_type: Any
    is_generator: bool
    is_async: bool

    @classmethod
    def of(cls, name: str, fn: Callable[..., Any]) -> Registered:
        """Inspect ``fn`` once, at registration."""
        count = parameter_count(fn)
        if count not in (1, 2):
            raise TypeError(f"'{name}' must take (ctx) or (ctx, input), not {count} positional parameters")
        return cls(
            name=name,
            fn=fn,
            takes_input=count == 2,
            input_type=input_annotation(fn),
            output_type=output_annotation(fn),
            is_generator=inspect.isgeneratorfunction(fn),
            is_async=inspect.iscoroutinefunction(fn),
        )


def name_of(target: Callable[..., Any] | str) -> str:
    """The registered name of a workflow or activity given as a function or a name."""
    if isinstance(target, str):
        return target
    return getattr(target, _NAME_ATTR, None) or target.__name__


class Workflows:
    """A registry of workflows and activities, handed to a runtime.

    Not a global: an application may keep several and pass the one it wants.
    """

    def __init__(self) -> None:
        self._workflows: dict[str, Registered] = {}
        self._activities: dict[str, Registered] = {}

    @overload
    def workflow(self, fn: F, *, name: str | None = None) -> F: ...
    @overload
    def workflow(self, fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...

    def workflow(self, fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register a workflow: a generator function ``(ctx, input)``; ``name`` defaults to its own."""
        if fn is None:
            return lambda f: self.workflow(f, name=name)
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"workflow '{fn.__name__}' is async: workflows are generator functions that "
                "yield tasks (use 'yield ctx.call_activity(...)'); put async code in activities"
            )
        self._add(self._workflows, "workflow", name or fn.__name__, fn)
        return fn

    @overload
    def activity(self, fn: F, *, name: str | None = None) -> F: ...
    @overload
    def activity(self, fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...

    def activity(self, fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register an activity: a function or coroutine function ``(ctx, input)``."""
        if fn is None:
            return lambda f: self.activity(f, name=name)
        if inspect.isgeneratorfunction(fn):
            raise TypeError(f"activity '{fn.__name__}' is a generator: activities return their result")
        self._add(self._activities, "activity", name or fn.__name__, fn)
        return fn

    @staticmethod
    def _add(table: dict[str, Registered], kind: str, name: str, fn: Callable[..., Any]) -> None:
        if not name:
            raise ValueError(f"a {kind} needs a non-empty name")
        existing = table.get(name)
        if existing is not None and existing.fn is not fn:
            raise ValueError(f"a {kind} named '{name}' is already registered ({existing.fn.__qualname__})")
        table[name] = Registered.of(name, fn)
        with contextlib.suppress(AttributeError, TypeError):  # some callables refuse attributes
            setattr(fn, _NAME_ATTR, name)

    def get_workflow(self, name: str) -> Registered:
        """The workflow registered under ``name``; WorkflowNotRegistered otherwise."""
        try:
            return self._workflows[name]
        except KeyError:
            raise WorkflowNotRegistered("workflow", name, list(self._workflows)) from None

    def get_activity(self, name: str) -> Registered:
        """The activity registered under ``name``; WorkflowNotRegistered otherwise."""
        try:
            return self._activities[name]
        except KeyError:
            raise WorkflowNotRegistered("activity", name, list(self._activities)) from None

    def has_workflow(self, name: str) -> bool:
        """Whether a workflow of this name is registered."""
        return name in self._workflows

    @property
    def workflow_names(self) -> list[str]:
        """Registered workflow names, sorted."""
        return sorted(self._workflows)

    @property
    def activity_names(self) -> list[str]:
        """Registered activity names, sorted."""
        return sorted(self._activities)


class WorkflowContext(ABC):
    """What a workflow may do. Every method is deterministic on replay.

    Workflow code must not read the clock, draw random numbers or do I/O:
    use ``current_utc_datetime``, ``new_uuid`` and activities instead.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def instance_id(self) -> str:
        """This instance's id."""

    @property
    @abstractmethod
    def workflow_name(self) -> str:
        """The registered name of the running workflow."""

    @property
    @abstractmethod
    def current_utc_datetime(self) -> datetime:
        """The time of the current turn, the same on every replay (timezone-aware, UTC)."""

    @property
    @abstractmethod
    def is_replaying(self) -> bool:
        """True while the code re-runs steps already in the history (e.g. to skip logging)."""

    @abstractmethod
    def call_activity(
        self,
        activity: Callable[..., Any] | str,
        *,
        input: Any = None,
        retry: RetryPolicy | None = None,
    ) -> Task[Any]:
        """Schedule an activity; yield the task for its result."""

    @abstractmethod
    def call_child_workflow(
        self,
        workflow: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
    ) -> Task[Any]:
        """Start a child workflow (its id defaults to ``<parent>:<task id>``); yield for its output."""

    @abstractmethod
    def create_timer(self, fire_at: datetime | timedelta) -> Task[None]:
        """A durable timer; ``fire_at`` is an aware datetime or a delay from now."""

    @abstractmethod
    def wait_for_external_event(self, name: str, *, timeout: timedelta | None = None) -> Task[Any]:
        """Wait for an event raised with ``raise_event``; events are FIFO per name.

        With ``timeout`` the task fails with EventTimeoutError if no event comes in time.
        """

    @abstractmethod
    def continue_as_new(self, input: Any = None, *, save_events: bool = True) -> None:
        """Restart this instance with a fresh history and ``input`` once the current step returns.

        With ``save_events`` the events that arrived but were not yet handled are carried over.
        """

    @abstractmethod
    def set_custom_status(self, status: Any) -> None:
        """Publish a JSON value that ``get`` shows as the instance's custom status."""

    @abstractmethod
    def new_uuid(self) -> str:
        """A UUID that is the same on every replay."""

    @abstractmethod
    def is_patched(self, name: str) -> bool:
        """Versioning: True for instances that reach this point running the patched code.

        Instances that passed this point before the patch existed replay with
        False, so the old path keeps working while new instances take the new one.
        """


@dataclass(frozen=True)
class ActivityContext:
    """What an activity knows of the call: which instance, which task, which attempt."""

    instance_id: str
    task_id: int
    attempt: int
    activity_name: str
    workflow_name: str
