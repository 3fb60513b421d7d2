"""The state-store interface of the built-in engine, and the records it moves.

One interface, one conformance suite (tests/builtin/store_suite.py), small
dialects. A store keeps, per instance: a row (status and payloads), an
append-only history, an inbox of messages not yet applied (timers and
scheduled starts are messages that become visible later), and activity tasks.
A turn's whole effect is one :class:`TurnCommit`; :meth:`Store.commit_turns`
applies a batch of them in one transaction (group commit).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from turnout import FailureDetails, ListQuery, RuntimeStatus, WorkflowState
from turnout._serialization import loads

from ._events import Event


def _dt(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


@dataclass
class InstanceRow:
    """One instance as stored."""

    instance_id: str
    workflow_name: str
    status: RuntimeStatus
    execution_id: str
    created_at: float
    last_updated_at: float
    input: str | None = None
    output: str | None = None
    failure: dict[str, Any] | None = None
    custom_status: str | None = None
    scheduled_start_at: float | None = None
    parent_instance_id: str | None = None
    parent_task_id: int | None = None
    parent_execution_id: str | None = None
    history_length: int = 0

    def to_state(self) -> WorkflowState:
        """The management API's view of the row."""
        failure = FailureDetails.model_validate(self.failure) if self.failure else None
        properties = {"turnout.execution_id": self.execution_id}
        return WorkflowState(
            instance_id=self.instance_id,
            workflow_name=self.workflow_name,
            runtime_status=self.status,
            created_at=_dt(self.created_at),  # type: ignore[arg-type]
            last_updated_at=_dt(self.last_updated_at),  # type: ignore[arg-type]
            input=loads(self.input),
            output=loads(self.output),
            failure=failure,
            custom_status=loads(self.custom_status),
            parent_instance_id=self.parent_instance_id,
            scheduled_start_at=_dt(self.scheduled_start_at),
            properties=properties,
        )


@dataclass
class Message:
    """An event on its way to an instance's inbox, visible from ``visible_at`` (epoch seconds)."""

    instance_id: str
    event: Event
    visible_at: float


@dataclass
class ActivityTask:
    """An activity to run (at least once) and report to its instance."""

    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    retry: dict[str, Any] | None
    attempt: int
    first_attempt_at: float
    workflow_name: str = ""
    trace: dict[str, str] | None = None
    """The trace context of the turn that scheduled it (W3C headers)."""


