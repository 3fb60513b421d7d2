"""Serverless Workflow 0.8: the definition as typed models, every shorthand normalized.

0.8 is a state machine (named states and transitions) with many shorthands
(``"end": true``, a function reference written as a string, a duration or an
object...). The models normalize every shorthand before validation, so the
interpreter sees one shape and pydantic's error locations stay plain JSON
pointers. Parsing and the checks that span the document are in
``_v08_parse``; :func:`parse_v08` is the entry point the loader calls.

We do not use the PyPI ``serverlessworkflow-sdk``: it fails on ``correlation``
lists and downloads its schema at run time (see the project's reference notes).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ._definition import Definition
from ._durations import parse_duration as _parse_duration
from ._schedule import (
    Schedule,
    ScheduleError,
    check_timezone,
    normalize_cron,
    parse_interval,
    parse_moment,
)

# -- durations -------------------------------------------------------------------------------


def parse_duration(text: Any) -> timedelta:
    """An ISO 8601 duration (``PT15M``, ``P30D``) as a timedelta.

    The spec's own examples write days after the ``T`` (``PT30D``); that is read as days.
    """
    if isinstance(text, str):
        match = re.fullmatch(r"PT(\d+(?:\.\d+)?)D(.*)", text.strip().upper())
        if match:
            text = f"P{match.group(1)}D" + (f"T{match.group(2)}" if match.group(2) else "")
    return _parse_duration(text)


def _duration(value: Any) -> Any:
    if value is None or isinstance(value, timedelta):
        return value
    return parse_duration(value)


# -- shorthand normalizers -------------------------------------------------------------------


def _as_object(value: Any, key: str) -> Any:
    """``"x"`` -> ``{key: "x"}``; other values unchanged."""
    return {key: value} if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


# -- top-level definitions -------------------------------------------------------------------


class FunctionDef(_Model):
    """``functions[]``: what a ``functionRef`` calls."""

    name: str
    operation: str = ""
    type: Literal["rest", "asyncapi", "rpc", "graphql", "odata", "expression", "custom"] = "rest"


class Correlation(_Model):
    """``events[].correlation[]``: a CloudEvent context attribute that ties an event to an instance."""

    context_attribute_name: str
    context_attribute_value: str | None = None


class EventDef(_Model):
    """``events[]``: a CloudEvent the workflow consumes or produces."""

    name: str
    type: str | None = None
    source: str | None = None
    kind: Literal["consumed", "produced"] = "consumed"
    correlation: list[Correlation] = []
    data_only: bool = True


class ErrorDef(_Model):
    """``errors[]``: a named error that actions may raise and ``onErrors`` may handle."""

    name: str
    code: str | None = None
    description: str | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class RetryDef(_Model):
    """``retries[]``: how often and how soon a failed action runs again."""

    name: str
    delay: Duration | None = None
    max_delay: Duration | None = None
    increment: Duration | None = None
    multiplier: float | None = None
    max_attempts: int = Field(default=3, ge=1)
    jitter: float | Duration | None = None

    @field_validator("multiplier", "max_attempts", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        return float(value) if isinstance(value, str) and value.replace(".", "", 1).isdigit() else value

    @field_validator("jitter", mode="before")
    @classmethod
    def _jitter(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return parse_duration(value)
        return value


class WorkflowExecTimeoutDef(_Model):
    """``timeouts.workflowExecTimeout``: the whole run's deadline (``runBefore`` runs on expiry)."""

    duration: Duration
    interrupt: bool = True
    run_before: str | None = None


class Timeouts(_Model):
    """``timeouts`` at the workflow level (defaults) or on a state, branch or action."""

    workflow_exec_timeout: WorkflowExecTimeoutDef | None = None
    state_exec_timeout: Duration | None = None
    action_exec_timeout: Duration | None = None
    branch_exec_timeout: Duration | None = None
    event_timeout: Duration | None = None

    @field_validator("workflow_exec_timeout", mode="before")
    @classmethod
    def _exec(cls, value: Any) -> Any:
        return _as_object(value, "duration")

    @field_validator("state_exec_timeout", mode="before")
    @classmethod
    def _state(cls, value: Any) -> Any:
        # 0.8 allows {"total": ..., "single": ...}: the total is the state's deadline.
        if isinstance(value, dict):
            value = value.get("total", value.get("single"))
        return _duration(value)


