"""``workflow.aws.stepfunctions``: Turnout's management API on AWS Step Functions (Standard workflows).

A workflow is a state machine; an instance is one execution of it, and the
instance id is the execution's name. Step Functions names executions per
state machine, so an instance is looked up among the component's state
machines: those of ``stateMachines`` and ``definitions``, or, when neither
is set, every Standard state machine of the account and region (the
workflow name is then the state machine's name).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

from botocore.exceptions import ClientError

from turnout import (
    ComponentError,
    EngineError,
    Feature,
    HistoryEvent,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    ListQuery,
    StartRequest,
    TurnoutError,
    WorkflowComponent,
    WorkflowNotRegistered,
    WorkflowPage,
    WorkflowState,
)

from ._aws import AwsCalls, ErrorMap, error_message, make_client, make_session
from ._callbacks import (
    FAILURE_SUFFIX,
    TOKEN_KEYS,
    WaitingTask,
    choose,
    execution_closed,
    failure_fields,
    success_output,
    waiting_tasks,
)
from ._definitions import Definition, check_machine_name, load_definitions
from ._listing import Lister
from ._mapping import (
    OPEN_STATUSES,
    STATUS,
    aws_statuses,
    base_arn,
    execution_arn,
    summary_state,
    to_history,
    to_state,
)
from ._metadata import StepFunctionsMetadata

log = logging.getLogger("turnout.aws.stepfunctions")
T = TypeVar("T")

COMPONENT_TYPE = "workflow.aws.stepfunctions"
DOCS = "docs/engines/aws-stepfunctions.md"
TERMINATE_ERROR = "Turnout.Terminated"
"""StopExecution's ``error`` when Turnout terminates an execution (the reason is the ``cause``)."""
MAX_INPUT = 262_144
MAX_CAUSE = 32_768
LIST_REFRESH = 2.0
"""Seconds before an instance lookup that found nothing may list the account's state machines again."""
_CACHE = 10_000


class StateMachineNotFound(WorkflowNotRegistered):
    """The workflow name leads to no Standard state machine this component may start."""

    def __init__(self, name: str, registered: list[str], hint: str) -> None:
        self.kind = "workflow"
        self.name = name
        self.registered = registered
        known = ", ".join(sorted(registered)) or "none"
        TurnoutError.__init__(self, f"no state machine for the workflow '{name}' (known: {known}): {hint}")


class _Missing(TurnoutError):
    """Internal: the AWS object does not exist (turned into None or a public error by the caller)."""


class _Conflict(TurnoutError):
    """Internal: a state machine of that name was created meanwhile."""


class _Spent(TurnoutError):
    """Internal: a task token that is no longer valid (its task finished or timed out)."""


def _missing(exc: ClientError) -> TurnoutError:
    return _Missing(error_message(exc))


def _spent(exc: ClientError) -> TurnoutError:
    return _Spent(error_message(exc))


