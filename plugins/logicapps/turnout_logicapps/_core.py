"""The core of the Logic Apps component: its life, its Azure calls, and how it finds and reads runs.

A Turnout workflow name is a Logic App's resource name; an instance is one run.
Logic Apps chooses run ids itself, so the instance id travels as the run's
client tracking id (``x-ms-client-tracking-id``). The component remembers
instance -> run, and finds a run it does not know (another process started it,
or this one restarted) with ``runs.list`` filtered on ``ClientTrackingId``
across the resource group's Logic Apps; the newest such run is the instance.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.logic.aio import LogicManagementClient
from azure.mgmt.logic.models import WorkflowRun

from turnout import (
    ComponentContext,
    ComponentError,
    EngineError,
    FailureDetails,
    InstanceNotFound,
    RuntimeStatus,
    TurnoutError,
    WorkflowComponent,
    WorkflowNotRegistered,
    WorkflowState,
)

from ._azure import COMPONENT_TYPE, DataPlane, engine_error, make_client, make_credential
from ._metadata import LogicAppsMetadata
from ._status import STATUS_TABLE, runtime_status

log = logging.getLogger("turnout.logicapps")


OUTPUT_NAME = "output"
"""The definition output that holds a run's Turnout output (see the engine page of the docs)."""
CALLBACK_URL_PROPERTY = "callbackUrl"
"""Where an HTTP Webhook action's subscribe body carries ``@{listCallbackUrl()}`` (the event convention)."""
EVENT_DELIVERY_TIMEOUT = 60.0
"""Seconds raise_event waits for the webhook action to start waiting for its callback."""

LOGIC_APP_NAME = re.compile(r"^[-\w.()]{1,80}$")
FINISHED_ACTIONS = frozenset(
    {"succeeded", "failed", "skipped", "cancelled", "timedout", "aborted", "faulted", "ignored"}
)
PARALLEL = 8
"""At most this many ARM calls at once for one list or one lookup."""


class LogicAppNotFound(WorkflowNotRegistered):
    """No Logic App has the workflow name in the component's resource group."""

    def __init__(self, name: str, resource_group: str, existing: list[str]) -> None:
        self.kind = "workflow"
        self.name = name
        self.registered = existing
        self.resource_group = resource_group
        known = ", ".join(sorted(existing)) or "none"
        TurnoutError.__init__(
            self,
            f"no Logic App named '{name}' in resource group '{resource_group}' (its Logic Apps: {known}); "
            "the workflow name is the Logic App's resource name",
        )


@dataclass(frozen=True)
class RunRef:
    """Where an instance lives: a Logic App and one of its runs."""

    workflow: str
    run: str


def aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def odata_time(value: datetime, *, inclusive_microsecond: bool = False) -> str:
    """A filter timestamp with Logic Apps' 7 fractional digits.

    Runs carry 100 ns ticks and the SDK keeps microseconds, so "up to and
    including this microsecond" is ``le ...X9`` on the service's scale.
    """
    value = value.astimezone(UTC)
    last = "9" if inclusive_microsecond else "0"
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + last + "Z"


def tracking_id(run: WorkflowRun) -> str:
    correlation = run.correlation
    return (correlation.client_tracking_id if correlation else None) or str(run.name)


def run_output(run: WorkflowRun) -> Any:
    """The run's Turnout output: the definition output ``output``, or all outputs by name, or None."""
    outputs = run.outputs or {}
    if OUTPUT_NAME in outputs:
        chosen = outputs[OUTPUT_NAME]
        return None if chosen is None or chosen.error is not None else chosen.value
    usable = {name: p.value for name, p in outputs.items() if p is not None and p.error is None}
    return usable or None


def run_failure(run: WorkflowRun) -> FailureDetails:
    error = run.error if isinstance(run.error, dict) else {}
    code = error.get("code") or run.code or run.status or "Failed"
    message = error.get("message") or f"the Logic Apps run ended {run.status} (code {run.code or 'none'})"
    return FailureDetails(error_type=str(code), message=str(message))


