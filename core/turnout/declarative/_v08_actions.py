"""Serverless Workflow 0.8: running actions, and what every part of the interpreter shares.

An action is a function call (an activity, a local jq ``expression``
function, or an OpenAPI operation over HTTP), a child workflow
(``subFlowRef``) or an event round trip (``eventRef``), with its condition,
sleeps, retries and timeout. The base class here also holds the waiting
machinery: deadlines raced against every wait in their scope, and
:meth:`ActionRunner._together`, which drives several branch generators at
once with ``when_any`` (parallel actions, ``parallel`` branches, ``foreach``
iterations).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import turnout
from turnout._errors import WorkflowNotRegistered

from ._definition import Settings
from ._effects import EMIT_ACTIVITY, HTTP_ACTIVITY, callable_by_name
from ._expressions import ExpressionError, is_expression
from ._v08_data import Expressions, MergeError, merge_into
from ._v08_events import EventInbox, payload
from ._v08_model import (
    Action,
    ErrorDef,
    EventDataFilter,
    FunctionRef,
    RetryDef,
    State,
    Workflow08,
)
from ._v08_openapi import build_request, call_rest

log = logging.getLogger("turnout.declarative")

Step = Generator[turnout.Task[Any], Any, Any]
"""What every part of the interpreter is: a generator that yields Turnout tasks."""

DEFAULT_RETRY = RetryDef(name="default", delay=timedelta(seconds=1), multiplier=2.0, max_attempts=3)
"""The strategy of ``autoRetries`` (and of ``retryableErrors`` with no ``retryRef``)."""


# -- errors the interpreter raises -----------------------------------------------------------


class V08Timeout(TimeoutError):
    """A 0.8 timeout passed. The subclass names which; ``onErrors`` can handle all but the workflow's."""

    def __init__(self, message: str, deadline: _Deadline | None = None) -> None:
        super().__init__(message)
        self.deadline = deadline


class WorkflowExecTimeout(V08Timeout):
    """``timeouts.workflowExecTimeout`` passed: the run ends (after ``runBefore``), FAILED."""


class StateExecTimeout(V08Timeout):
    """``timeouts.stateExecTimeout`` passed before the state finished."""


class ActionExecTimeout(V08Timeout):
    """``timeouts.actionExecTimeout`` passed before the action (retries included) finished."""


class BranchExecTimeout(V08Timeout):
    """``timeouts.branchExecTimeout`` passed before a ``parallel`` branch finished."""


class EventTimeout(V08Timeout):
    """No matching event within ``eventTimeout`` (or an ``eventRef``'s ``resultEventTimeout``)."""


class WorkflowDefinitionError(Exception):
    """The definition asks for something this run cannot do (a function nothing implements...)."""


@dataclass(frozen=True)
class _Deadline:
    timer: turnout.Task[Any]
    error: type[V08Timeout]
    message: str


@dataclass
class _Outcome:
    value: Any = None
    error: Exception | None = None


_SKIP = object()  # an action whose result is not merged (condition false, useResults false)
_CUSTOM_REST = re.compile(r"^rest:(get|post|put|patch|delete):(\S+)$", re.IGNORECASE)  # Kogito's custom REST
MAX_STATES_WITHOUT_WAITING = 10_000
"""A run that goes through this many states without waiting once is an endless loop: it fails."""


# -- errors[] matching -----------------------------------------------------------------------


def describe(exc: BaseException) -> tuple[str, str]:
    """The error type and message the error-matching rules look at."""
    if isinstance(exc, turnout.TaskFailedError):
        return exc.failure.error_type, exc.failure.message or ""
    return type(exc).__name__, str(exc)


def match_error(errors: list[ErrorDef], error_type: str, message: str) -> ErrorDef | None:
    """Which ``errors[]`` entry a failure is, by the documented convention (first rule that hits).

    1. the exception's type name is the error's ``name`` or ``code``;
    2. the message is exactly the ``name`` or ``code``;
    3. the failure carries an HTTP status (a communication fault) equal to the ``code``;
    4. the message names the ``name`` or ``code`` as a whole word or phrase.
    """
    for error in errors:
        if error_type in (error.name, error.code):
            return error
    text = message.strip()
    for error in errors:
        if text in (error.name, error.code):
            return error
    try:
        fault = json.loads(message)
    except ValueError:
        fault = None
    if isinstance(fault, dict) and fault.get("status") is not None:
        for error in errors:
            if error.code is not None and error.code == str(fault["status"]):
                return error
    for error in errors:
        for term in (error.name, error.code):
            if term and re.search(rf"(?<!\w){re.escape(term)}(?!\w)", message):
                return error
    return None


