"""Serverless Workflow 0.8: the interpreter, a Turnout workflow function that runs a definition.

``register_v08`` registers one workflow per definition, named by its ``id``.
The workflow function walks the state machine; every effect is a Turnout
step (an activity for a function call or an emitted event, a child workflow
for a ``subFlowRef``, a durable timer for a sleep, a retry delay or a
timeout, an external event wait for a consumed event), so the interpreter is
deterministic and runs on any engine that runs Turnout workflow code.

Concurrency (parallel actions, ``parallel`` branches, ``foreach``
iterations) is cooperative: each branch is a generator that yields Turnout
tasks, and :meth:`ActionRunner._together` drives them with ``when_any``.
Deadlines (``workflowExecTimeout``, ``stateExecTimeout``, ...) are timers
raced against every wait inside their scope.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import turnout

from ._definition import Definition, Settings
from ._effects import EMIT_ACTIVITY, install
from ._v08_actions import (
    _SKIP,
    MAX_STATES_WITHOUT_WAITING,
    ActionRunner,
    BranchExecTimeout,
    EventTimeout,
    StateExecTimeout,
    Step,
    WorkflowDefinitionError,
    WorkflowExecTimeout,
    _Deadline,
    _iso,
    describe,
    match_error,
)
from ._v08_data import get_path, merge, set_path
from ._v08_events import continued_input, payload, split_continued
from ._v08_model import (
    CallbackState,
    End,
    EventState,
    ForEachState,
    InjectState,
    OperationState,
    ParallelState,
    SleepState,
    State,
    SwitchState,
    Transition,
)
from ._v08_parse import parse_workflow

log = logging.getLogger("turnout.declarative")

Flow = Transition | End | None
#: The event a kept-active instance with no workflowExecTimeout waits for; it is never raised.
KEEP_ACTIVE_EVENT = "turnout.declarative.keepActive"


class _Interpreter(ActionRunner):
    """One run of a definition inside one workflow instance: the state machine (rebuilt on every replay)."""

    ended: End | None = None  # the end the run reached (not set by a continueAs)

    # -- the state machine ---------------------------------------------------------------------

    def main(self, data: Any) -> Step:
        """Run from the start state to an end; the workflow's output is the last state's output."""
        data, carried, correlation = split_continued(data)
        self.inbox.resume(carried, correlation)
        data = {} if data is None else data
        self.data = data
        exec_timeout = self.wf.timeouts.workflow_exec_timeout
        scope: tuple[_Deadline, ...] = ()
        deadline = None
        if exec_timeout is not None:
            deadline = self._deadline(
                exec_timeout.duration,
                WorkflowExecTimeout,
                f"workflow {self.wf.id!r} did not finish within workflowExecTimeout "
                f"{_iso(exec_timeout.duration)}",
            )
            if exec_timeout.interrupt:
                scope = (deadline,)
        try:
            output = yield from self._run_from(self.wf.start_state, data, scope, deadline)
            if self.wf.keep_active and self.ended is not None and not self.ended.terminate:
                output = yield from self._stay_active(output, deadline)
            return output
        except WorkflowExecTimeout as exc:
            assert exec_timeout is not None
            if exec_timeout.run_before is None:
                raise
            self._log("workflowExecTimeout passed: running state %r before ending", exec_timeout.run_before)
            yield from self._run_from(exec_timeout.run_before, self.data, (), None)
            raise WorkflowExecTimeout(f"{exc} (ran state {exec_timeout.run_before!r} first)") from None

    def _stay_active(self, output: Any, deadline: _Deadline | None) -> Step:
        """``keepActive``: the path has ended, yet the instance lives on until its workflowExecTimeout.

        0.8 runs one path at a time here, so nothing happens meanwhile: the
        timeout, which is this instance's expected end, runs ``runBefore`` and
        completes it with the path's output; without one, only a terminate
        request from outside ends it.
        """
        self.ctx.set_custom_status({"state": self.state.name, "keepActive": True})
        if deadline is None:
            while True:  # an event nobody raises: the instance waits for terminate()
                yield self.ctx.wait_for_external_event(KEEP_ACTIVE_EVENT)
        yield deadline.timer
        exec_timeout = self.wf.timeouts.workflow_exec_timeout
        if exec_timeout is not None and exec_timeout.run_before is not None:
            output = yield from self._run_from(exec_timeout.run_before, output, (), None)
        return output

    def _run_from(
        self, name: str, data: Any, scope: tuple[_Deadline, ...], deadline: _Deadline | None
    ) -> Step:
        state = self.wf.state(name)
        while True:
            self.data = data
            data, flow = yield from self._state(state, data, scope)
            self.data = data
            if not isinstance(flow, Transition):
                data = yield from self._leave(flow, data, scope)
                if flow is not None and flow.continue_as is not None:
                    follow = flow.continue_as.data
                    new_input = self._value_or_render(
                        follow, data, f"{self.where[state.name]}/end/continueAs/data"
                    )
                    events, correlation = self.inbox.unconsumed(), dict(self.inbox.correlation)
                    next_input = data if follow is None else new_input
                    self.ctx.continue_as_new(continued_input(next_input, events, correlation))
                    return None
                self.ended = flow
                return data
            data = yield from self._leave(flow, data, scope)
            if deadline is not None and deadline.timer.is_complete:
                raise deadline.error(deadline.message, deadline)  # non-interrupting: checked between states
            state = self.wf.state(flow.next_state)

    def _leave(self, flow: Flow, data: Any, scope: tuple[_Deadline, ...]) -> Step:
        """Compensate and produce events as a transition or an end says."""
        if flow is None:
            return data
        base = self.where[self.state.name]
        if flow.compensate:
            data = yield from self._compensate(data, scope)
        for index, produced in enumerate(flow.produce_events):
            where = f"{base}/produceEvents/{index}"
            event_data = self._value_or_render(produced.data, data, f"{where}/data")
            attributes = self.x.render(produced.context_attributes, data, where=f"{where}/contextAttributes")
            yield from self._emit(produced.event_ref, event_data, attributes, scope)
        return data

    def _compensate(self, data: Any, scope: tuple[_Deadline, ...]) -> Step:
        """Run the compensating states of the completed states, most recent first."""
        while self.compensations:
            state: State | None = self.wf.state(self.compensations.pop())
            self._log("compensating with state %r", state.name if state else None)
            while state is not None:
                data, flow = yield from self._state(state, data, scope, compensating=True)
                if isinstance(flow, Transition):
                    data = yield from self._leave(
                        Transition(next_state=flow.next_state, produce_events=flow.produce_events),
                        data,
                        scope,
                    )
                    state = self.wf.state(flow.next_state)
                else:
                    state = None
        return data

    def _state(
        self, state: State, data: Any, scope: tuple[_Deadline, ...], *, compensating: bool = False
    ) -> Step:
        """Run one state: input filter, the state's work, output filter; ``onErrors`` on failure."""
        self.state = state
        self.busy_states += 1
        if self.busy_states > MAX_STATES_WITHOUT_WAITING:
            raise WorkflowDefinitionError(
                f"{self.where[state.name]}: {MAX_STATES_WITHOUT_WAITING} states in a row ran without waiting "
                f"for anything (now at {state.name!r}): the definition loops without end; "
                "add a sleep, an event or an end to the loop"
            )
        where = self.where[state.name]
        self.ctx.set_custom_status({"state": state.name})
        limit = self._timeout("state_exec_timeout")
        if limit is not None:
            message = f"state {state.name!r} did not finish within stateExecTimeout {_iso(limit)}"
            scope = (*scope, self._deadline(limit, StateExecTimeout, message))
        entered = data
        try:
            flt = state.state_data_filter
            if flt is not None and flt.input is not None:
                data = self.x.value(flt.input, data, where=f"{where}/stateDataFilter/input")
            entered = data
            data, flow = yield from self._HANDLERS[type(state)](self, state, data, scope, where)
            if flt is not None and flt.output is not None:
                data = self.x.value(flt.output, data, where=f"{where}/stateDataFilter/output")
        except WorkflowExecTimeout:
            raise
        except Exception as exc:
            handled = self._on_error(state, exc)
            if handled is None:
                raise
            return entered, handled
        if state.compensated_by is not None and not compensating:
            self.compensations.append(state.compensated_by)
        return data, flow

    def _on_error(self, state: State, exc: Exception) -> Flow | None:
        if not state.on_errors:
            return None
        error_type, message = describe(exc)
        error = match_error(self.wf.errors, error_type, message)
        if error is None:
            return None
        for on_error in state.on_errors:
            if error.name in on_error.error_refs:
                self._log(
                    "state %r failed with error %r (%s): handled by onErrors",
                    state.name,
                    error.name,
                    error_type,
                )
                return on_error.transition or on_error.end
        return None

    # -- states --------------------------------------------------------------------------------

    def _inject(self, state: InjectState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        yield from ()
        return merge(data, state.data, where=f"{where}/data"), state.transition or state.end

    def _operation(self, state: OperationState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        data = yield from self._actions(state.actions, state.action_mode, data, scope, where)
        return data, state.transition or state.end

    def _sleep_state(self, state: SleepState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        yield from self._sleep(state.duration, scope)
        return data, state.transition or state.end

    def _switch(self, state: SwitchState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        default = state.default_condition
        if state.data_conditions:
            for index, condition in enumerate(state.data_conditions):
                assert condition.condition is not None
                if self.x.condition(
                    condition.condition, data, where=f"{where}/dataConditions/{index}/condition"
                ):
                    return data, condition.transition or condition.end
            if default is None:
                raise WorkflowDefinitionError(
                    f"{where}: no dataConditions of switch state {state.name!r} matched, "
                    "and it has no defaultCondition"
                )
            return data, default.transition or default.end
        names = [c.event_ref for c in state.event_conditions if c.event_ref is not None]
        limit = state.timeouts.event_timeout or state.event_timeout or self.wf.timeouts.event_timeout
        mine = None
        if limit is not None:
            message = f"switch state {state.name!r}: no event within eventTimeout {_iso(limit)}"
            mine = self._deadline(limit, EventTimeout, message)
            scope = (*scope, mine)
        try:
            name, event = yield from self.inbox.take(names, data, lambda task: self._wait(task, scope))
        except EventTimeout as exc:
            if exc.deadline is not mine or default is None:
                raise
            return data, default.transition or default.end
        index, condition = next((i, c) for i, c in enumerate(state.event_conditions) if c.event_ref == name)
        data = self._merge_event(
            condition.event_data_filter,
            data,
            payload(self.wf.event(name), event),
            f"{where}/eventConditions/{index}",
        )
        return data, condition.transition or condition.end

    def _event(self, state: EventState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        names = list(dict.fromkeys(name for on in state.on_events for name in on.event_refs))
        wait_scope = scope
        limit = self._timeout("event_timeout")
        if limit is not None:
            message = f"event state {state.name!r}: no event within eventTimeout {_iso(limit)}"
            wait_scope = (*scope, self._deadline(limit, EventTimeout, message))
        received: dict[str, dict[str, Any]] = {}
        while True:
            wanted = [n for n in names if n not in received]
            name, event = yield from self.inbox.take(wanted, data, lambda task: self._wait(task, wait_scope))
            received[name] = event
            if state.exclusive or len(received) == len(names):
                break
        for index, on_events in enumerate(state.on_events):
            refs = [n for n in on_events.event_refs if n in received]
            if not refs:
                continue
            base = f"{where}/onEvents/{index}"
            for ref in refs:
                data = self._merge_event(
                    on_events.event_data_filter, data, payload(self.wf.event(ref), received[ref]), base
                )
            data = yield from self._actions(on_events.actions, on_events.action_mode, data, scope, base)
            if state.exclusive:
                break
        return data, state.transition or state.end

    def _parallel(self, state: ParallelState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        branches = []
        for index, branch in enumerate(state.branches):
            branch_scope = scope
            limit = branch.timeouts.branch_exec_timeout or self._timeout("branch_exec_timeout")
            if limit is not None:
                message = (
                    f"branch {branch.name!r} of state {state.name!r} did not finish within {_iso(limit)}"
                )
                branch_scope = (*scope, self._deadline(limit, BranchExecTimeout, message))
            branches.append(
                self._actions(branch.actions, "sequential", data, branch_scope, f"{where}/branches/{index}")
            )
        need = state.num_completed if state.completion_type == "atLeast" else None
        outcomes = yield from self._together(branches, need)
        for index, outcome in enumerate(outcomes):
            if outcome is not None and outcome.error is None:
                data = merge(data, outcome.value, where=f"{where}/branches/{index}")
        return data, state.transition or state.end

    def _foreach(self, state: ForEachState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        items = self.x.value(state.input_collection, data, where=f"{where}/inputCollection")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise WorkflowDefinitionError(
                f"{where}/inputCollection: expected an array, got {json.dumps(items)[:80]}"
            )

        def iteration(item: Any) -> Step:
            local = (
                {**data, state.iteration_param: item}
                if isinstance(data, Mapping)
                else {state.iteration_param: item}
            )
            output = None
            for index, action in enumerate(state.actions):
                action_where = f"{where}/actions/{index}"
                value = yield from self._action_value(action, local, scope, action_where)
                if value is _SKIP or value is None:
                    continue
                if action.action_data_filter.to_state_data is not None:
                    local = self._merge_result(action, local, value, action_where)
                else:
                    output = value
            return output

        size = 1 if state.mode == "sequential" else (state.batch_size or max(len(items), 1))
        outputs: list[Any] = []
        for start in range(0, len(items), size):
            outcomes = yield from self._together([iteration(item) for item in items[start : start + size]])
            outputs += [outcome.value if outcome is not None else None for outcome in outcomes]
        if state.output_collection is not None:
            where_out = f"{where}/outputCollection"
            path = self.x.path(state.output_collection, data, where=where_out)
            existing = get_path(data, path)
            collected = (existing if isinstance(existing, list) else []) + outputs
            data = set_path(data, path, collected, where=where_out)
        return data, state.transition or state.end

    def _callback(self, state: CallbackState, data: Any, scope: tuple[_Deadline, ...], where: str) -> Step:
        data = yield from self._action(state.action, data, scope, f"{where}/action")
        wait_scope = scope
        limit = self._timeout("event_timeout")
        if limit is not None:
            message = f"callback state {state.name!r}: no {state.event_ref!r} event within {_iso(limit)}"
            wait_scope = (*scope, self._deadline(limit, EventTimeout, message))
        name, event = yield from self.inbox.take(
            [state.event_ref], data, lambda task: self._wait(task, wait_scope)
        )
        data = self._merge_event(state.event_data_filter, data, payload(self.wf.event(name), event), where)
        return data, state.transition or state.end

    _HANDLERS: ClassVar[dict[type[State], Callable[..., Step]]] = {
        InjectState: _inject,
        OperationState: _operation,
        SleepState: _sleep_state,
        SwitchState: _switch,
        EventState: _event,
        ParallelState: _parallel,
        ForEachState: _foreach,
        CallbackState: _callback,
    }


# -- entry points ----------------------------------------------------------------------------


def register_v08(
    workflows: turnout.Workflows, definition: Definition, settings: Settings | None = None
) -> str:
    """Register the workflow that interprets ``definition``, named by ``definition.name``; returns the name.

    That is the definition's ``id``, unless the caller renamed it (the built-in
    engine registers each version as ``id@version``).

    The effect activities (emit, HTTP) are installed on ``workflows`` unless
    they already are.
    """
    workflow = parse_workflow(definition.document, definition.source)
    settings = settings or Settings()
    if EMIT_ACTIVITY not in workflows.activity_names:
        install(workflows, settings)

    def interpret(ctx: turnout.WorkflowContext, input: Any) -> Step:
        return (yield from _Interpreter(ctx, workflow, workflows, settings).main(input))

    interpret.__qualname__ = interpret.__name__ = "serverless_workflow_08_" + re.sub(r"\W", "_", workflow.id)
    workflows.workflow(interpret, name=definition.name)
    return definition.name