class ProduceEvent(_Model):
    """``produceEvents[]`` of a transition or an end: a CloudEvent emitted as the state is left."""

    event_ref: str
    data: Any = None
    context_attributes: dict[str, Any] = {}


class ContinueAs(_Model):
    """``end.continueAs``: restart the instance with a fresh history and new input."""

    workflow_id: str
    version: str | None = None
    data: Any = None


class Transition(_Model):
    """``transition``: the next state, with optional compensation and produced events."""

    next_state: str
    compensate: bool = False
    produce_events: list[ProduceEvent] = []


class End(_Model):
    """``end``: finish the run (``true`` is the shorthand for ``{}``)."""

    terminate: bool = False
    compensate: bool = False
    produce_events: list[ProduceEvent] = []
    continue_as: ContinueAs | None = None

    @field_validator("continue_as", mode="before")
    @classmethod
    def _continue(cls, value: Any) -> Any:
        return _as_object(value, "workflowId")


def _transition(value: Any) -> Any:
    return _as_object(value, "nextState")


def _end(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


TransitionField = Annotated[Transition | None, BeforeValidator(_transition)]
EndField = Annotated[End | None, BeforeValidator(_end)]


# -- actions ---------------------------------------------------------------------------------


class FunctionRef(_Model):
    """``functionRef``: call a function of ``functions[]`` with arguments."""

    ref_name: str
    arguments: Any = None
    invoke: Literal["sync", "async"] = "sync"


class EventRef(_Model):
    """``eventRef`` in an action: produce a trigger event, then wait for the result event."""

    trigger_event_ref: str
    result_event_ref: str
    result_event_timeout: Duration | None = None
    data: Any = None
    context_attributes: dict[str, Any] = {}
    invoke: Literal["sync", "async"] = "sync"


class SubFlowRef(_Model):
    """``subFlowRef``: run another workflow (by id) as a child workflow."""

    workflow_id: str
    version: str | None = None
    invoke: Literal["sync", "async"] = "sync"
    on_parent_complete: Literal["terminate", "continue"] = "terminate"


class ActionDataFilter(_Model):
    """``actionDataFilter``: what an action sees and where its result goes."""

    from_state_data: str | None = None
    results: str | None = None
    to_state_data: str | None = None
    use_results: bool = True


class EventDataFilter(_Model):
    """``eventDataFilter``: what part of an event's data goes where in the state data."""

    data: str | None = None
    to_state_data: str | None = None
    use_data: bool = True


class StateDataFilter(_Model):
    """``stateDataFilter``: the state's view of its input, and its output."""

    input: str | None = None
    output: str | None = None


class Sleep(_Model):
    """``sleep`` of an action: waits before and after it."""

    before: Duration | None = None
    after: Duration | None = None


class Action(_Model):
    """One action: exactly one of ``functionRef``, ``eventRef`` or ``subFlowRef``."""

    name: str | None = None
    function_ref: FunctionRef | None = None
    event_ref: EventRef | None = None
    sub_flow_ref: SubFlowRef | None = None
    action_data_filter: ActionDataFilter = ActionDataFilter()
    sleep: Sleep | None = None
    retry_ref: str | None = None
    retryable_errors: list[str] = []
    non_retryable_errors: list[str] = []
    condition: str | None = None

    @field_validator("function_ref", mode="before")
    @classmethod
    def _function(cls, value: Any) -> Any:
        return _as_object(value, "refName")

    @field_validator("sub_flow_ref", mode="before")
    @classmethod
    def _subflow(cls, value: Any) -> Any:
        return _as_object(value, "workflowId")

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        kinds = [k for k in (self.function_ref, self.event_ref, self.sub_flow_ref) if k is not None]
        if len(kinds) != 1:
            raise ValueError("an action needs exactly one of functionRef, eventRef or subFlowRef")
        return self


class OnError(_Model):
    """``onErrors[]``: where to go when the state fails with one of the named errors."""

    error_refs: list[str]
    transition: TransitionField = None
    end: EndField = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, value: Any) -> Any:
        if isinstance(value, dict) and "errorRef" in value:
            value = {**value, "errorRefs": [value["errorRef"], *value.get("errorRefs", [])]}
        return value


