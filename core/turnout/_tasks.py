"""Durable tasks: what a workflow yields, and how results and failures come back.

A workflow generator yields a :class:`Task`; the engine resumes it with the
task's result, or throws :class:`TaskFailedError` into it so ``try/except``
around a ``yield`` behaves like ordinary Python. ``when_all`` and ``when_any``
compose tasks. These classes are engine-independent: each engine's driver
completes the tasks from its own history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._models import FailureDetails

T = TypeVar("T")


class TaskFailedError(Exception):
    """A task (activity, child workflow, event wait) failed.

    ``failure`` carries the original error's type, message and stack, as
    recorded in the history, so the workflow can decide what to do.
    """

    def __init__(self, message: str, failure: FailureDetails) -> None:
        super().__init__(message)
        self.failure = failure

    @property
    def error_type(self) -> str:
        """The type name of the error that failed the task (e.g. ``ValueError``)."""
        return self.failure.error_type


class EventTimeoutError(TaskFailedError, TimeoutError):
    """``wait_for_external_event(name, timeout=...)`` timed out before the event came."""


class WorkflowCancelled(BaseException):
    """Thrown into a workflow at its current ``yield`` when the instance is cancelled.

    It derives from BaseException so that ``except Exception`` does not
    swallow it. Catch it explicitly to compensate (the workflow may still run
    activities); the instance then ends CANCELED.
    """

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "the workflow instance was cancelled")
        self.reason = reason


class NonDeterminismError(Exception):
    """Replaying the history produced different steps than the code now asks for."""


class RetryPolicy(BaseModel):
    """How often and how soon a failed activity is tried again (durably, by the engine).

    The n-th retry waits ``first_retry_interval * backoff_coefficient**(n-1)``,
    capped by ``max_retry_interval``; no retry starts after ``retry_timeout``
    from the first attempt. Errors whose type name is in
    ``non_retryable_errors`` fail at once.
    """

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=3, ge=1)
    first_retry_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = Field(default=2.0, ge=1.0)
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None
    non_retryable_errors: tuple[str, ...] = ()

    @field_validator("non_retryable_errors", mode="before")
    @classmethod
    def _type_names(cls, value: Any) -> Any:
        # Exception classes are accepted as well as their names.
        if isinstance(value, (str, type)):
            value = [value]
        return tuple(v.__name__ if isinstance(v, type) else v for v in value)

    @model_validator(mode="after")
    def _check_intervals(self) -> RetryPolicy:
        if self.first_retry_interval < timedelta(0):
            raise ValueError("first_retry_interval must not be negative")
        return self

    def delay_before(self, attempt: int) -> timedelta:
        """The wait before ``attempt`` (2 is the first retry)."""
        seconds = self.first_retry_interval.total_seconds() * self.backoff_coefficient ** max(attempt - 2, 0)
        if self.max_retry_interval is not None:
            seconds = min(seconds, self.max_retry_interval.total_seconds())
        return timedelta(seconds=seconds)

    def allows(self, next_attempt: int, error_type: str, elapsed: timedelta) -> bool:
        """Whether ``next_attempt`` may run after a failure of type ``error_type``."""
        if next_attempt > self.max_attempts or error_type in self.non_retryable_errors:
            return False
        return not (self.retry_timeout is not None and elapsed >= self.retry_timeout)


class Task(Generic[T]):
    """A durable step a workflow waits for by yielding it."""

    __slots__ = ("_done", "_exception", "_listeners", "_lost_race", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        # Made on the first listener: most tasks never get one, and a parked
        # instance's task should not carry an empty list (56 bytes) for nothing.
        self._listeners: list[Callable[[Task[Any]], None]] | None = None
        self._lost_race = False

    @property
    def is_complete(self) -> bool:
        """True once the task has a result or a failure."""
        return self._done

    @property
    def is_failed(self) -> bool:
        """True when the task completed with a failure."""
        return self._done and self._exception is not None

    def get_result(self) -> T:
        """The result; raises the task's failure, or RuntimeError while it is still pending."""
        if not self._done:
            raise RuntimeError("the task is not complete yet: yield it to wait for it")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[no-any-return]

    @property
    def lost_race(self) -> bool:
        """True when a ``when_any`` holding this pending task finished with another task.

        Engines do not hand an event to a wait that lost its race (nobody waits on
        it any more) unless the workflow yields the task again.
        """
        return self._lost_race and not self._done

    def revive(self) -> None:
        """The workflow yields this task again: it waits once more."""
        self._lost_race = False

    @property
    def exception(self) -> BaseException | None:
        """The failure, if the task failed."""
        return self._exception

    def complete(self, result: Any) -> None:
        """Engine side: the task succeeded."""
        if self._done:
            return
        self._done = True
        self._result = result
        self._notify()

    def fail(self, exception: BaseException) -> None:
        """Engine side: the task failed."""
        if self._done:
            return
        self._done = True
        self._exception = exception
        self._notify()

    def add_done_listener(self, listener: Callable[[Task[Any]], None]) -> None:
        """Call ``listener(task)`` on completion (at once if already complete)."""
        if self._done:
            listener(self)
        elif self._listeners is None:
            self._listeners = [listener]
        else:
            self._listeners.append(listener)

    def _notify(self) -> None:
        listeners, self._listeners = self._listeners, None
        for listener in listeners or ():
            listener(self)


class WhenAllTask(Task[list[Any]]):
    """Completes with every result, in order, or fails with the first failure."""

    def __init__(self, tasks: Sequence[Task[Any]]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self._pending = len(self.tasks)
        if not self.tasks:
            self.complete([])
        for task in self.tasks:
            task.add_done_listener(self._on_child)

    def _on_child(self, task: Task[Any]) -> None:
        if self._done:
            return
        if task.is_failed:
            assert task.exception is not None
            self.fail(task.exception)
            return
        self._pending -= 1
        if self._pending == 0:
            self.complete([t._result for t in self.tasks])


class WhenAnyTask(Task[Task[Any]]):
    """Completes with the first task to complete (the task itself, not its result)."""

    def __init__(self, tasks: Sequence[Task[Any]]) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("when_any needs at least one task")
        self.tasks = list(tasks)
        for task in self.tasks:
            task.add_done_listener(self._on_child)

    def _on_child(self, task: Task[Any]) -> None:
        if self._done:
            return
        self.complete(task)
        for other in self.tasks:
            if other is not task and not other.is_complete:
                other._lost_race = True


def when_all(tasks: Sequence[Task[Any]]) -> WhenAllTask:
    """A task that waits for all ``tasks``; its result is the list of their results."""
    return WhenAllTask(tasks)


def when_any(tasks: Sequence[Task[Any]]) -> WhenAnyTask:
    """A task that waits for the first of ``tasks``; its result is that task."""
    return WhenAnyTask(tasks)
