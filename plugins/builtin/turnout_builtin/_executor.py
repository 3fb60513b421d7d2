"""The replay executor: history in, new events out. Pure: no store, no clock, no I/O.

A :class:`WorkflowRun` drives one instance's generator. Fed the stored
history (``replaying``), it re-runs the code and checks that every step the
code asks for matches what the history recorded; fed new messages, it resumes
the code and records the steps it now takes. The engine keeps hot runs in
memory between turns, so replay from the store is only the recovery path.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import uuid
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from turnout import (
    EventTimeoutError,
    FailureDetails,
    NonDeterminismError,
    RetryPolicy,
    RuntimeStatus,
    Task,
    TaskFailedError,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowNotRegistered,
    Workflows,
)
from turnout._models import validate_instance_id
from turnout._serialization import coerce, dumps, loads
from turnout._workflows import Registered, name_of

from ._events import CONTROL, PRODUCED, Event, Kind

_NO_EVENTS: list[Event] = []  # shared and never mutated: see WorkflowRun.carried_events

_UUID_NAMESPACE = uuid.UUID("6f1c2a52-7c1e-4f0e-9c55-1b0d5c3e9a11")


def failure_of(exc: BaseException) -> FailureDetails:
    """The recorded form of an exception: type, message and stack."""
    return FailureDetails(
        error_type=type(exc).__name__,
        message=str(exc),
        stack_trace="".join(traceback.format_exception(exc)),
    )


def _to_datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class _EventWait(Task[Any]):
    """A wait for an external event, completed by the next event of its name."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class _Pending:
    """A step the code asked for that the history has not confirmed yet (or that is new)."""

    __slots__ = ("confirmed", "event", "output_type", "task")

    def __init__(self, event: Event, task: Task[Any], output_type: Any) -> None:
        self.event = event
        self.task = task
        self.output_type = output_type
        self.confirmed = False


@dataclass
class TurnResult:
    """What one call to :meth:`WorkflowRun.process` did."""

    consumed: list[Event]
    """Messages applied, in order (they go to the history)."""
    new_events: list[Event] = field(default_factory=list)
    """Everything to append to the history: the consumed messages, then the produced steps."""
    skipped: list[Event] = field(default_factory=list)
    """Messages left in the inbox (buffered while the instance is suspended)."""


class _Context(WorkflowContext):
    """The WorkflowContext given to the user's generator."""

    __slots__ = ("_run",)

    def __init__(self, run: WorkflowRun) -> None:
        self._run = run

    @property
    def instance_id(self) -> str:
        return self._run.instance_id

    @property
    def workflow_name(self) -> str:
        return self._run.workflow_name

    @property
    def current_utc_datetime(self) -> datetime:
        return _to_datetime(self._run.now)

    @property
    def is_replaying(self) -> bool:
        return self._run.replaying

    def call_activity(
        self, activity: Callable[..., Any] | str, *, input: Any = None, retry: RetryPolicy | None = None
    ) -> Task[Any]:
        name = name_of(activity)
        output_type = self._run.output_type_of(activity)
        details = {"retry": retry.model_dump(mode="json")} if retry is not None else None
        return self._run.schedule(
            Kind.TASK_SCHEDULED,
            name=name,
            data=dumps(input, what=f"input of activity '{name}'"),
            details=details,
            output_type=output_type,
        )

    def call_child_workflow(
        self, workflow: Callable[..., Any] | str, *, input: Any = None, instance_id: str | None = None
    ) -> Task[Any]:
        name = name_of(workflow)
        task_id = self._run.next_task_id
        if instance_id is not None:
            validate_instance_id(instance_id)
        child_id = instance_id or f"{self._run.instance_id}:{task_id:04x}"
        return self._run.schedule(
            Kind.CHILD_SCHEDULED,
            name=name,
            data=dumps(input, what=f"input of child workflow '{name}'"),
            details={"instance_id": child_id},
            output_type=self._run.output_type_of(workflow),
        )

    def create_timer(self, fire_at: datetime | timedelta) -> Task[None]:
        if isinstance(fire_at, timedelta):
            when = self._run.now + fire_at.total_seconds()
        else:
            if fire_at.tzinfo is None:
                raise ValueError("create_timer needs a timezone-aware datetime (or a timedelta)")
            when = fire_at.timestamp()
        return self._run.schedule(Kind.TIMER_CREATED, details={"fire_at": when})

    def wait_for_external_event(self, name: str, *, timeout: timedelta | None = None) -> Task[Any]:
        return self._run.wait_for_event(name, timeout)

    def continue_as_new(self, input: Any = None, *, save_events: bool = True) -> None:
        self._run.continue_with = (dumps(input, what="continue_as_new input"), save_events)

    def set_custom_status(self, status: Any) -> None:
        self._run.custom_status = dumps(status, what="custom status")

    def new_uuid(self) -> str:
        self._run.uuid_counter += 1
        return str(uuid.uuid5(_UUID_NAMESPACE, f"{self._run.instance_id}/{self._run.uuid_counter}"))

    def is_patched(self, name: str) -> bool:
        return self._run.is_patched(name)


