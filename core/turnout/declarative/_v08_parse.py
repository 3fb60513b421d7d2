"""Serverless Workflow 0.8: parsing a document into the models, and the checks that span it.

Shape errors come from pydantic, with their locations turned into JSON
pointers (each state is validated by the model of its ``type``, so no union
tags get in the way). The document-wide checks then look at references (a
transition naming no state, a ``functionRef`` naming no function, an
``onErrors`` naming no error...) and compile every jq expression. All
problems are reported at once, with the file, the pointer and what is expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jq
from pydantic import ValidationError

from ._definition import DefinitionError
from ._expressions import unwrap
from ._v08_model import (
    STATE_TYPES,
    Action,
    CallbackState,
    End,
    EventDataFilter,
    EventState,
    ForEachState,
    InjectState,
    OperationState,
    ParallelState,
    ProduceEvent,
    State,
    SwitchState,
    Transition,
    Workflow08,
)

# -- parsing ---------------------------------------------------------------------------------


def _pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def _pydantic_problems(exc: ValidationError, prefix: tuple[Any, ...]) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
        if loc[:1] == ["startSchedule"]:  # the model keeps start.schedule beside start
            loc = ["start", "schedule", *loc[1:]]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "literal_error":
            message = f"{message} (got {error['input']!r})"
        problems.append((_pointer((*prefix, *loc)), message))
    return problems


def parse_workflow(document: Any, source: str | None = None) -> Workflow08:
    """Validate a 0.8 document into a :class:`Workflow08`; DefinitionError lists every problem."""
    if not isinstance(document, dict):
        raise DefinitionError(
            source=source, problems=[("", f"expected a JSON object, got {type(document).__name__}")]
        )
    problems: list[tuple[str, str]] = []
    raw_states = document.get("states")
    header = {k: v for k, v in document.items() if k != "states"}
    for key in ("functions", "events", "errors", "retries"):
        if isinstance(header.get(key), str):
            problems.append(
                (f"/{key}", "expected a list of definitions (references to external files are not supported)")
            )
            header.pop(key)
    try:
        workflow = Workflow08.model_validate(header)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, ())
        workflow = None
    states: list[State] = []
    indices: list[int] = []  # each parsed state's place in the document, for pointers
    if not isinstance(raw_states, list) or not raw_states:
        problems.append(("/states", "expected a non-empty list of states"))
    else:
        for index, raw in enumerate(raw_states):
            where = f"/states/{index}"
            if not isinstance(raw, dict):
                problems.append((where, "expected a state object"))
                continue
            model = STATE_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
            if model is None:
                problems.append(
                    (f"{where}/type", f"expected one of {', '.join(STATE_TYPES)}, got {raw.get('type')!r}")
                )
                continue
            try:
                states.append(model.model_validate(raw))
                indices.append(index)
            except ValidationError as exc:
                problems += _pydantic_problems(exc, ("states", index))
    if workflow is not None and states:
        # Cross-references are checked even when some states are malformed, so one
        # run shows every problem; names of malformed states still count as defined.
        raw_names = [
            raw["name"] for raw in raw_states if isinstance(raw, dict) and isinstance(raw.get("name"), str)
        ]
        workflow = workflow.model_copy(update={"states": states})
        problems += _check_references(workflow, raw_names, indices)
    if problems or workflow is None:
        raise DefinitionError(source=source, problems=problems)
    return workflow


# -- cross-reference and expression checks ----------------------------------------------------

JQ_VARIABLES = ("CONST", "SECRETS", "WORKFLOW")
"""The ``$names`` 0.8 expressions may use."""

_FN_CALL = re.compile(r"\bfn:([A-Za-z_][\w\-]*)")


def expand_functions(text: str, workflow: Workflow08) -> str:
    """``fn:name`` (0.8's call of an ``expression`` function) replaced by that function's jq."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        for function in workflow.functions:
            if function.name == name and function.type == "expression":
                return f"({function.operation})"
        raise ValueError(f"'fn:{name}' names no function of type 'expression'")

    return _FN_CALL.sub(replace, text)


def _jq_problem(expression: Any, workflow: Workflow08) -> str | None:
    if not isinstance(expression, str):
        return None
    text = unwrap(expression)
    if text is None:
        text = expression
    try:
        jq.compile(expand_functions(text, workflow), args=dict.fromkeys(JQ_VARIABLES))
    except ValueError as exc:
        reason = str(exc).splitlines()[0]
        return f"expected a jq expression; {expression!r} does not compile: {reason}"
    return None


def _iter_actions(state: State, base: str) -> Iterator[tuple[str, Action]]:
    if isinstance(state, (OperationState, ForEachState)):
        for i, action in enumerate(state.actions):
            yield f"{base}/actions/{i}", action
    elif isinstance(state, EventState):
        for i, on_events in enumerate(state.on_events):
            for j, action in enumerate(on_events.actions):
                yield f"{base}/onEvents/{i}/actions/{j}", action
    elif isinstance(state, ParallelState):
        for i, branch in enumerate(state.branches):
            for j, action in enumerate(branch.actions):
                yield f"{base}/branches/{i}/actions/{j}", action
    elif isinstance(state, CallbackState):
        yield f"{base}/action", state.action


def _expected(names: list[str]) -> str:
    return f"one of {', '.join(repr(n) for n in names)}" if names else "nothing (none is defined)"


def _check_references(
    workflow: Workflow08, all_names: list[str], indices: list[int]
) -> Iterator[tuple[str, str]]:
    state_names = list(dict.fromkeys([*(s.name for s in workflow.states), *all_names]))
    parsed = {s.name: s for s in workflow.states}
    functions = [f.name for f in workflow.functions]
    consumed = [e.name for e in workflow.events if e.kind == "consumed"]
    produced = [e.name for e in workflow.events if e.kind == "produced"]
    errors = [e.name for e in workflow.errors]
    retries = [r.name for r in workflow.retries]

    def ref(value: str | None, names: list[str], what: str, where: str) -> Iterator[tuple[str, str]]:
        if value is not None and value not in names:
            yield where, f"{what} {value!r} is not defined; expected {_expected(names)}"

    def expr(value: Any, where: str) -> Iterator[tuple[str, str]]:
        problem = _jq_problem(value, workflow)
        if problem:
            yield where, problem

    def maybe_expr(value: Any, where: str) -> Iterator[tuple[str, str]]:
        # Arguments and event data: only ``${ }`` strings are expressions (at any depth).
        if isinstance(value, str) and unwrap(value) is not None:
            yield from expr(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from maybe_expr(item, f"{where}/{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from maybe_expr(item, f"{where}/{i}")

    def produce(events: list[ProduceEvent], where: str) -> Iterator[tuple[str, str]]:
        for i, event in enumerate(events):
            yield from ref(event.event_ref, produced, "produced event", f"{where}/produceEvents/{i}/eventRef")
            if isinstance(event.data, str):
                yield from expr(event.data, f"{where}/produceEvents/{i}/data")
            else:
                yield from maybe_expr(event.data, f"{where}/produceEvents/{i}/data")

    def flow(transition: Transition | None, end: End | None, where: str) -> Iterator[tuple[str, str]]:
        if transition is not None:
            yield from ref(transition.next_state, state_names, "state", f"{where}/transition")
            yield from produce(transition.produce_events, f"{where}/transition")
            target = parsed.get(transition.next_state)
            if target is not None and target.used_for_compensation != compensating[0]:
                kind = (
                    "a state used for compensation"
                    if compensating[0]
                    else "a state not used for compensation"
                )
                yield (
                    f"{where}/transition",
                    f"expected {kind}: compensation states transition only among themselves, "
                    f"and other states never reach them by a transition (got {transition.next_state!r})",
                )
        if end is not None:
            yield from produce(end.produce_events, f"{where}/end")
            if end.continue_as is not None and end.continue_as.workflow_id != workflow.id:
                yield (
                    f"{where}/end/continueAs",
                    f"expected this workflow's own id {workflow.id!r}: Turnout continues an instance "
                    f"as new with the same workflow only (got {end.continue_as.workflow_id!r})",
                )

    if len(set(all_names)) != len(all_names):
        dupes = sorted({n for n in all_names if all_names.count(n) > 1})
        yield "/states", f"state names must be unique; repeated: {', '.join(dupes)}"
    if workflow.expression_lang not in ("jq", "jaq"):
        yield (
            "/expressionLang",
            f"expected 'jq' (the only expression language supported), got {workflow.expression_lang!r}",
        )
    if workflow.start is not None:
        yield from ref(workflow.start, state_names, "start state", "/start")
    if workflow.start_schedule is not None and isinstance(parsed.get(workflow.start_state), EventState):
        yield (
            "/start/schedule",
            "a scheduled start of an event start state is not supported: its events start instances "
            "already (drop the schedule, or start with another state)",
        )
    exec_timeout = workflow.timeouts.workflow_exec_timeout
    if exec_timeout is not None:
        yield from ref(
            exec_timeout.run_before, state_names, "state", "/timeouts/workflowExecTimeout/runBefore"
        )
    for i, function in enumerate(workflow.functions):
        if function.type == "expression":
            yield from expr(function.operation, f"/functions/{i}/operation")
    for i, retry in enumerate(workflow.retries):
        if isinstance(retry.jitter, float) and not 0 <= retry.jitter <= 1:
            yield f"/retries/{i}/jitter", "expected a fraction between 0 and 1 or an ISO 8601 duration"
    for i, event in enumerate(workflow.events):
        if event.kind == "consumed" and not event.type:
            yield f"/events/{i}/type", "is required: consumed events are matched on their CloudEvent type"

    compensating = [False]  # whether the state being checked is used for compensation
    for index, state in zip(indices, workflow.states, strict=True):
        base = f"/states/{index}"
        compensating[0] = state.used_for_compensation
        yield from ref(state.compensated_by, state_names, "state", f"{base}/compensatedBy")
        if (
            state.compensated_by in state_names
            and state.compensated_by in parsed
            and not parsed[state.compensated_by].used_for_compensation
        ):
            yield (
                f"{base}/compensatedBy",
                f"expected a state with usedForCompensation: true, got {state.compensated_by!r}",
            )
        if state.used_for_compensation and state.name == workflow.start_state:
            yield f"{base}/usedForCompensation", "the start state cannot be used for compensation"
        if state.state_data_filter is not None:
            yield from expr(state.state_data_filter.input, f"{base}/stateDataFilter/input")
            yield from expr(state.state_data_filter.output, f"{base}/stateDataFilter/output")
        yield from flow(state.transition, state.end, base)
        if state.transition is not None and state.end is not None:
            yield base, f"state {state.name!r} has both 'transition' and 'end': expected one of them"
        needs_flow = not isinstance(state, SwitchState) and not state.used_for_compensation
        if needs_flow and state.transition is None and state.end is None:
            yield base, f"state {state.name!r} needs a 'transition' or an 'end'"
        for i, on_error in enumerate(state.on_errors):
            for ref_name in on_error.error_refs:
                key = "errorRef" if len(on_error.error_refs) == 1 else "errorRefs"
                yield from ref(ref_name, errors, "error", f"{base}/onErrors/{i}/{key}")
            yield from flow(on_error.transition, on_error.end, f"{base}/onErrors/{i}")
            if on_error.transition is None and on_error.end is None:
                yield f"{base}/onErrors/{i}", "needs a 'transition' or an 'end'"
        for where, action in _iter_actions(state, base):
            if action.function_ref is not None:
                yield from ref(action.function_ref.ref_name, functions, "function", f"{where}/functionRef")
                yield from maybe_expr(action.function_ref.arguments, f"{where}/functionRef/arguments")
                if action.function_ref.ref_name in functions:
                    function = workflow.function(action.function_ref.ref_name)
                    if function.type in ("expression", "custom") and isinstance(
                        action.function_ref.arguments, dict
                    ):
                        # Kogito writes bare jq in the arguments of local functions.
                        for key, value in action.function_ref.arguments.items():
                            if isinstance(value, str) and unwrap(value) is None and value.startswith("."):
                                yield from expr(value, f"{where}/functionRef/arguments/{key}")
            if action.event_ref is not None:
                trigger, result = action.event_ref.trigger_event_ref, action.event_ref.result_event_ref
                yield from ref(trigger, produced, "produced event", f"{where}/eventRef/triggerEventRef")
                yield from ref(result, consumed, "consumed event", f"{where}/eventRef/resultEventRef")
                if isinstance(action.event_ref.data, str):
                    yield from expr(action.event_ref.data, f"{where}/eventRef/data")
            yield from ref(action.retry_ref, retries, "retry strategy", f"{where}/retryRef")
            for key, names in (
                ("retryableErrors", action.retryable_errors),
                ("nonRetryableErrors", action.non_retryable_errors),
            ):
                for i, name in enumerate(names):
                    yield from ref(name, errors, "error", f"{where}/{key}/{i}")
            yield from expr(action.condition, f"{where}/condition")
            adf = action.action_data_filter
            yield from expr(adf.from_state_data, f"{where}/actionDataFilter/fromStateData")
            yield from expr(adf.results, f"{where}/actionDataFilter/results")
            yield from expr(adf.to_state_data, f"{where}/actionDataFilter/toStateData")
        if isinstance(state, SwitchState):
            if state.data_conditions and state.event_conditions:
                yield base, "a switch has dataConditions or eventConditions, not both"
            if not state.data_conditions and not state.event_conditions:
                yield base, "a switch needs dataConditions or eventConditions"
            for key, conditions in (
                ("dataConditions", state.data_conditions),
                ("eventConditions", state.event_conditions),
            ):
                for i, condition in enumerate(conditions):
                    where = f"{base}/{key}/{i}"
                    if key == "dataConditions":
                        if condition.condition is None:
                            yield f"{where}/condition", "is required"
                        yield from expr(condition.condition, f"{where}/condition")
                    else:
                        if condition.event_ref is None:
                            yield f"{where}/eventRef", "is required"
                        yield from ref(condition.event_ref, consumed, "consumed event", f"{where}/eventRef")
                        yield from _event_filter(condition.event_data_filter, where, expr)
                    if condition.transition is None and condition.end is None:
                        yield where, "needs a 'transition' or an 'end'"
                    yield from flow(condition.transition, condition.end, where)
            if state.default_condition is not None:
                yield from flow(
                    state.default_condition.transition,
                    state.default_condition.end,
                    f"{base}/defaultCondition",
                )
        elif isinstance(state, EventState):
            if not state.on_events:
                yield f"{base}/onEvents", "expected at least one onEvents entry"
            for i, on_events in enumerate(state.on_events):
                if not on_events.event_refs:
                    yield f"{base}/onEvents/{i}/eventRefs", "expected at least one event name"
                for j, name in enumerate(on_events.event_refs):
                    yield from ref(name, consumed, "consumed event", f"{base}/onEvents/{i}/eventRefs/{j}")
                yield from _event_filter(on_events.event_data_filter, f"{base}/onEvents/{i}", expr)
        elif isinstance(state, CallbackState):
            yield from ref(state.event_ref, consumed, "consumed event", f"{base}/eventRef")
            yield from _event_filter(state.event_data_filter, base, expr)
        elif isinstance(state, ForEachState):
            yield from expr(state.input_collection, f"{base}/inputCollection")
            yield from expr(state.output_collection, f"{base}/outputCollection")
            if not re.fullmatch(r"[A-Za-z_][\w]*", state.iteration_param):
                yield (
                    f"{base}/iterationParam",
                    f"expected a plain name such as 'item', got {state.iteration_param!r}",
                )
        elif isinstance(state, ParallelState):
            if state.completion_type == "atLeast":
                if state.num_completed is None:
                    yield f"{base}/numCompleted", "is required when completionType is 'atLeast'"
                elif not 0 <= state.num_completed <= len(state.branches):
                    yield (
                        f"{base}/numCompleted",
                        f"expected a number from 0 to {len(state.branches)} (the branches)",
                    )
        elif isinstance(state, InjectState):
            pass


def _event_filter(flt: EventDataFilter, where: str, expr: Any) -> Iterator[tuple[str, str]]:
    yield from expr(flt.data, f"{where}/eventDataFilter/data")
    yield from expr(flt.to_state_data, f"{where}/eventDataFilter/toStateData")