def _iso(duration: timedelta) -> str:
    return f"PT{duration.total_seconds():g}S"


# -- the shared base -------------------------------------------------------------------------


class ActionRunner:
    """What the interpreter needs to run actions: the context, the definition, waits and deadlines.

    One per run of a definition inside one instance, rebuilt on every replay.
    """

    def __init__(
        self,
        ctx: turnout.WorkflowContext,
        workflow: Workflow08,
        workflows: turnout.Workflows,
        settings: Settings,
    ) -> None:
        self.ctx = ctx
        self.wf = workflow
        self.workflows = workflows
        self.settings = settings
        secrets = {name: settings.secrets.get(name) for name in workflow.secrets}
        self.x = Expressions(workflow, secrets=secrets, instance_id=ctx.instance_id)
        self.inbox = EventInbox(ctx, workflow, lambda expr, data: self.x.value(expr, data, where="/events"))
        self.compensations: list[str] = []
        self.where = {state.name: f"/states/{i}" for i, state in enumerate(workflow.states)}
        self.state: State = workflow.state(workflow.start_state)
        self.data: Any = None
        self.busy_states = 0  # states run since the last wait (see MAX_STATES_WITHOUT_WAITING)

    # -- waiting -------------------------------------------------------------------------------

    def _deadline(self, after: timedelta, error: type[V08Timeout], message: str) -> _Deadline:
        return _Deadline(self.ctx.create_timer(after), error, message)

    def _wait(self, task: turnout.Task[Any], scope: tuple[_Deadline, ...]) -> Step:
        """Wait for ``task``, or raise the timeout of the first deadline in ``scope`` that passes."""
        self.busy_states = 0
        if not scope:
            return (yield task)
        winner = yield turnout.when_any([task, *(d.timer for d in scope)])
        if winner is task:
            return task.get_result()
        deadline = next(d for d in scope if d.timer is winner)
        raise deadline.error(deadline.message, deadline)

    def _sleep(self, duration: timedelta, scope: tuple[_Deadline, ...]) -> Step:
        yield from self._wait(self.ctx.create_timer(duration), scope)

    def _timeout(self, field: str) -> timedelta | None:
        return getattr(self.state.timeouts, field) or getattr(self.wf.timeouts, field)

    def _together(self, gens: list[Step], need: int | None = None) -> Step:
        """Drive several branch generators at once; done when ``need`` (default all) succeed.

        Returns one outcome per branch (None for a branch cut short once enough
        succeeded). Raises the first failure once success is out of reach.
        """
        need = len(gens) if need is None else need
        outcomes: list[_Outcome | None] = [None] * len(gens)
        current: dict[int, turnout.Task[Any]] = {}

        def step(index: int, value: Any = None, error: BaseException | None = None) -> None:
            try:
                task = gens[index].throw(error) if error is not None else gens[index].send(value)
            except StopIteration as stop:
                outcomes[index] = _Outcome(value=stop.value)
                return
            except Exception as exc:
                outcomes[index] = _Outcome(error=exc)
                return
            current[index] = task

        def settled() -> bool:
            ok = sum(1 for o in outcomes if o is not None and o.error is None)
            failed = sum(1 for o in outcomes if o is not None and o.error is not None)
            return ok >= need or failed > len(gens) - need

        for index in range(len(gens)):
            step(index)
        while current and not settled():
            ready = sorted(i for i, task in current.items() if task.is_complete)
            if not ready:
                self.busy_states = 0
                yield turnout.when_any(list(current.values()))
                continue
            for index in ready:
                task = current.pop(index)
                if task.is_failed:
                    step(index, error=task.exception)
                else:
                    step(index, value=task.get_result())
                if settled():
                    break
        for index in list(current):
            gens[index].close()
        succeeded = sum(1 for o in outcomes if o is not None and o.error is None)
        if succeeded < need:
            failure = next(o.error for o in outcomes if o is not None and o.error is not None)
            assert failure is not None
            raise failure
        return outcomes

    # -- data ----------------------------------------------------------------------------------

    def _merge_event(self, flt: EventDataFilter, data: Any, event_data: Any, where: str) -> Any:
        if not flt.use_data:
            return data
        value = event_data
        if flt.data is not None:
            value = self.x.value(flt.data, event_data, where=f"{where}/eventDataFilter/data")
        return merge_into(
            self.x,
            data,
            value,
            to_state_data=flt.to_state_data,
            selected_by=flt.data,
            where=f"{where}/eventDataFilter",
        )

    def _merge_result(self, action: Action, data: Any, value: Any, where: str) -> Any:
        if value is _SKIP:
            return data
        flt = action.action_data_filter
        return merge_into(
            self.x,
            data,
            value,
            to_state_data=flt.to_state_data,
            selected_by=flt.results,
            where=f"{where}/actionDataFilter",
        )

    def _value_or_render(self, value: Any, data: Any, where: str) -> Any:
        """An event ``data``: a string is an expression over the state data, anything else a template."""
        if isinstance(value, str) and (is_expression(value) or value.startswith(".")):
            return self.x.value(value, data, where=where)
        return self.x.render(value, data, where=where)

    # -- actions -------------------------------------------------------------------------------

    def _actions(
        self, actions: list[Action], mode: str, data: Any, scope: tuple[_Deadline, ...], base: str
    ) -> Step:
        if mode == "sequential":
            for index, action in enumerate(actions):
                data = yield from self._action(action, data, scope, f"{base}/actions/{index}")
            return data
        wheres = [f"{base}/actions/{index}" for index in range(len(actions))]
        outcomes = yield from self._together(
            [self._action_value(a, data, scope, w) for a, w in zip(actions, wheres, strict=True)]
        )
        for action, where, outcome in zip(actions, wheres, outcomes, strict=True):
            assert outcome is not None
            data = self._merge_result(action, data, outcome.value, where)
        return data

    def _action(self, action: Action, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        value = yield from self._action_value(action, data, scope, where)
        return self._merge_result(action, data, value, where)

    def _action_value(self, action: Action, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        """Run one action (condition, sleeps, retries, timeout); its filtered result, or _SKIP."""
        if action.condition is not None and not self.x.condition(
            action.condition, data, where=f"{where}/condition"
        ):
            return _SKIP
        flt = action.action_data_filter
        source = data
        if flt.from_state_data is not None:
            source = self.x.value(flt.from_state_data, data, where=f"{where}/actionDataFilter/fromStateData")
        if action.sleep is not None and action.sleep.before is not None:
            yield from self._sleep(action.sleep.before, scope)
        limit = self._timeout("action_exec_timeout")
        action_scope = scope
        if limit is not None:
            label = action.name or where
            message = f"action {label!r} did not finish within actionExecTimeout {_iso(limit)}"
            action_scope = (*scope, self._deadline(limit, ActionExecTimeout, message))
        result = yield from self._retrying(action, source, action_scope, where)
        if action.sleep is not None and action.sleep.after is not None:
            yield from self._sleep(action.sleep.after, scope)
        if not flt.use_results:
            return _SKIP
        if flt.results is not None:
            result = self.x.value(flt.results, result, where=f"{where}/actionDataFilter/results")
        return result

    def _retrying(self, action: Action, source: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        strategy = self.wf.retry(action.retry_ref) if action.retry_ref else None
        if strategy is None and (self.wf.auto_retries or action.retryable_errors):
            strategy = DEFAULT_RETRY
        attempt = 1
        while True:
            try:
                return (yield from self._invoke(action, source, scope, where))
            except (V08Timeout, ExpressionError, MergeError, WorkflowDefinitionError):
                raise
            except Exception as exc:
                if strategy is None or attempt >= strategy.max_attempts or not self._retryable(action, exc):
                    raise
                delay = self._retry_delay(strategy, attempt)
                self._log(
                    "%s: attempt %d failed (%s); retrying in %ss",
                    where,
                    attempt,
                    describe(exc)[0],
                    delay.total_seconds(),
                )
                attempt += 1
                yield from self._sleep(delay, scope)

    def _retryable(self, action: Action, exc: Exception) -> bool:
        error = match_error(self.wf.errors, *describe(exc))
        name = error.name if error is not None else None
        if name is not None and name in action.non_retryable_errors:
            return False
        if self.wf.auto_retries:
            return True
        return name is not None and name in action.retryable_errors

    def _retry_delay(self, strategy: RetryDef, failed_attempt: int) -> timedelta:
        """``delay``, then each next one ``* multiplier + increment``, capped, then jittered."""
        delay = strategy.delay or timedelta(0)
        for _ in range(failed_attempt - 1):
            delay = delay * (strategy.multiplier or 1.0) + (strategy.increment or timedelta(0))
        if strategy.max_delay is not None:
            delay = min(delay, strategy.max_delay)
        if strategy.jitter:
            # A deterministic draw in [-1, 1): the same on every replay.
            draw = int(self.ctx.new_uuid().replace("-", ""), 16) / 2**128 * 2 - 1
            spread = strategy.jitter if isinstance(strategy.jitter, timedelta) else delay * strategy.jitter
            delay = max(delay + spread * draw, timedelta(0))
        return delay

    def _invoke(self, action: Action, source: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        if action.function_ref is not None:
            return (
                yield from self._call_function(action.function_ref, source, scope, f"{where}/functionRef")
            )
        if action.sub_flow_ref is not None:
            ref = action.sub_flow_ref
            task = self.ctx.call_child_workflow(ref.workflow_id, input=source)
            if ref.invoke == "async":
                return None
            return (yield from self._wait(task, scope))
        assert action.event_ref is not None
        ref = action.event_ref
        data = None if ref.data is None else self._value_or_render(ref.data, source, f"{where}/eventRef/data")
        attributes = self.x.render(
            ref.context_attributes, source, where=f"{where}/eventRef/contextAttributes"
        )
        yield from self._emit(ref.trigger_event_ref, data, attributes, scope)
        if ref.invoke == "async":
            return None
        wait_scope = scope
        limit = ref.result_event_timeout or self._timeout("event_timeout")
        if limit is not None:
            message = f"{where}: no {ref.result_event_ref!r} event within {_iso(limit)}"
            wait_scope = (*scope, self._deadline(limit, EventTimeout, message))
        name, event = yield from self.inbox.take(
            [ref.result_event_ref], source, lambda task: self._wait(task, wait_scope)
        )
        return payload(self.wf.event(name), event)

    def _has_activity(self, name: str) -> bool:
        if not callable_by_name(name):
            return False  # the interpreter's own: never reached by a function's name
        try:
            self.workflows.get_activity(name)
        except WorkflowNotRegistered:
            return False
        return True

    def _call_function(self, ref: FunctionRef, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        function = self.wf.function(ref.ref_name)
        local = function.type in ("expression", "custom")
        arguments = None
        if ref.arguments is not None:
            arguments = self.x.render(ref.arguments, data, where=f"{where}/arguments", bare=local)
        if function.type == "expression":
            given = data
            if isinstance(arguments, Mapping) and isinstance(data, Mapping):
                given = {**data, **arguments}
            elif arguments is not None:
                given = arguments
            index = self.wf.functions.index(function)
            return self.x.value(function.operation, given, where=f"/functions/{index}/operation")
        call_input = arguments if arguments is not None else data
        if self._has_activity(function.name):
            task = self.ctx.call_activity(function.name, input=call_input)
            if ref.invoke == "async":
                return None
            return (yield from self._wait(task, scope))
        if function.type == "custom" and function.operation.strip().lower() == "sysout":
            message = call_input.get("message", call_input) if isinstance(call_input, Mapping) else call_input
            self._log("sysout: %s", message if isinstance(message, str) else json.dumps(message))
            return None
        if function.type == "rest" and "#" in function.operation:
            return (
                yield from call_rest(self.ctx, function, call_input, lambda task: self._wait(task, scope))
            )
        custom = _CUSTOM_REST.match(function.operation.strip()) if function.type == "custom" else None
        if custom is not None:
            method, url = custom.group(1).lower(), custom.group(2)
            left = dict(call_input) if isinstance(call_input, Mapping) else call_input
            if isinstance(left, dict):
                for name in re.findall(r"\{([^{}]+)\}", url):  # Kogito fills {name} from the arguments
                    if name in left:
                        url = url.replace("{" + name + "}", quote(str(left.pop(name)), safe=""))
            request = build_request(method, url, {"parameters": []}, "", left)
            return (yield from self._wait(self.ctx.call_activity(HTTP_ACTIVITY, input=request), scope))
        raise WorkflowDefinitionError(
            f"{where}: function {function.name!r} (type {function.type}) has no implementation: register an "
            f"activity named {function.name!r} (@workflows.activity(name={function.name!r}))"
            + (", or give it an OpenAPI operation 'document#operationId'" if function.type == "rest" else "")
        )

    def _emit(
        self, name: str, data: Any, attributes: Mapping[str, Any], scope: tuple[_Deadline, ...]
    ) -> Step:
        """Produce a CloudEvent through the emit activity (never from the workflow code itself)."""
        definition = self.wf.event(name)
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.ctx.new_uuid(),
            "source": definition.source or f"/turnout/workflows/{self.wf.id}",
            "type": definition.type or name,
            "time": self.ctx.current_utc_datetime.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
        }
        for rule in definition.correlation:
            key = rule.context_attribute_name
            if rule.context_attribute_value is not None:
                event[key] = rule.context_attribute_value
            elif key in self.inbox.correlation:
                event[key] = self.inbox.correlation[key]
        event.update(attributes)
        if data is not None:
            event["data"] = data
        self.inbox.produced_ids.add(event["id"])
        yield from self._wait(self.ctx.call_activity(EMIT_ACTIVITY, input=event), scope)

    def _log(self, message: str, *args: Any) -> None:
        if not self.ctx.is_replaying:
            log.info("%s: " + message, self.ctx.instance_id, *args)