# -- states ----------------------------------------------------------------------------------


class State(_Model):
    """What every state has: name, filters, error handling, where to go next."""

    name: str
    type: str
    state_data_filter: StateDataFilter | None = None
    on_errors: list[OnError] = []
    transition: TransitionField = None
    end: EndField = None
    compensated_by: str | None = None
    used_for_compensation: bool = False
    timeouts: Timeouts = Timeouts()


class InjectState(State):
    """``inject``: static data merged into the state data."""

    data: dict[str, Any] = {}


class OperationState(State):
    """``operation``: actions, one after the other or all at once."""

    action_mode: Literal["sequential", "parallel"] = "sequential"
    actions: list[Action] = []


class Condition(_Model):
    """A ``dataConditions[]``/``eventConditions[]`` entry or the ``defaultCondition``."""

    name: str | None = None
    condition: str | None = None
    event_ref: str | None = None
    event_data_filter: EventDataFilter = EventDataFilter()
    transition: TransitionField = None
    end: EndField = None


class SwitchState(State):
    """``switch``: the first data condition that holds, or the first event that arrives."""

    data_conditions: list[Condition] = []
    event_conditions: list[Condition] = []
    default_condition: Condition | None = None
    event_timeout: Duration | None = None  # older drafts put it on the state itself


class OnEvents(_Model):
    """``onEvents[]`` of an event state: the events, their filter and the actions they trigger."""

    event_refs: list[str]
    action_mode: Literal["sequential", "parallel"] = "sequential"
    actions: list[Action] = []
    event_data_filter: EventDataFilter = EventDataFilter()


class EventState(State):
    """``event``: wait for events (any of them when ``exclusive``, else all), then act."""

    exclusive: bool = True
    on_events: list[OnEvents]


class SleepState(State):
    """``sleep``: a durable timer."""

    duration: Duration


class Branch(_Model):
    """A ``parallel`` state's branch: actions run on the branch's own copy of the data."""

    name: str
    actions: list[Action] = []
    timeouts: Timeouts = Timeouts()


class ParallelState(State):
    """``parallel``: branches at once, done when all (or ``numCompleted``) finish."""

    branches: list[Branch]
    completion_type: Literal["allOf", "atLeast"] = "allOf"
    num_completed: int | None = None


class ForEachState(State):
    """``foreach``: the actions once per element of ``inputCollection``."""

    input_collection: str
    output_collection: str | None = None
    iteration_param: str = "item"
    batch_size: int | None = Field(default=None, ge=1)
    mode: Literal["parallel", "sequential"] = "parallel"
    actions: list[Action] = []


class CallbackState(State):
    """``callback``: one action, then wait for the event that reports its outcome."""

    action: Action
    event_ref: str
    event_data_filter: EventDataFilter = EventDataFilter()


STATE_TYPES: dict[str, type[State]] = {
    "inject": InjectState,
    "operation": OperationState,
    "switch": SwitchState,
    "event": EventState,
    "sleep": SleepState,
    "parallel": ParallelState,
    "foreach": ForEachState,
    "callback": CallbackState,
}


# -- the start schedule ----------------------------------------------------------------------