@dataclass
class NewTask:
    """An activity task a turn schedules."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    retry: dict[str, Any] | None
    visible_at: float
    workflow_name: str = ""
    trace: dict[str, str] | None = None
    locked: bool = False
    """Insert it locked by the committing worker, which runs it at once (no claim needed)."""
    id: int | None = None
    """Its row id, set by the commit."""

    def claimed(self) -> ActivityTask:
        """The task as the worker that locked it at insert runs it (first attempt)."""
        assert self.id is not None, "only a committed task can be run"
        return ActivityTask(
            id=self.id,
            instance_id=self.instance_id,
            execution_id=self.execution_id,
            task_id=self.task_id,
            name=self.name,
            input=self.input,
            retry=self.retry,
            attempt=1,
            first_attempt_at=self.visible_at,
            workflow_name=self.workflow_name,
            trace=self.trace,
        )


@dataclass
class NewChild:
    """A child instance a turn starts; if its id is taken, the parent gets a failure instead."""

    row: InstanceRow
    start: Event
    failure_if_exists: Event
    """ChildWorkflowFailed for the parent, sent when the child id is already in use."""


@dataclass
class TurnCommit:
    """Everything one turn changes, applied atomically."""

    instance_id: str
    expected_history_length: int
    consumed: list[int]
    """Inbox ids applied (or dropped)."""
    new_events: list[Event]
    status: RuntimeStatus
    last_updated_at: float
    output: str | None = None
    failure: dict[str, Any] | None = None
    custom_status: str | None = None
    reset_history: bool = False
    """Continue-as-new: the history restarts (the new events are the new execution's first)."""
    new_execution_id: str | None = None
    new_input: str | None = None
    tasks: list[NewTask] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    children: list[NewChild] = field(default_factory=list)
    status_changed: bool = True
    """Whether the instance's status differs from before the turn (waiters care only then)."""
    terminate_children: str | None = None
    """When set, a TerminateRequested with this reason goes to every unfinished child."""
    workflow_name: str | None = None
    finished: list[ActivityOutcome] = field(default_factory=list)
    """Activity results this turn applied straight from the worker that ran them (not via the inbox).

    Their tasks are deleted with the turn: one transaction per step instead of
    two. If the turn is refused (stale, or a task's lock passed to another
    worker), the results the worker still owns go to the inbox instead, as
    :meth:`Store.finish_tasks` would deliver them.
    """


@dataclass
class ActivityOutcome:
    """What became of one claimed activity task: a result to deliver, or a retry later."""

    task: ActivityTask
    message: Event | None = None
    retry_at: float | None = None


@dataclass
class TurnWork:
    """What a turn needs: the instance row, its visible messages and (if asked) its history."""

    instance: InstanceRow | None
    instance_id: str
    messages: list[tuple[int, Event]]
    history: list[Event] | None = None


@dataclass
class StoredDefinition:
    """A declarative workflow definition as stored: one immutable version of a name."""

    name: str
    version: str
    dialect: str
    document: str
    created_at: float


class Store(ABC):
    """Durable state of the built-in engine."""

    lease_seconds: float = 10.0
    """How long an instance lease or a task lock lasts without a heartbeat."""

    async def open(self) -> None:
        """Connect and apply migrations."""

    def listen(self, callback: Callable[[list[str] | None], None], *, tag: str) -> None:
        """Call ``callback`` (from any thread) when another process commits.

        Its argument lists the instances whose status that commit changed
        (None: any may have). Commits made under ``tag`` (this process) are not
        reported. Stores that only one process uses need not implement it:
        in-process wake-ups cover them, and the engine polls as a fallback.
        """

    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def recover(self, owner: str) -> None:
        """Take over work left by dead workers (the owner is this worker)."""

    @abstractmethod
    async def create_instance(
        self,
        row: InstanceRow,
        start: Event,
        visible_at: float,
        replace: bool,
        *,
        lease_to: str | None = None,
        first_turn: TurnCommit | None = None,
    ) -> int | None:
        """Insert a new instance and its start message; InstanceExists if the id is taken.

        With ``replace``, a finished instance of that id is purged first. With
        ``lease_to``, the instance is created leased to that worker, which can
        run its first turn without claiming it. Returns the start message's inbox id.

        With ``first_turn`` as well (the turn that worker ran on ``start``, its
        history starting with it), that turn is committed with the row instead
        of a start message: a start and its first step are one transaction.
        Returns None then.
        """

    @abstractmethod
    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        """One instance row."""

    @abstractmethod
    async def list_instances(self, query: ListQuery) -> tuple[list[InstanceRow], str | None]:
        """Rows matching the query, newest first, and the token of the next page."""

    @abstractmethod
    async def load_history(self, instance_id: str) -> list[Event]:
        """The instance's history, oldest first."""

    @abstractmethod
    async def enqueue(self, message: Message) -> InstanceRow:
        """Add a message for an existing, unfinished instance.

        InstanceNotFound or InvalidState (finished instance) otherwise; returns the row.
        """

    @abstractmethod
    async def ready_instances(self, owner: str, now: float, limit: int, exclude: set[str]) -> list[str]:
        """Instances with visible messages, except ``exclude``, now leased by ``owner``.

        The instance whose message became visible first comes first. Instances
        leased by another live worker are left to it.
        """

    @abstractmethod
    async def load_turns(self, instance_ids: list[str], now: float, with_history: set[str]) -> list[TurnWork]:
        """Rows and visible messages of these instances (and the history of ``with_history``)."""

    async def claim_turns(
        self, owner: str, now: float, limit: int, exclude: set[str], cached: Callable[[str], bool]
    ) -> list[TurnWork]:
        """``ready_instances`` then ``load_turns`` (with the history of those not ``cached``).

        SQL stores do both in one transaction: one round trip per batch of turns.
        """
        ids = await self.ready_instances(owner, now, limit, exclude)
        if not ids:
            return []
        return await self.load_turns(ids, now, {iid for iid in ids if not cached(iid)})

    @abstractmethod
    async def commit_turns(self, owner: str, commits: list[TurnCommit]) -> list[str]:
        """Apply the turns in one transaction; returns the ids of turns refused as stale.

        A turn is stale when its instance's history changed since it was read,
        ``owner`` no longer holds the instance's lease, or (for a turn with
        ``finished`` results) ``owner`` lost the lock of one of those tasks.
        """

    @abstractmethod
    async def release(self, owner: str, instance_ids: list[str]) -> None:
        """Give up the leases of these instances (evicted from the cache)."""

    @abstractmethod
    async def release_all(self, owner: str) -> None:
        """Give up every lease and task lock of ``owner`` (a clean shutdown)."""

    @abstractmethod
    async def heartbeat(self, owner: str, now: float, tasks: Collection[int]) -> None:
        """Extend the instance leases ``owner`` holds, and its locks on ``tasks`` (those it runs).

        Only running tasks are named: a task locked by ``owner`` that it does not
        run (inserted locked by a commit whose answer was lost) lets its lock
        expire and is claimed again, rather than held for ever.
        """

    @abstractmethod
    async def claim_tasks(self, owner: str, now: float, limit: int) -> list[ActivityTask]:
        """Visible, unclaimed activity tasks, now claimed by ``owner``."""

    @abstractmethod
    async def finish_tasks(self, owner: str, outcomes: list[ActivityOutcome]) -> None:
        """Delete finished tasks and deliver their results, or release them for a retry; one transaction.

        Tasks whose lock ``owner`` lost to another worker are left alone, so a
        result is delivered once.
        """

    @abstractmethod
    async def next_due(self, now: float) -> float | None:
        """The earliest time after ``now`` at which a message or a task becomes visible."""

    @abstractmethod
    async def purge(self, instance_id: str) -> list[str]:
        """Delete a finished instance and its children, recursively; returns the ids deleted."""

    # -- declarative definitions ---------------------------------------------------------

    @abstractmethod
    async def put_definition(self, definition: StoredDefinition) -> StoredDefinition:
        """Store a version; the same version again returns the stored one unchanged.

        Raises DefinitionExists when the version is stored with another document.
        """

    @abstractmethod
    async def get_definition(self, name: str, version: str | None) -> StoredDefinition | None:
        """One version, or the latest stored of the name when ``version`` is None."""

    @abstractmethod
    async def list_definitions(self) -> list[StoredDefinition]:
        """Every stored version, by name and then in the order they were stored."""
