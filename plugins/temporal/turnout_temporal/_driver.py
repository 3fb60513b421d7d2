"""Turnout's generator workflows driven by Temporal: one dynamic workflow, one dynamic activity.

With ``hostWorker: true`` the component runs a Temporal worker that knows a
single workflow class, :class:`TurnoutWorkflow`, registered for every
workflow type (Temporal's dynamic workflows), and a single dynamic activity.
The workflow finds the user's generator in the ``turnout.Workflows``
registry by its Temporal workflow type and drives it the way the built-in
engine does, with Temporal primitives underneath:

========================================  ==================================================
Turnout                                   Temporal
========================================  ==================================================
``ctx.call_activity(retry=...)``          ``workflow.start_activity`` (retry policy mapped)
``ctx.create_timer``                      ``workflow.sleep`` (a durable timer)
``ctx.wait_for_external_event``           a signal of that name, buffered FIFO per name
``ctx.call_child_workflow``               ``workflow.execute_child_workflow``
``ctx.continue_as_new``                   ``workflow.continue_as_new`` (unhandled events carried)
``ctx.set_custom_status``                 the memo ``turnout.customStatus`` (and a query)
``ctx.current_utc_datetime``              ``workflow.now()``
``ctx.is_replaying``                      ``workflow.unsafe.is_replaying()``
``ctx.new_uuid``                          ``workflow.uuid4()``
``ctx.is_patched``                        ``workflow.patched``
cancellation                              ``WorkflowCancelled`` thrown at the current yield
========================================  ==================================================

Everything here runs inside Temporal's deterministic workflow event loop:
tasks complete from Temporal's callbacks, in the order Temporal delivers them
on every replay, and the code keeps no state that replay could not rebuild
(no clock, no randomness, no iteration over sets).

The workflow class is not sandboxed: Turnout workflows are plain functions
registered at run time (closures included), handed over as objects rather
than re-imported, so Temporal's sandbox could not check them anyway. The
determinism rules are Turnout's own (docs/authoring.md), and Temporal's
replay still fails an instance whose code no longer matches its history.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import traceback
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import temporalio.workflow as temporal_workflow  # for where a parameter is called "workflow"
from temporalio import activity, workflow
from temporalio.common import RawValue, WorkflowIDReusePolicy
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)
from temporalio.workflow import ParentClosePolicy

from turnout import (
    ActivityContext,
    EventTimeoutError,
    FailureDetails,
    RetryPolicy,
    Task,
    TaskFailedError,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowNotRegistered,
    Workflows,
)
from turnout._models import validate_instance_id
from turnout._serialization import coerce, to_json_value
from turnout._workflows import name_of

from ._mapping import CUSTOM_STATUS_MEMO

HOST_FUNCTION = "turnout.host"
"""The worker's extern function that hands the workflow its :class:`Host`."""

CUSTOM_STATUS_QUERY = "turnout.custom_status"
"""A query that answers the custom status, for ``temporal workflow query`` and other tools."""

CARRIED_EVENTS = "turnout.carriedEvents"
"""Key of the second continue-as-new argument that carries unhandled events to the next run."""

MAX_RETRY_INTERVAL = timedelta(days=365)
"""Cap on Temporal's maximum retry interval when a policy sets none (Turnout's waits are uncapped)."""


@dataclass(frozen=True)
class Host:
    """What the worker's workflows and activities need from the component."""

    workflows: Workflows
    activity_timeout: timedelta
    executor: Executor
    """Runs the registry's plain (``def``) activities off the event loop."""


def temporal_retry_policy(policy: RetryPolicy | None) -> TemporalRetryPolicy:
    """Turnout's retry policy in Temporal's terms.

    No policy means one attempt (Temporal would otherwise retry for ever).
    Temporal needs positive intervals with the maximum at least the first;
    without a maximum, Turnout's waits grow unbounded, so the maximum is the
    longest wait the policy can reach.
    """
    if policy is None:
        return TemporalRetryPolicy(maximum_attempts=1)
    initial = max(policy.first_retry_interval, timedelta(milliseconds=1))
    if policy.max_retry_interval is not None:
        maximum = max(policy.max_retry_interval, timedelta(milliseconds=1))
        initial = min(initial, maximum)
    else:
        exponent = max(policy.max_attempts - 2, 0)
        try:
            longest = initial.total_seconds() * policy.backoff_coefficient**exponent
        except OverflowError:
            longest = MAX_RETRY_INTERVAL.total_seconds()
        maximum = min(max(timedelta(seconds=longest), initial), MAX_RETRY_INTERVAL)
    return TemporalRetryPolicy(
        initial_interval=initial,
        backoff_coefficient=policy.backoff_coefficient,
        maximum_interval=maximum,
        maximum_attempts=policy.max_attempts,
        non_retryable_error_types=list(policy.non_retryable_errors),
    )