def _schedule_check(check: Any, value: Any) -> Any:
    """Run a ``_schedule`` check; its ScheduleError becomes a validation error with the same message."""
    try:
        check(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return value


class CronDef(_Model):
    """``start.schedule.cron``: an expression (``{expression, validUntil}``, or the expression alone)."""

    expression: str
    valid_until: str | None = None

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        return _schedule_check(normalize_cron, value)

    @field_validator("valid_until")
    @classmethod
    def _until(cls, value: str | None) -> str | None:
        return None if value is None else _schedule_check(parse_moment, value)


class StartSchedule(_Model):
    """``start.schedule``: when instances start by themselves; a string is the ``interval``."""

    interval: str | None = None
    cron: CronDef | None = None
    timezone: str = "UTC"

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        return None if value is None else _schedule_check(parse_interval, value)

    @field_validator("cron", mode="before")
    @classmethod
    def _cron(cls, value: Any) -> Any:
        return _as_object(value, "expression")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _schedule_check(check_timezone, value)

    @model_validator(mode="after")
    def _one(self) -> StartSchedule:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("expected exactly one of interval (e.g. 'R/PT1H') and cron")
        return self

    def schedule(self) -> Schedule:
        """The normalized schedule the scheduler runs."""
        if self.interval is not None:
            return parse_interval(self.interval, self.timezone)
        assert self.cron is not None
        until = parse_moment(self.cron.valid_until, self.timezone) if self.cron.valid_until else None
        cron = normalize_cron(self.cron.expression)
        return Schedule("cron", cron=cron, timezone=self.timezone, until=until)


# -- the workflow ----------------------------------------------------------------------------


class Workflow08(_Model):
    """A whole 0.8 definition, normalized. ``states`` is typed per state ``type``."""

    id: str
    name: str | None = None
    version: str | None = None
    spec_version: str | None = None
    start: str | None = None
    start_schedule: StartSchedule | None = None  # ``start.schedule``, moved here by ``_shorthands``
    expression_lang: str = "jq"
    auto_retries: bool = False
    keep_active: bool = False
    constants: dict[str, Any] = {}
    secrets: list[str] = []
    timeouts: Timeouts = Timeouts()
    functions: list[FunctionDef] = []
    events: list[EventDef] = []
    errors: list[ErrorDef] = []
    retries: list[RetryDef] = []
    states: list[State] = []

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        value = dict(value)
        if "id" not in value and "key" in value:
            value["id"] = value["key"]
        start = value.get("start")
        if isinstance(start, dict):
            value["start"] = start.get("stateName")
            if "schedule" in start:
                schedule = start["schedule"]
                value["startSchedule"] = {"interval": schedule} if isinstance(schedule, str) else schedule
        if isinstance(value.get("version"), (int, float)):
            value["version"] = str(value["version"])
        if isinstance(value.get("specVersion"), (int, float)):
            value["specVersion"] = str(value["specVersion"])
        return value

    # Lookups the interpreter uses, by name.
    def state(self, name: str) -> State:
        """The state called ``name``."""
        return next(s for s in self.states if s.name == name)

    def function(self, name: str) -> FunctionDef:
        """The function called ``name``."""
        return next(f for f in self.functions if f.name == name)

    def event(self, name: str) -> EventDef:
        """The event definition called ``name``."""
        return next(e for e in self.events if e.name == name)

    def retry(self, name: str) -> RetryDef:
        """The retry strategy called ``name``."""
        return next(r for r in self.retries if r.name == name)

    @property
    def start_state(self) -> str:
        """The start state's name (the first state when ``start`` is absent)."""
        return self.start or self.states[0].name


# -- the entry point -------------------------------------------------------------------------


def parse_v08(document: dict[str, Any], source: str | None = None) -> Definition:
    """Validate a 0.8 document (DefinitionError lists every problem) and wrap it as a Definition."""
    # Imported here: the parser needs the models above, and the loader imports this module.
    from ._v08_parse import parse_workflow

    workflow = parse_workflow(document, source)
    return Definition(
        name=workflow.id,
        version=workflow.version or "",
        namespace="default",
        dialect="0.8",
        document=document,
        source=source,
    )