class WorkflowRun:
    """One instance's workflow code, driven by its history.

    Create it, call :meth:`replay` with the stored history (empty for a new
    instance), then :meth:`process` with each turn's messages.
    """

    # Slots: thousands of runs stay cached, and each byte counts per instance.
    __slots__ = (
        "_buffered",
        "_ctx",
        "_current",
        "_generator",
        "_known_patches",
        "_next_id",
        "_pending",
        "_produced",
        "_registered",
        "_unpatched",
        "_waiters",
        "cancel_requested",
        "carried_events",
        "continue_with",
        "custom_status",
        "failure",
        "history_length",
        "input",
        "instance_id",
        "now",
        "output",
        "replaying",
        "status",
        "suspended",
        "trace",
        "uuid_counter",
        "workflow_name",
        "workflows",
    )

    def __init__(self, workflows: Workflows, instance_id: str) -> None:
        self.workflows = workflows
        self.instance_id = instance_id
        self.workflow_name = ""
        self.now = 0.0
        self.replaying = False
        self.status = RuntimeStatus.PENDING
        self.output: str | None = None
        self.failure: FailureDetails | None = None
        self.custom_status: str | None = None
        self.input: str | None = None
        self.continue_with: tuple[str | None, bool] | None = None
        self.carried_events: list[Event] = _NO_EVENTS  # replaced, never appended to, on continue-as-new
        self.history_length = 0
        self.uuid_counter = 0
        self.suspended = False
        self.cancel_requested: str | None = None
        self.trace: dict[str, str] | None = None
        self._ctx = _Context(self)
        self._generator: Generator[Any, Any, Any] | None = None
        self._registered: Registered | None = None
        self._current: Task[Any] | None = None
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        # Every byte counts per cached instance: containers that are empty while an
        # instance waits are made when first needed (an empty list is 56 bytes, an
        # empty dict 64), and lists stand in for deques (an empty deque is 600).
        self._produced: list[Event] | None = None
        self._waiters: dict[str, list[Task[Any]]] = {}
        self._buffered: dict[str, list[Event]] | None = None
        self._known_patches: set[str] | None = None
        self._unpatched: set[str] | None = None

    # -- the public driver ---------------------------------------------------------------

    def replay(self, history: list[Event]) -> None:
        """Re-run the code over the stored history, checking each step the code takes."""
        patches = {e.name for e in history if e.kind is Kind.PATCH_APPLIED and e.name}
        self._known_patches = patches or None
        self.replaying = True
        try:
            for event in history:
                self._apply(event)
                self.history_length += 1
            # Steps the code asked for that the history does not hold are new: the
            # previous turn's code path ends here, so they are emitted by the next turn.
        finally:
            self.replaying = False

    def process(self, now: float, messages: Iterable[Event]) -> TurnResult:
        """Apply new messages; returns what to append to the history and what stays buffered."""
        pending = list(messages)
        result = TurnResult(consumed=[])
        if self.status.is_terminal:
            result.consumed = pending  # nothing more can happen: the messages are dropped
            return result
        if not pending or (self.suspended and not any(m.kind in CONTROL for m in pending)):
            result.skipped = pending  # nothing applies now: no turn is recorded
            return result
        turn = Event(Kind.TURN_STARTED, now)
        self._apply(turn)
        result.new_events.append(turn)
        progress = True
        while progress and pending and not self._ended:
            progress = False
            for message in list(pending):
                if self._ended:
                    break
                if self.suspended and message.kind not in CONTROL:
                    continue
                pending.remove(message)
                self._apply(message)
                result.consumed.append(message)
                result.new_events.append(message)
                progress = True
        if self.status.is_terminal:
            result.consumed.extend(pending)  # late messages for a finished instance are dropped
            pending = []
        result.skipped = pending
        result.new_events.extend(self._drain_produced())
        self.history_length += len(result.new_events)
        return result

    @property
    def _ended(self) -> bool:
        # After continue-as-new, messages not yet applied stay in the inbox for the
        # next execution (events are kept, stale results dropped there).
        return self.status.is_terminal or self.status is RuntimeStatus.CONTINUED_AS_NEW

    # -- applying events -----------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        handler = _HANDLERS[event.kind]
        try:
            handler(self, event)
        except NonDeterminismError as exc:
            self._finish_failed(failure_of(exc))

    def _on_turn_started(self, event: Event) -> None:
        self.now = event.timestamp

    def _on_workflow_started(self, event: Event) -> None:
        if self._generator is not None or self.status.is_terminal:
            return
        self.workflow_name = event.name or ""
        self.input = event.data
        self.trace = event.detail("trace")
        try:
            registered = self.workflows.get_workflow(self.workflow_name)
        except WorkflowNotRegistered as exc:
            self._finish_failed(failure_of(exc))
            return
        self._registered = registered
        self.status = RuntimeStatus.SUSPENDED if self.suspended else RuntimeStatus.RUNNING
        args: list[Any] = [self._ctx]
        try:
            if registered.takes_input:
                args.append(coerce(loads(event.data), registered.input_type))
            if not registered.is_generator:
                value = registered.fn(*args)
                if self._pending:
                    raise TypeError(
                        f"workflow '{self.workflow_name}' is not a generator but scheduled steps: "
                        "write 'result = yield ctx.call_activity(...)' (did you forget 'yield'?)"
                    )
                self._finish_completed(value)
                return
            self._generator = registered.fn(*args)
        except Exception as exc:
            self._finish_failed(failure_of(exc))
            return
        self._step(lambda gen: next(gen))

    def _on_produced(self, event: Event) -> None:
        assert event.task_id is not None
        step = self._pending.get(event.task_id)
        if step is None or step.confirmed:
            raise NonDeterminismError(_divergence(event, None))
        if step.event.kind is not event.kind or step.event.name != event.name:
            raise NonDeterminismError(_divergence(event, step.event))
        step.confirmed = True
        assert self._produced is not None  # an unconfirmed step is produced and not drained yet
        self._produced.remove(step.event)

    def _on_task_completed(self, event: Event) -> None:
        step = self._pending.pop(_task_key(event), None)
        if step is None:
            return  # a duplicate or stale result: the task already finished
        value = loads(event.data)
        step.task.complete(coerce(value, step.output_type) if step.output_type is not None else value)
        self._resume()

    def _on_task_failed(self, event: Event) -> None:
        step = self._pending.pop(_task_key(event), None)
        if step is None:
            return
        failure = FailureDetails.model_validate(
            event.detail("failure") or {"error_type": "Error", "message": ""}
        )
        what = "child workflow" if event.kind is Kind.CHILD_FAILED else "activity"
        cause = f"{failure.error_type}: {failure.message}"
        message = f"{what} '{step.event.name}' (task {event.task_id}) failed: {cause}"
        step.task.fail(TaskFailedError(message, failure))
        self._resume()

    def _on_timer_fired(self, event: Event) -> None:
        step = self._pending.pop(_task_key(event), None)
        if step is None:
            return
        step.task.complete(None)
        self._resume()

    def _on_event_raised(self, event: Event) -> None:
        key = (event.name or "").lower()
        waiters = self._waiters.get(key)
        while waiters and waiters[0].lost_race:
            waiters.pop(0)  # a wait whose when_any went another way: nobody wants this event there
        if waiters:
            task = waiters.pop(0)
            task.complete(loads(event.data))
            self._resume()
        elif self._buffered is None:
            self._buffered = {key: [event]}
        else:
            self._buffered.setdefault(key, []).append(event)

    def _on_patch_applied(self, event: Event) -> None:
        if event.name:
            self._known_patches = (self._known_patches or set()) | {event.name}

    def _on_suspended(self, event: Event) -> None:
        self.suspended = True
        if self.status in (RuntimeStatus.RUNNING, RuntimeStatus.PENDING):
            self.status = RuntimeStatus.SUSPENDED

    def _on_resumed(self, event: Event) -> None:
        self.suspended = False
        if self.status is RuntimeStatus.SUSPENDED:
            started = self._registered is not None
            self.status = RuntimeStatus.RUNNING if started else RuntimeStatus.PENDING

    def _on_terminate_requested(self, event: Event) -> None:
        self._close_generator()
        self.status = RuntimeStatus.TERMINATED
        self._current = None
        details = {"status": self.status.value, "reason": event.detail("reason")}
        self._produce(Event(Kind.WORKFLOW_COMPLETED, self.now, details=details))

    def _on_cancel_requested(self, event: Event) -> None:
        if self.cancel_requested is not None:
            return
        self.cancel_requested = event.detail("reason") or "cancelled"
        if self._generator is None:
            self._finish(RuntimeStatus.CANCELED, None, None)
            return
        reason = self.cancel_requested
        self._current = None
        self._step(lambda gen: gen.throw(WorkflowCancelled(reason)))

    def _on_completed(self, event: Event) -> None:
        # Recorded outcome of an earlier turn: replay has already reached the same state.
        if self._produced:
            self._produced = [e for e in self._produced if e.kind is not Kind.WORKFLOW_COMPLETED]

    def _on_continued_as_new(self, event: Event) -> None:
        if self._produced:
            self._produced = [e for e in self._produced if e.kind is not Kind.CONTINUED_AS_NEW]

    # -- the generator -------------------------------------------------------------------

    def _resume(self) -> None:
        current = self._current
        if current is None or not current.is_complete:
            return
        if current.is_failed:
            exc = current.exception
            assert exc is not None
            self._step(lambda gen: gen.throw(exc))
        else:
            value = current._result
            self._step(lambda gen: gen.send(value))

    def _step(self, advance: Callable[[Generator[Any, Any, Any]], Any]) -> None:
        """Advance the generator until it waits on an incomplete task or ends."""
        while self._generator is not None:
            gen = self._generator
            try:
                yielded = advance(gen)
            except StopIteration as stop:
                self._generator = None
                self._finish_completed(stop.value)
                return
            except WorkflowCancelled:
                self._generator = None
                self._finish(RuntimeStatus.CANCELED, None, None)
                return
            except Exception as exc:
                self._generator = None
                self._finish_failed(failure_of(exc))
                return
            if not isinstance(yielded, Task):
                self._close_generator()
                self._finish_failed(
                    failure_of(
                        TypeError(
                            f"workflow '{self.workflow_name}' yielded {type(yielded).__name__}, "
                            "not a task: yield what ctx.call_activity, ctx.create_timer, "
                            "ctx.wait_for_external_event, when_all or when_any return"
                        )
                    )
                )
                return
            self._revive(yielded)
            self._current = yielded
            if not yielded.is_complete:
                return
            if yielded.is_failed:
                exc = yielded.exception
                advance = lambda g, e=exc: g.throw(e)  # noqa: E731
            else:
                value = yielded._result
                advance = lambda g, v=value: g.send(v)  # noqa: E731

    def _close_generator(self) -> None:
        gen, self._generator = self._generator, None
        if gen is not None:
            # Code that misbehaves while being closed changes nothing.
            with contextlib.suppress(Exception):
                gen.close()

    def _finish_completed(self, value: Any) -> None:
        if self.continue_with is not None:
            self._continue_as_new()
            return
        status = RuntimeStatus.CANCELED if self.cancel_requested is not None else RuntimeStatus.COMPLETED
        try:
            output = dumps(value, what=f"output of workflow '{self.workflow_name}'")
        except Exception as exc:
            self._finish_failed(failure_of(exc))
            return
        self._finish(status, output, None)

    def _finish_failed(self, failure: FailureDetails) -> None:
        self._close_generator()
        self._finish(RuntimeStatus.FAILED, None, failure)

    def _finish(self, status: RuntimeStatus, output: str | None, failure: FailureDetails | None) -> None:
        self.status = status
        self.output = output
        self.failure = failure
        self._current = None
        details: dict[str, Any] = {"status": status.value}
        if failure is not None:
            details["failure"] = failure.model_dump()
        self._produce(Event(Kind.WORKFLOW_COMPLETED, self.now, data=output, details=details))

    def _continue_as_new(self) -> None:
        assert self.continue_with is not None
        data, save_events = self.continue_with
        buffered = self._buffered or {}
        carried = [e for queue in buffered.values() for e in queue] if save_events else []
        self.carried_events = sorted(carried, key=lambda e: e.timestamp)
        self.status = RuntimeStatus.CONTINUED_AS_NEW
        self._current = None
        self._produce(Event(Kind.CONTINUED_AS_NEW, self.now, data=data, details={"carried": len(carried)}))

    # -- steps the code asks for ---------------------------------------------------------

    @property
    def next_task_id(self) -> int:
        """The id the next scheduled step will get."""
        return self._next_id

    def output_type_of(self, target: Callable[..., Any] | str) -> Any:
        """The return annotation of a registered activity or workflow, to type its result."""
        if isinstance(target, str):
            return None
        name = name_of(target)
        for lookup in (self.workflows.get_activity, self.workflows.get_workflow):
            try:
                registered = lookup(name)
            except WorkflowNotRegistered:
                continue
            if registered.fn is target:
                return registered.output_type
        return None

    def schedule(
        self,
        kind: Kind,
        *,
        name: str | None = None,
        data: str | None = None,
        details: dict[str, Any] | None = None,
        output_type: Any = None,
    ) -> Task[Any]:
        """Record a new step (task, timer, child) and return the task the code will yield."""
        task_id = self._next_id
        self._next_id += 1
        event = Event(kind, self.now, task_id=task_id, name=name, data=data, details=details)
        task: Task[Any] = Task()
        self._pending[task_id] = _Pending(event, task, output_type)
        self._produce(event)
        return task

    def _revive(self, task: Task[Any]) -> None:
        """A yielded event wait that lost an earlier when_any race waits again."""
        for child in getattr(task, "tasks", ()):
            self._revive(child)
        if isinstance(task, _EventWait) and task.lost_race:
            task.revive()
            waiters = self._waiters.setdefault(task.key, [])
            if task in waiters:
                return
            buffered = self._buffered.get(task.key) if self._buffered else None
            if buffered:
                task.complete(loads(buffered.pop(0).data))
            else:
                waiters.append(task)

    def wait_for_event(self, name: str, timeout: timedelta | None) -> Task[Any]:
        """A task completed by the next event of this name (buffered ones first)."""
        key = sys.intern(name.lower())  # one string for every instance waiting on this name
        buffered = self._buffered.get(key) if self._buffered else None
        task = _EventWait(key)
        if buffered:
            task.complete(loads(buffered.pop(0).data))
            return task
        self._waiters.setdefault(key, []).append(task)
        if timeout is not None:
            timer = self.schedule(Kind.TIMER_CREATED, details={"fire_at": self.now + timeout.total_seconds()})

            def expire(_: Task[Any]) -> None:
                if task.is_complete:
                    return
                waiters = self._waiters.get(key)
                if waiters and task in waiters:
                    waiters.remove(task)
                failure = FailureDetails(
                    error_type="EventTimeoutError",
                    message=f"no '{name}' event within {timeout.total_seconds():g}s",
                )
                task.fail(EventTimeoutError(failure.message, failure))

            timer.add_done_listener(expire)
        return task

    def is_patched(self, name: str) -> bool:
        """True once the patch is recorded; False for instances that passed this point without it."""
        if self._known_patches and name in self._known_patches:
            return True
        if self.replaying or (self._unpatched and name in self._unpatched):
            self._unpatched = (self._unpatched or set()) | {name}
            return False
        self._known_patches = (self._known_patches or set()) | {name}
        self._produce(Event(Kind.PATCH_APPLIED, self.now, name=name))
        return True

    def _produce(self, event: Event) -> None:
        if self._produced is None:
            self._produced = [event]
        else:
            self._produced.append(event)

    def _drain_produced(self) -> list[Event]:
        produced, self._produced = self._produced or [], None
        for event in produced:
            if event.kind in PRODUCED and event.task_id in self._pending:
                self._pending[event.task_id].confirmed = True
        return produced