def application_error(
    exc: BaseException, message: str | None = None, *, non_retryable: bool = False
) -> ApplicationError:
    """An exception as the ApplicationError Temporal records: its type name, message and stack.

    Temporal fails a workflow only for FailureErrors; any other exception
    would fail the workflow *task* and retry it for ever.
    """
    error = ApplicationError(
        message if message is not None else str(exc), type=type(exc).__name__, non_retryable=non_retryable
    )
    error.__traceback__ = exc.__traceback__
    return error


def _payload_value(args: Sequence[RawValue], index: int = 0) -> Any:
    if len(args) <= index:
        return None
    return workflow.payload_converter().from_payload(args[index].payload)


class _EventWait(Task[Any]):
    """A wait for an external event, completed by the next event of its name."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class _Events:
    """External events (signals): buffered FIFO per case-insensitive name, handed to waits in order."""

    def __init__(self) -> None:
        self._buffered: dict[str, deque[tuple[int, str, Any]]] = {}
        self._waiters: dict[str, deque[_EventWait]] = {}
        self._arrivals = 0

    def deliver(self, name: str, data: Any) -> None:
        """An event arrived: the oldest live wait for it takes it, or it is buffered."""
        key = name.lower()
        waiters = self._waiters.get(key)
        while waiters and waiters[0].lost_race:
            waiters.popleft()  # its when_any went another way: nobody waits there any more
        if waiters:
            waiters.popleft().complete(data)
            return
        self._arrivals += 1
        self._buffered.setdefault(key, deque()).append((self._arrivals, name, data))

    def wait(self, name: str) -> _EventWait:
        """A task completed by the next event of this name (a buffered one at once)."""
        key = name.lower()
        task = _EventWait(key)
        buffered = self._buffered.get(key)
        if buffered:
            task.complete(buffered.popleft()[2])
        else:
            self._waiters.setdefault(key, deque()).append(task)
        return task

    def withdraw(self, task: _EventWait) -> None:
        """The wait timed out: it no longer takes events."""
        waiters = self._waiters.get(task.key)
        if waiters and task in waiters:
            waiters.remove(task)

    def revive(self, task: _EventWait) -> None:
        """A wait that lost a when_any is yielded again: it waits once more."""
        task.revive()
        waiters = self._waiters.setdefault(task.key, deque())
        if task in waiters:
            return
        buffered = self._buffered.get(task.key)
        if buffered:
            task.complete(buffered.popleft()[2])
        else:
            waiters.append(task)

    def unhandled(self) -> list[list[Any]]:
        """Buffered events in arrival order, as ``[name, data]`` pairs (for continue-as-new)."""
        items = sorted((e for queue in self._buffered.values() for e in queue), key=lambda e: e[0])
        return [[name, data] for _, name, data in items]


class _Context(WorkflowContext):
    """The WorkflowContext a Turnout generator gets when Temporal runs it."""

    def __init__(self, host: Host, events: _Events, on_status: Callable[[Any], None]) -> None:
        self._host = host
        self._events = events
        self._on_status = on_status
        self._next_task_id = 0
        self.continue_with: tuple[Any, bool] | None = None

    # -- facts ---------------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return workflow.info().workflow_id

    @property
    def workflow_name(self) -> str:
        return workflow.info().workflow_type

    @property
    def current_utc_datetime(self) -> datetime:
        return workflow.now()

    @property
    def is_replaying(self) -> bool:
        return workflow.unsafe.is_replaying()

    def new_uuid(self) -> str:
        return str(workflow.uuid4())

    def is_patched(self, name: str) -> bool:
        return workflow.patched(name)

    def set_custom_status(self, status: Any) -> None:
        self._on_status(to_json_value(status, what="custom status"))

    def continue_as_new(self, input: Any = None, *, save_events: bool = True) -> None:
        self.continue_with = (to_json_value(input, what="continue_as_new input"), save_events)

    # -- steps ---------------------------------------------------------------------------

    def _task_id(self) -> int:
        # Numbered as the built-in engine numbers its steps, so child ids and
        # ActivityContext.task_id are the same on both engines.
        task_id = self._next_task_id
        self._next_task_id += 1
        return task_id

    def _output_type(self, target: Callable[..., Any] | str, *, kind: str) -> Any:
        if isinstance(target, str):
            return None
        lookup = (
            self._host.workflows.get_activity if kind == "activity" else self._host.workflows.get_workflow
        )
        try:
            registered = lookup(name_of(target))
        except WorkflowNotRegistered:
            return None
        return registered.output_type if registered.fn is target else None

    def call_activity(
        self, activity: Callable[..., Any] | str, *, input: Any = None, retry: RetryPolicy | None = None
    ) -> Task[Any]:
        name = name_of(activity)
        output_type = self._output_type(activity, kind="activity")
        value = to_json_value(input, what=f"input of activity '{name}'")
        task_id = self._task_id()
        handle = workflow.start_activity(
            name,
            args=[] if value is None else [value],
            activity_id=str(task_id),
            start_to_close_timeout=self._host.activity_timeout,
            schedule_to_close_timeout=retry.retry_timeout if retry is not None else None,
            retry_policy=temporal_retry_policy(retry),
        )
        task: Task[Any] = Task()
        handle.add_done_callback(
            lambda done: _settle(task, done, f"activity '{name}' (task {task_id})", output_type)
        )
        return task

    def call_child_workflow(
        self, workflow: Callable[..., Any] | str, *, input: Any = None, instance_id: str | None = None
    ) -> Task[Any]:
        name = name_of(workflow)
        if instance_id is not None:
            validate_instance_id(instance_id)
        output_type = self._output_type(workflow, kind="workflow")
        value = to_json_value(input, what=f"input of child workflow '{name}'")
        task_id = self._task_id()
        child_id = instance_id or f"{self.instance_id}:{task_id:04x}"
        running = asyncio.ensure_future(
            temporal_workflow.execute_child_workflow(
                name,
                args=[] if value is None else [value],
                id=child_id,
                task_queue=temporal_workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.TERMINATE,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,  # an id in use fails, as built in
            )
        )
        task: Task[Any] = Task()
        running.add_done_callback(
            lambda done: _settle(
                task, done, f"child workflow '{name}' (task {task_id})", output_type, child_id
            )
        )
        return task

    def create_timer(self, fire_at: datetime | timedelta) -> Task[None]:
        if isinstance(fire_at, timedelta):
            delay = fire_at
        else:
            if fire_at.tzinfo is None:
                raise ValueError("create_timer needs a timezone-aware datetime (or a timedelta)")
            delay = fire_at - workflow.now()
        self._task_id()
        return self._timer(delay)

    def _timer(self, delay: timedelta) -> Task[None]:
        task: Task[None] = Task()
        seconds = delay.total_seconds()
        if seconds <= 0:
            task.complete(None)  # a time in the past fires at once (Temporal refuses empty timers)
            return task
        sleeping = asyncio.ensure_future(workflow.sleep(seconds))
        sleeping.add_done_callback(lambda done: _settle(task, done, "timer", None))
        return task

    def wait_for_external_event(self, name: str, *, timeout: timedelta | None = None) -> Task[Any]:
        task = self._events.wait(name)
        if task.is_complete or timeout is None:
            return task
        self._task_id()
        timer = self._timer(timeout)

        def expire(_: Task[Any]) -> None:
            if task.is_complete:
                return
            self._events.withdraw(task)
            failure = FailureDetails(
                error_type="EventTimeoutError",
                message=f"no '{name}' event within {timeout.total_seconds():g}s",
            )
            task.fail(EventTimeoutError(failure.message, failure))

        timer.add_done_listener(expire)
        return task


def _settle(
    task: Task[Any], done: asyncio.Future[Any], what: str, output_type: Any, child_id: str | None = None
) -> None:
    """Complete a Turnout task from the Temporal future behind it (activity, child or timer)."""
    if done.cancelled():
        failure = FailureDetails(error_type="CanceledError", message=f"{what} was cancelled")
    else:
        exc = done.exception()
        if exc is None:
            value = done.result()
            try:
                task.complete(coerce(value, output_type) if output_type is not None else value)
                return
            except Exception as error:  # the result does not fit the annotation
                failure = FailureDetails(error_type=type(error).__name__, message=str(error))
        else:
            failure = _task_failure(exc, child_id)
    task.fail(TaskFailedError(f"{what} failed: {failure.error_type}: {failure.message}", failure))


def _task_failure(exc: BaseException, child_id: str | None) -> FailureDetails:
    """What failed a task: the activity's or child's own error, not Temporal's wrapper around it.

    Types and messages are the built-in engine's, so that workflow code that
    branches on ``error_type`` behaves the same on both engines.
    """
    if isinstance(exc, WorkflowAlreadyStartedError):
        return FailureDetails(
            error_type="InstanceExists",
            message=f"cannot start child workflow '{exc.workflow_type}': instance id "
            f"'{exc.workflow_id}' is already in use",
        )
    cause: BaseException = exc
    if isinstance(exc, ActivityError | ChildWorkflowError) and exc.cause is not None:
        cause = exc.cause
    if child_id is not None and isinstance(cause, TerminatedError | CancelledError):
        status = "TERMINATED" if isinstance(cause, TerminatedError) else "CANCELED"
        return FailureDetails(
            error_type=f"Workflow{status.title()}", message=f"child workflow '{child_id}' ended {status}"
        )
    if isinstance(cause, ApplicationError):
        error_type = cause.type or "ApplicationError"
    elif isinstance(cause, TemporalTimeoutError):
        error_type = "TimeoutError"
    elif isinstance(cause, CancelledError):
        error_type = "CanceledError"
    else:
        error_type = type(cause).__name__
    message = cause.message if isinstance(cause, FailureError) else str(cause)
    stack = cause.failure.stack_trace if isinstance(cause, FailureError) and cause.failure else None
    return FailureDetails(error_type=error_type, message=message, stack_trace=stack or None)


@workflow.defn(dynamic=True, sandboxed=False)
class TurnoutWorkflow:
    """Every Turnout workflow on Temporal: finds the generator by workflow type and drives it."""

    @workflow.init
    def __init__(self, args: Sequence[RawValue]) -> None:
        self._events = _Events()
        self._custom_status: Any = None
        # Events carried over by continue-as-new come first, before any signal of this run.
        carried = _payload_value(args, 1) if len(args) > 1 else None
        if isinstance(carried, dict):
            for name, data in carried.get(CARRIED_EVENTS, []):
                self._events.deliver(name, data)

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        """Run the registered generator to its end; failures become Temporal ApplicationErrors."""
        host: Host = workflow.extern_functions()[HOST_FUNCTION]()
        info = workflow.info()
        try:
            registered = host.workflows.get_workflow(info.workflow_type)
        except WorkflowNotRegistered as exc:
            raise application_error(exc) from None
        ctx = _Context(host, self._events, self._publish_status)
        call: list[Any] = [ctx]
        try:
            if registered.takes_input:
                call.append(coerce(_payload_value(args), registered.input_type))
            result = registered.fn(*call)
        except Exception as exc:
            raise application_error(exc) from None
        if registered.is_generator:
            result = await self._drive(ctx, result)
        elif ctx._next_task_id:
            raise ApplicationError(
                f"workflow '{info.workflow_type}' is not a generator but scheduled steps: "
                "write 'result = yield ctx.call_activity(...)' (did you forget 'yield'?)",
                type="TypeError",
            )
        return self._finish(ctx, result)

    async def _drive(self, ctx: _Context, generator: Generator[Any, Any, Any]) -> Any:
        """Advance the generator task by task; cancellation is thrown in as WorkflowCancelled."""
        send: Any = None
        throw: BaseException | None = None
        cancelled = False
        while True:
            try:
                yielded = generator.throw(throw) if throw is not None else generator.send(send)
            except StopIteration as stop:
                if cancelled:
                    raise CancelledError("the workflow returned after it was cancelled") from None
                return stop.value
            except WorkflowCancelled as exc:
                if workflow.cancellation_reason() is None:
                    raise application_error(exc) from None
                raise CancelledError(str(exc)) from None
            except Exception as exc:
                raise application_error(exc) from None
            send, throw = None, None
            if not isinstance(yielded, Task):
                _close(generator)
                raise ApplicationError(
                    f"workflow '{ctx.workflow_name}' yielded {type(yielded).__name__}, not a task: yield "
                    "what ctx.call_activity, ctx.create_timer, ctx.wait_for_external_event, when_all "
                    "or when_any return",
                    type="TypeError",
                )
            self._revive(yielded)
            while not yielded.is_complete:
                try:
                    await _completion(yielded)
                except asyncio.CancelledError:
                    reason = workflow.cancellation_reason()
                    if reason is None:
                        raise
                    if cancelled:
                        continue  # a repeated request: the first one is being handled
                    cancelled = True
                    throw = WorkflowCancelled(reason or "cancelled")  # as the built-in engine says
                    break
            if throw is not None:
                continue
            if yielded.is_failed:
                throw = yielded.exception
            else:
                send = yielded._result

    def _revive(self, task: Task[Any]) -> None:
        for child in getattr(task, "tasks", ()):
            self._revive(child)
        if isinstance(task, _EventWait) and task.lost_race:
            self._events.revive(task)

    def _finish(self, ctx: _Context, result: Any) -> Any:
        if ctx.continue_with is not None:
            value, save_events = ctx.continue_with
            args: list[Any] = [] if value is None else [value]
            unhandled = self._events.unhandled() if save_events else []
            if unhandled:
                args = [value, {CARRIED_EVENTS: unhandled}]
            workflow.continue_as_new(args=args)
        try:
            return to_json_value(result, what=f"output of workflow '{ctx.workflow_name}'")
        except Exception as exc:
            raise application_error(exc) from None

    def _publish_status(self, value: Any) -> None:
        if value == self._custom_status:
            return  # no history event for an unchanged status
        self._custom_status = value
        workflow.upsert_memo({CUSTOM_STATUS_MEMO: value})

    @workflow.signal(dynamic=True)
    def event(self, name: str, args: Sequence[RawValue]) -> None:
        """An external event (raise_event): buffered until the workflow waits for it."""
        self._events.deliver(name, _payload_value(args))

    @workflow.query(name=CUSTOM_STATUS_QUERY)
    def custom_status(self) -> Any:
        """The custom status, for tools that query (``temporal workflow query``)."""
        return self._custom_status


async def _completion(task: Task[Any]) -> None:
    """Wait, in the workflow's event loop, until a Turnout task completes."""
    if task.is_complete:
        return
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(_: Task[Any]) -> None:
        if not done.done():
            done.set_result(None)

    task.add_done_listener(wake)
    await done