class LogicAppsBase(WorkflowComponent):
    """State and helpers shared by the parts of :class:`LogicAppsComponent` (see there)."""

    component_type = COMPONENT_TYPE

    def __init__(
        self,
        metadata: LogicAppsMetadata,
        *,
        name: str = "",
        credential: AsyncTokenCredential | None = None,
        ca_file: Path | None = None,
        client_options: dict[str, Any] | None = None,
        event_timeout: float = EVENT_DELIVERY_TIMEOUT,
    ) -> None:
        self.name = name
        self.metadata = metadata
        self._group = metadata.resource_group
        self._credential = credential
        self._owns_credential = credential is None
        self._ca_file = ca_file
        self._client_options = dict(client_options or {})
        self._event_timeout = event_timeout
        self._client: LogicManagementClient | None = None
        self._data = DataPlane(ca_file, metadata.allow_insecure_base_url)
        self._runs: dict[str, RunRef] = {}
        self._inputs: dict[RunRef, Any] = {}
        self._definitions: dict[tuple[str, str], dict[str, Any]] = {}
        self._starting: set[str] = set()

    @classmethod
    def from_metadata(cls, metadata: LogicAppsMetadata, context: ComponentContext) -> Self:
        """Build the component of a component file: resolves and checks ``caCertificateFile``."""
        ca_file = None
        if metadata.ca_certificate_file:
            ca_file = Path(metadata.ca_certificate_file)
            if not ca_file.is_absolute():
                ca_file = context.working_dir / ca_file
            field = "spec.metadata.caCertificateFile"
            if not ca_file.is_file():
                raise ComponentError(
                    f"invalid value '{metadata.ca_certificate_file}': expected a PEM file of CA "
                    f"certificates, and {ca_file} is not a file",
                    file=context.file,
                    component=context.name,
                    field=field,
                )
            try:
                ssl.create_default_context(cafile=str(ca_file))
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ComponentError(
                    f"invalid value '{metadata.ca_certificate_file}': expected a PEM file of CA certificates "
                    f"({exc})",
                    file=context.file,
                    component=context.name,
                    field=field,
                ) from exc
        return cls(metadata, name=context.name, ca_file=ca_file)

    # -- life --------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the credential, the SDK client and the data-plane session (no call to Azure yet)."""
        if self._credential is None:
            self._credential = make_credential(self.metadata, self._ca_file)
        self._client = make_client(self.metadata, self._credential, self._ca_file, self._client_options)
        await self._data.open()

    async def close(self) -> None:
        """Close the SDK client, the session and the credential this component created."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        await self._data.close()
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None

    @property
    def client(self) -> LogicManagementClient:
        """The SDK client (after :meth:`open`)."""
        if self._client is None:
            raise EngineError(COMPONENT_TYPE, "call", "the component is not open", retryable=False)
        return self._client

    @asynccontextmanager
    async def _azure(self, operation: str) -> AsyncIterator[None]:
        """Turn every SDK, identity or transport error into Turnout's EngineError (none leaks)."""
        try:
            yield
        except (TurnoutError, StopAsyncIteration):
            raise
        except Exception as exc:
            raise engine_error(operation, exc) from exc

    # -- finding runs ------------------------------------------------------------------------

    async def _workflow_names(self, operation: str) -> list[str]:
        names: list[str] = []
        try:
            async with self._azure(operation):
                async for workflow in self.client.workflows.list_by_resource_group(self._group):
                    names.append(str(workflow.name))
        except EngineError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                raise EngineError(
                    COMPONENT_TYPE,
                    operation,
                    f"resource group '{self._group}' was not found in subscription "
                    f"'{self.metadata.subscription_id}' ({exc.reason}); check resourceGroup and "
                    "subscriptionId",
                    retryable=False,
                ) from exc.__cause__
            raise
        return names

    async def _newest_with_tracking_id(self, workflow: str, instance_id: str) -> WorkflowRun | None:
        pager = self.client.workflow_runs.list(
            self._group, workflow, top=1, filter=f"ClientTrackingId eq {odata_string(instance_id)}"
        )
        try:
            async for run in pager:
                return run
        except ResourceNotFoundError:  # the Logic App went away since it was listed
            return None
        return None

    async def _locate(self, instance_id: str, operation: str) -> RunRef | None:
        """The instance's run: remembered, or the newest run tracked with its id in the resource group."""
        known = self._runs.get(instance_id)
        if known is not None:
            return known
        names = await self._workflow_names(operation)
        limit = asyncio.Semaphore(PARALLEL)

        async def look(workflow: str) -> tuple[str, WorkflowRun | None]:
            async with limit, self._azure(operation):
                return workflow, await self._newest_with_tracking_id(workflow, instance_id)

        found = [(w, r) for w, r in await asyncio.gather(*(look(n) for n in names)) if r is not None]
        if not found:
            return None
        workflow, run = max(
            found, key=lambda pair: aware(pair[1].start_time) or datetime.min.replace(tzinfo=UTC)
        )
        ref = RunRef(workflow, str(run.name))
        self._runs.setdefault(instance_id, ref)
        return self._runs[instance_id]

    async def _require(self, instance_id: str, operation: str) -> RunRef:
        ref = await self._locate(instance_id, operation)
        if ref is None:
            raise InstanceNotFound(instance_id, self.name or None)
        return ref

    async def _run(self, instance_id: str, ref: RunRef, operation: str) -> WorkflowRun | None:
        try:
            async with self._azure(operation):
                return await self.client.workflow_runs.get(self._group, ref.workflow, ref.run)
        except EngineError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                # The Logic App (and its runs) was deleted: forget the instance.
                self._runs.pop(instance_id, None)
                return None
            raise

    async def _run_or_fail(self, instance_id: str, operation: str) -> tuple[RunRef, WorkflowRun]:
        ref = await self._require(instance_id, operation)
        run = await self._run(instance_id, ref, operation)
        if run is None:
            raise InstanceNotFound(instance_id, self.name or None)
        return ref, run

    async def _input(self, ref: RunRef, run: WorkflowRun, properties: dict[str, str]) -> Any:
        if ref in self._inputs:
            return self._inputs[ref]
        link = run.trigger.outputs_link if run.trigger is not None else None
        if link is None or not link.uri:
            return None
        answer = await self._data.request("GET", str(link.uri), "get")
        if answer.status != 200:
            properties["inputUnavailable"] = f"HTTP {answer.status} {answer.error()}"
            return None
        try:
            content = answer.json()
        except ValueError:
            properties["inputUnavailable"] = "the trigger outputs are not JSON"
            return None
        value = content.get("body") if isinstance(content, dict) else None
        self._inputs[ref] = value
        return value

    async def _state(self, instance_id: str, workflow: str, run: WorkflowRun) -> WorkflowState:
        status = runtime_status(run.status)
        if status is None:
            raise EngineError(
                COMPONENT_TYPE,
                "get",
                f"run '{run.name}' of Logic App '{workflow}' has status '{run.status}', which is not one of "
                f"the statuses Turnout knows ({', '.join(STATUS_TABLE)}); update turnout-logicapps",
                retryable=False,
            )
        now = datetime.now(UTC)
        created = aware(run.start_time) or aware(run.trigger.start_time if run.trigger else None) or now
        updated = max(created, aware(run.end_time) or created)
        properties = {
            "logicApp": workflow,
            "runId": str(run.name),
            "status": str(run.status),
            "code": str(run.code or ""),
            "triggerName": str(run.trigger.name if run.trigger and run.trigger.name else ""),
            "workflowVersion": str(run.workflow.name if run.workflow and run.workflow.name else ""),
            "clientTrackingId": tracking_id(run),
            "resourceId": str(run.id or ""),
        }
        ref = RunRef(workflow, str(run.name))
        async with self._azure("get"):
            value = await self._input(ref, run, properties)
        return WorkflowState(
            instance_id=instance_id,
            workflow_name=workflow,
            runtime_status=status,
            created_at=created,
            last_updated_at=updated,
            input=value,
            output=run_output(run) if status is not RuntimeStatus.FAILED else None,
            failure=run_failure(run) if status is RuntimeStatus.FAILED else None,
            properties={k: v for k, v in properties.items() if v},
        )