def _divergence(recorded: Event, asked: Event | None) -> str:
    what = f"{recorded.kind.value} '{recorded.name or ''}'".replace(" ''", "")
    step = f"step {recorded.task_id}"
    if asked is None:
        now = "the code no longer asks for it"
    else:
        now = f"the code now asks for {asked.kind.value} '{asked.name or ''}'".replace(" ''", "")
    return (
        f"non-deterministic workflow: at {step} the history holds {what}, but {now}. "
        "The workflow code changed while this instance was running, or it is not deterministic "
        "(it reads the clock, random numbers or I/O outside activities). Guard changed code with "
        "ctx.is_patched('<name>') so running instances keep the old path."
    )


_HANDLERS: dict[Kind, Callable[[WorkflowRun, Event], None]] = {
    Kind.TURN_STARTED: WorkflowRun._on_turn_started,
    Kind.WORKFLOW_STARTED: WorkflowRun._on_workflow_started,
    Kind.TASK_SCHEDULED: WorkflowRun._on_produced,
    Kind.TIMER_CREATED: WorkflowRun._on_produced,
    Kind.CHILD_SCHEDULED: WorkflowRun._on_produced,
    Kind.TASK_COMPLETED: WorkflowRun._on_task_completed,
    Kind.TASK_FAILED: WorkflowRun._on_task_failed,
    Kind.TIMER_FIRED: WorkflowRun._on_timer_fired,
    Kind.CHILD_COMPLETED: WorkflowRun._on_task_completed,
    Kind.CHILD_FAILED: WorkflowRun._on_task_failed,
    Kind.EVENT_RAISED: WorkflowRun._on_event_raised,
    Kind.PATCH_APPLIED: WorkflowRun._on_patch_applied,
    Kind.SUSPENDED: WorkflowRun._on_suspended,
    Kind.RESUMED: WorkflowRun._on_resumed,
    Kind.TERMINATE_REQUESTED: WorkflowRun._on_terminate_requested,
    Kind.CANCEL_REQUESTED: WorkflowRun._on_cancel_requested,
    Kind.WORKFLOW_COMPLETED: WorkflowRun._on_completed,
    Kind.CONTINUED_AS_NEW: WorkflowRun._on_continued_as_new,
}


def _task_key(event: Event) -> int:
    return -1 if event.task_id is None else event.task_id