def _close(generator: Generator[Any, Any, Any]) -> None:
    try:
        generator.close()
    except Exception:  # code that misbehaves while being closed changes nothing
        workflow.logger.debug("workflow generator raised while closing:\n%s", traceback.format_exc())


class ActivityRunner:
    """The worker's one dynamic activity: runs the registry's activity named by the activity type."""

    def __init__(self, host: Host) -> None:
        self._host = host

    @activity.defn(dynamic=True)
    async def run(self, args: Sequence[RawValue]) -> Any:
        """Call the registered function with an ActivityContext; errors keep their type name."""
        info = activity.info()
        try:
            registered = self._host.workflows.get_activity(info.activity_type)
        except WorkflowNotRegistered as exc:
            raise application_error(exc, non_retryable=True) from None  # a retry cannot register it
        value = activity.payload_converter().from_payload(args[0].payload) if args else None
        ctx = ActivityContext(
            instance_id=info.workflow_id or "",
            task_id=int(info.activity_id) if info.activity_id.isdigit() else 0,
            attempt=info.attempt,
            activity_name=info.activity_type,
            workflow_name=info.workflow_type or "",
        )
        try:
            call = [ctx]
            if registered.takes_input:
                call.append(coerce(value, registered.input_type))
            if registered.is_async:
                result = await registered.fn(*call)
            else:
                loop = asyncio.get_running_loop()
                bound = functools.partial(contextvars.copy_context().run, registered.fn, *call)
                result = await loop.run_in_executor(self._host.executor, bound)
            return to_json_value(result, what=f"result of activity '{info.activity_type}'")
        except Exception as exc:
            raise application_error(exc) from None