async def _all_of(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` together; once all have ended, raise the first error in their order (if any)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(list[T], results)


@dataclass(frozen=True)
class Machine:
    """A workflow of the component: its name and the state machine ARN it starts (maybe qualified)."""

    workflow: str
    arn: str

    @property
    def base(self) -> str:
        """The state machine the executions belong to (without a version or alias)."""
        return base_arn(self.arn)


class StepFunctionsComponent(WorkflowComponent):
    """Workflows run as AWS Step Functions executions; see docs/engines/aws-stepfunctions.md."""

    features: ClassVar[frozenset[Feature]] = frozenset(
        {Feature.LIST, Feature.TERMINATE, Feature.RAISE_EVENT, Feature.HISTORY}
    )
    unsupported_reasons: ClassVar[dict[Feature, str]] = {
        Feature.PAUSE: "Step Functions has no API to pause or resume an execution",
        Feature.CANCEL: (
            "Step Functions has no cooperative cancellation that lets the state machine clean up; "
            "terminate (StopExecution) ends an execution at once"
        ),
        Feature.PURGE: (
            "Step Functions has no API to delete an execution: AWS keeps a Standard execution's "
            "history for 90 days after it closes"
        ),
        Feature.START_AT: (
            "Step Functions starts an execution at once and has no scheduled start; schedule "
            "StartExecution with Amazon EventBridge Scheduler, or begin the state machine with a Wait state"
        ),
        Feature.REPLACE: (
            "Step Functions keeps a Standard execution's name for 90 days after it closes, so a new "
            "execution cannot take the name (instance id) of a finished one; choose a new id"
        ),
        Feature.WORKFLOW_CODE: (
            "Step Functions runs Amazon States Language state machines, not Turnout workflow code"
        ),
        Feature.DEFINITIONS: (
            "Serverless Workflow definitions run as Turnout workflow code, which Step Functions does not "
            "run; deploy an ASL state machine instead"
        ),
    }
    component_type = COMPONENT_TYPE

    def __init__(
        self,
        metadata: StepFunctionsMetadata,
        *,
        name: str = "",
        file: str | None = None,
        working_dir: Path | None = None,
        calls: AwsCalls | None = None,
    ) -> None:
        self.metadata = metadata
        self.name = name
        self._file = file
        self._definitions: list[Definition] = load_definitions(
            metadata.definitions,
            working_dir or Path.cwd(),
            taken=metadata.state_machines,
            file=file,
            component=name or None,
        )
        self._calls = calls
        self._own_calls = calls is None
        self._machines: dict[str, Machine] = {}
        self._by_account = not metadata.state_machines and not metadata.definitions
        self._listed_at = float("-inf")
        self._listing = asyncio.Lock()
        self._located: OrderedDict[str, Machine] = OrderedDict()
        self._spent_tokens: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    # -- life cycle -----------------------------------------------------------------

    @property
    def calls(self) -> AwsCalls:
        """The AWS call layer (set by :meth:`open`)."""
        if self._calls is None:
            raise TurnoutError(f"component '{self.name}' ({COMPONENT_TYPE}) is not open")
        return self._calls

    @property
    def machines(self) -> Mapping[str, Machine]:
        """The workflows this component knows now, by name."""
        return dict(self._machines)

    async def open(self) -> None:
        """Connect, check the configured state machines, and create or update those of ``definitions``."""
        if self._calls is None:
            client = await asyncio.to_thread(lambda: make_client(make_session(self.metadata), self.metadata))
            self._calls = AwsCalls(client, COMPONENT_TYPE)
        try:
            if self._by_account:
                await self._list_account(force=True)
            else:
                await self._check_configured()
                await self._deploy_definitions()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the thread pool and close the HTTP connections."""
        calls = self._calls
        if calls is not None and self._own_calls:
            self._calls = None
            await calls.close()

    def _component_error(self, reason: str, field: str) -> ComponentError:
        return ComponentError(reason, file=self._file, component=self.name or None, field=field)

    async def _check_configured(self) -> None:
        async def check(workflow: str, arn: str) -> Machine:
            field = f"spec.metadata.stateMachines.{workflow}"
            try:
                found = await self.calls.call(
                    "describe_state_machine",
                    stateMachineArn=base_arn(arn),
                    errors={"StateMachineDoesNotExist": _missing, "InvalidArn": _missing},
                )
            except _Missing:
                raise self._component_error(
                    f"no state machine {base_arn(arn)}: check the ARN, the region and that the credentials "
                    "belong to its account",
                    field,
                ) from None
            self._require_standard(found.get("type"), base_arn(arn), field)
            return Machine(workflow, arn)

        checked = await _all_of(
            [check(workflow, arn) for workflow, arn in self.metadata.state_machines.items()]
        )
        self._machines.update((machine.workflow, machine) for machine in checked)

    def _require_standard(self, kind: Any, arn: str, field: str) -> None:
        if kind not in (None, "STANDARD"):
            raise self._component_error(
                f"{arn} is an {kind} state machine; Turnout runs STANDARD ones only (Express executions "
                "cannot be described, listed or given a task token through DescribeExecution and "
                "GetExecutionHistory)",
                field,
            )

    async def _deploy_definitions(self) -> None:
        if not self._definitions:
            return
        existing = await self._all_state_machines()
        arns = await _all_of([self._deploy(definition, existing) for definition in self._definitions])
        for definition, arn in zip(self._definitions, arns, strict=True):
            self._machines[definition.workflow] = Machine(definition.workflow, arn)

    async def _deploy(self, definition: Definition, existing: Mapping[str, Mapping[str, Any]]) -> str:
        role = self.metadata.role_arn
        assert role is not None  # the metadata model requires roleArn with definitions

        def refused(exc: ClientError) -> TurnoutError:
            return self._component_error(
                f"{definition.path}: Step Functions refused the definition of '{definition.workflow}': "
                f"{error_message(exc)}",
                "spec.metadata.definitions",
            )

        def bad_role(exc: ClientError) -> TurnoutError:
            return self._component_error(
                f"Step Functions refused the role: {error_message(exc)}", "spec.metadata.roleArn"
            )

        errors: ErrorMap = {
            "InvalidDefinition": refused,
            "": refused,  # moto's ASL parser answers without an error code
            "InvalidArn": bad_role,
            "StateMachineAlreadyExists": lambda exc: _Conflict(error_message(exc)),
        }
        current = existing.get(definition.workflow)
        if current is None:
            try:
                created = await self.calls.call(
                    "create_state_machine",
                    name=definition.workflow,
                    definition=definition.text,
                    roleArn=role,
                    type="STANDARD",
                    errors=errors,
                )
                return str(created["stateMachineArn"])
            except _Conflict as exc:  # created meanwhile by someone else: update it instead
                current = (await self._all_state_machines()).get(definition.workflow)
                if current is None:
                    raise self._component_error(
                        f"{definition.path}: cannot create the state machine '{definition.workflow}': "
                        f"{exc.message}",
                        "spec.metadata.definitions",
                    ) from None
        arn = str(current["stateMachineArn"])
        self._require_standard(current.get("type"), arn, "spec.metadata.definitions")
        described = await self.calls.call("describe_state_machine", stateMachineArn=arn)
        try:
            same = json.loads(described.get("definition") or "null") == definition.document
        except json.JSONDecodeError:
            same = False
        if not same or described.get("roleArn") != role:
            log.info("updating state machine %s from %s", arn, definition.path)
            await self.calls.call(
                "update_state_machine",
                stateMachineArn=arn,
                definition=definition.text,
                roleArn=role,
                errors=errors,
            )
        return arn

    async def _all_state_machines(self) -> dict[str, Mapping[str, Any]]:
        listed = await self.calls.paginate("list_state_machines", "stateMachines", maxResults=1000)
        return {str(item["name"]): item for item in listed}

    async def _list_account(self, *, force: bool = False) -> bool:
        """Refresh the account's state machines (workflows when nothing is configured); True if it listed."""
        async with self._listing:
            if not force and time.monotonic() - self._listed_at < LIST_REFRESH:
                return False
            found = await self._all_state_machines()
            self._machines = {
                name: Machine(name, str(item["stateMachineArn"]))
                for name, item in found.items()
                if item.get("type", "STANDARD") == "STANDARD"
            }
            self._listed_at = time.monotonic()
            return True

    # -- finding workflows and instances ------------------------------------------------------

    async def _machine(self, workflow: str) -> Machine:
        machine = self._machines.get(workflow)
        if machine is not None:
            return machine
        if self._by_account:
            problem = check_machine_name(workflow)
            if problem is not None:
                raise InvalidArgument("workflow name", workflow, f"the name of a state machine ({problem})")
            await self._list_account(force=True)
            machine = self._machines.get(workflow)
            if machine is not None:
                return machine
            hint = (
                f"there is no Standard state machine named '{workflow}' in {self.metadata.region} for "
                "these credentials; create it, or map the workflow name to an ARN in stateMachines"
            )
        else:
            hint = (
                f"component '{self.name}' serves only the workflows of its stateMachines and definitions; "
                "add this one to either"
            )
        raise StateMachineNotFound(workflow, list(self._machines), hint)

    def _workflow_of(self, machine: Machine, item: Mapping[str, Any]) -> str:
        """The workflow an execution belongs to, when several workflows share one state machine."""
        sharing = [m for m in self._machines.values() if m.base == machine.base] or [machine]
        for key in ("stateMachineAliasArn", "stateMachineVersionArn"):
            for candidate in sharing:
                if item.get(key) and candidate.arn == item[key]:
                    return candidate.workflow
        plain = [m for m in sharing if m.arn == m.base]
        return (plain or sharing)[0].workflow

    def _remember(self, instance_id: str, machine: Machine) -> None:
        self._located[instance_id] = machine
        self._located.move_to_end(instance_id)
        while len(self._located) > _CACHE:
            self._located.popitem(last=False)

    async def _describe(self, machine: Machine, instance_id: str) -> dict[str, Any] | None:
        try:
            return await self.calls.call(
                "describe_execution",
                executionArn=execution_arn(machine.base, instance_id),
                errors={
                    "ExecutionDoesNotExist": _missing,
                    "InvalidArn": _missing,
                    "StateMachineDoesNotExist": _missing,
                },
            )
        except _Missing:
            return None

    async def _find(
        self, instance_id: str, *, skip: str | None = None
    ) -> tuple[Machine, dict[str, Any]] | None:
        """The execution named ``instance_id`` in the component's state machines (but ``skip``)."""
        cached = self._located.get(instance_id)
        if cached is not None:
            if cached.base == skip:
                return None
            described = await self._describe(cached, instance_id)
            if described is not None:
                return cached, described
            self._located.pop(instance_id, None)
        probed: set[str] = set() if skip is None else {skip}
        for attempt in range(2):
            bases: dict[str, Machine] = {}
            for machine in self._machines.values():
                if machine.base not in probed:
                    bases.setdefault(machine.base, machine)
            probed.update(bases)
            answers = await asyncio.gather(*(self._describe(m, instance_id) for m in bases.values()))
            for machine, described in zip(bases.values(), answers, strict=True):
                if described is not None:
                    self._remember(instance_id, machine)
                    return machine, described
            # Nothing configured: a state machine created since the last listing may hold it.
            if attempt or not self._by_account or not await self._list_account():
                return None
        return None

    async def _located_or_raise(self, instance_id: str) -> tuple[Machine, dict[str, Any]]:
        found = await self._find(instance_id)
        if found is None:
            raise InstanceNotFound(instance_id, self.name or None)
        return found

    @contextlib.asynccontextmanager
    async def _lock(self, instance_id: str) -> AsyncIterator[None]:
        # Starts racing for one id in this process run one after another, so the
        # "already exists elsewhere" check and StartExecution see each other.
        lock, users = self._locks.setdefault(instance_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                self._locks.pop(instance_id, None)

    # -- the management API -----------------------------------------------------------

    async def start(self, request: StartRequest) -> str:
        """StartExecution named after the instance id; the same id and input while running is a no-op."""
        if request.start_at is not None:
            raise self.unsupported(Feature.START_AT)
        if request.replace:
            raise self.unsupported(Feature.REPLACE)
        machine = await self._machine(request.workflow_name)
        instance_id = request.instance_id or uuid.uuid4().hex
        text = json.dumps(request.input, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) > MAX_INPUT:
            raise InvalidArgument(
                "input",
                f"<{len(text.encode())} bytes of JSON>",
                f"at most {MAX_INPUT} bytes of JSON (Step Functions' limit for an execution's input)",
            )
        async with self._lock(instance_id):
            elsewhere = await self._find(instance_id, skip=machine.base)
            if elsewhere is not None:
                status = STATUS.get(elsewhere[1]["status"])
                raise InstanceExists(instance_id, status and status.value, self.name or None)
            try:
                await self.calls.call(
                    "start_execution",
                    stateMachineArn=machine.arn,
                    name=instance_id,
                    input=text,
                    errors=self._start_errors(machine, instance_id),
                )
            except InstanceExists as exc:
                described = await self._describe(machine, instance_id)
                status = STATUS.get(described["status"]) if described else None
                raise InstanceExists(
                    instance_id, status and status.value, self.name or None
                ) from exc.__cause__
            except _Missing:
                if self._by_account:
                    self._machines.pop(machine.workflow, None)
                raise StateMachineNotFound(
                    machine.workflow,
                    list(self._machines),
                    f"its state machine {machine.arn} does not exist (any more) or is being deleted",
                ) from None
        self._remember(instance_id, machine)
        return instance_id

    def _start_errors(self, machine: Machine, instance_id: str) -> ErrorMap:
        def exists(exc: ClientError) -> TurnoutError:
            return InstanceExists(instance_id, None, self.name or None)

        def bad_name(exc: ClientError) -> TurnoutError:
            return InvalidArgument(
                "instance id",
                instance_id,
                f"a name Step Functions accepts for an execution ({error_message(exc)})",
            )

        def bad_input(exc: ClientError) -> TurnoutError:
            return InvalidArgument(
                "input", "<the input>", f"JSON Step Functions accepts ({error_message(exc)})"
            )

        def limit(exc: ClientError) -> TurnoutError:
            return EngineError(
                COMPONENT_TYPE,
                "start_execution",
                f"the account's limit of open executions is reached ({error_message(exc)}); retry later",
                retryable=True,
            )

        return {
            "ExecutionAlreadyExists": exists,
            "InvalidName": bad_name,
            "InvalidExecutionInput": bad_input,
            "ExecutionLimitExceeded": limit,
            "StateMachineDoesNotExist": _missing,
            "StateMachineDeleting": _missing,
        }

    async def get(self, instance_id: str) -> WorkflowState | None:
        """DescribeExecution of the execution named ``instance_id``; None when there is none."""
        found = await self._find(instance_id)
        if found is None:
            return None
        machine, described = found
        return to_state(described, self._workflow_of(machine, described), COMPONENT_TYPE)

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """StopExecution (error ``Turnout.Terminated``, the reason as cause); a finished one is left as is."""
        if reason is not None and len(reason) > MAX_CAUSE:
            raise InvalidArgument("reason", f"<{len(reason)} characters>", f"at most {MAX_CAUSE} characters")
        _machine, described = await self._located_or_raise(instance_id)
        if described["status"] not in OPEN_STATUSES:
            return  # already finished: terminating is idempotent, as in Dapr
        parameters = {"executionArn": described["executionArn"], "error": TERMINATE_ERROR}
        if reason:
            parameters["cause"] = reason
        try:
            await self.calls.call("stop_execution", errors={"ExecutionDoesNotExist": _missing}, **parameters)
        except _Missing:
            raise InstanceNotFound(instance_id, self.name or None) from None
        except EngineError:
            again = await self._find(instance_id)
            if again is not None and again[1]["status"] not in OPEN_STATUSES:
                return  # it finished while we asked
            raise

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Complete the open ``.waitForTaskToken`` task of the state named ``name`` (see _callbacks)."""
        _machine, described = await self._located_or_raise(instance_id)
        arn = described["executionArn"]
        timeout = self.metadata.raise_event_timeout
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            events = await self._events(arn, instance_id)
            if execution_closed(events):
                # Like Dapr: an event for a finished instance is dropped, not an error.
                log.info("event %r for finished execution %s dropped", name, arn)
                return
            waiting = waiting_tasks(events)
            tasks, success = choose(name, waiting)
            for task in tasks:
                if task.token is None or task.token in self._spent_tokens:
                    continue
                delivered = await self._deliver(task, success, data)
                self._spend(task.token)
                if delivered:
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InvalidState(
                    instance_id,
                    "RUNNING",
                    f"raise event '{name}' to",
                    self._no_task_hint(name, tasks, waiting),
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)

    def _no_task_hint(self, name: str, tasks: list[WaitingTask], waiting: list[WaitingTask]) -> str:
        timeout = f"{self.metadata.raise_event_timeout:g}s"
        if any(task.token is None for task in tasks):
            keys = " or ".join(sorted(TOKEN_KEYS))
            return (
                f"the task state '{tasks[0].state}' waits for a task token but passes it under no key named "
                f"{keys} (any case) in its Parameters, so Turnout cannot find it; see {DOCS}"
            )
        states = ", ".join(sorted({f"'{task.state}'" for task in waiting})) or "none"
        return (
            f"no .waitForTaskToken task state named '{name}' (or '{name.removesuffix(FAILURE_SUFFIX)}' for "
            f"a '{FAILURE_SUFFIX}' event) was waiting within {timeout} (waiting now: {states}); "
            "Step Functions cannot hold an event until a task waits for it: raise it while the task "
            f"waits, see {DOCS}"
        )

    def _spend(self, token: str) -> None:
        self._spent_tokens[token] = None
        while len(self._spent_tokens) > _CACHE:
            self._spent_tokens.popitem(last=False)

    async def _deliver(self, task: WaitingTask, success: bool, data: Any) -> bool:
        """SendTaskSuccess or SendTaskFailure; False when the token is no longer valid."""
        assert task.token is not None
        errors: ErrorMap = {"TaskTimedOut": _spent, "InvalidToken": _spent, "TaskDoesNotExist": _spent}
        try:
            if success:
                output = success_output(data)
                bad_output: ErrorMap = {
                    "InvalidOutput": lambda exc: InvalidArgument(
                        "event data", data, f"a task result Step Functions accepts ({error_message(exc)})"
                    )
                }
                await self.calls.call(
                    "send_task_success", taskToken=task.token, output=output, errors={**errors, **bad_output}
                )
            else:
                error, cause = failure_fields(data)
                extra = {"cause": cause} if cause is not None else {}
                await self.calls.call(
                    "send_task_failure", taskToken=task.token, error=error, errors=errors, **extra
                )
        except _Spent:
            return False
        return True

    async def _events(self, arn: str, instance_id: str) -> list[dict[str, Any]]:
        try:
            return await self.calls.paginate(
                "get_execution_history",
                "events",
                executionArn=arn,
                maxResults=1000,
                errors={"ExecutionDoesNotExist": _missing},
            )
        except _Missing:
            raise InstanceNotFound(instance_id, self.name or None) from None

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        """GetExecutionHistory, every page, as Turnout history events (oldest first)."""
        _machine, described = await self._located_or_raise(instance_id)
        return to_history(await self._events(described["executionArn"], instance_id))

    async def list(self, query: ListQuery) -> WorkflowPage:
        """ListExecutions of the component's state machines, merged newest first (see _listing)."""
        wanted = aws_statuses(query.status)
        if wanted is not None and not wanted:
            return WorkflowPage(items=[])  # SUSPENDED, CANCELED...: no execution is ever in them
        if query.workflow_name is not None:
            machine = self._machines.get(query.workflow_name)
            if machine is None and self._by_account and await self._list_account():
                machine = self._machines.get(query.workflow_name)
            if machine is None:
                return WorkflowPage(items=[])
            arns = [machine.arn]
        else:
            if self._by_account:
                await self._list_account()
            arns = list(dict.fromkeys(m.base for m in self._machines.values()))
        return await Lister(self.calls, query, wanted, arns, self._list_item).page()

    def _list_item(self, arn: str, item: Mapping[str, Any]) -> WorkflowState:
        """A ListExecutions item of the stream of ``arn`` as a summary state of its workflow."""
        machine = next((m for m in self._machines.values() if m.arn == arn), None)
        machine = machine or next((m for m in self._machines.values() if m.base == base_arn(arn)), None)
        machine = machine or Machine(base_arn(arn).rpartition(":")[2], arn)
        return summary_state(item, self._workflow_of(machine, item), COMPONENT_TYPE)
