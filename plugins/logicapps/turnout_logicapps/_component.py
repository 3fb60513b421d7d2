"""The ``workflow.azure.logicapps`` component: Turnout's management API over Azure Logic Apps runs.

The parts: :mod:`._core` (life, Azure calls, finding and reading runs),
:mod:`._listing` (``list``), :mod:`._events` (``raise_event``); here, the
features, ``start``, ``get``, ``terminate``, ``history`` and ``resubmit``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime
from typing import Any, ClassVar

from azure.core.exceptions import ResourceNotFoundError

from turnout import (
    EngineError,
    Feature,
    HistoryEvent,
    InstanceExists,
    InvalidArgument,
    InvalidState,
    StartRequest,
    WorkflowState,
)

from ._azure import COMPONENT_TYPE, error_code
from ._core import LOGIC_APP_NAME, LogicAppNotFound, RunRef, aware, tracking_id
from ._events import EventsMixin
from ._listing import ListingMixin
from ._status import runtime_status

log = logging.getLogger("turnout.logicapps")


class LogicAppsComponent(EventsMixin, ListingMixin):
    """Workflows that run as Azure Logic Apps (Consumption) runs, through the real Azure SDK.

    Args:
        metadata: The validated component metadata.
        name: The component's name (``metadata.name`` of the component file).
        credential: An async Azure credential to use instead of the one the
            metadata describes (the component then does not close it).
        ca_file: A PEM file of CAs to trust (``caCertificateFile``, resolved).
        client_options: Extra keyword arguments for the SDK client (for
            example ``retry_total=0``).
        event_timeout: Seconds ``raise_event`` waits for the webhook action.
    """

    features: ClassVar[frozenset[Feature]] = frozenset(
        {Feature.LIST, Feature.TERMINATE, Feature.RAISE_EVENT, Feature.HISTORY}
    )
    unsupported_reasons: ClassVar[dict[Feature, str]] = {
        Feature.PAUSE: "Logic Apps has no per-run pause or resume: disabling a Logic App only stops new runs "
        "of all its instances, and the runs in flight carry on",
        Feature.CANCEL: "Logic Apps has no cooperative cancel: a run can only be cancelled at once, with no "
        "workflow step running (use terminate)",
        Feature.PURGE: "Logic Apps has no API that deletes one run: run history stays for the Logic App's "
        "retention period",
        Feature.START_AT: "a Request trigger starts a run at once; Logic Apps cannot schedule one run (put a "
        "Delay until action first in the workflow instead)",
        Feature.REPLACE: "Logic Apps keeps every run, so an instance id stays bound to its run; rerun it "
        "with the component's resubmit()",
        Feature.DEFINITIONS: "Serverless Workflow definitions run as Turnout workflow code, which Logic Apps "
        "does not run; deploy a Logic App workflow definition instead",
    }
    component_type = COMPONENT_TYPE

    # -- start ---------------------------------------------------------------------------------

    async def start(self, request: StartRequest) -> str:
        """Post the input to the Logic App's request trigger, tagged with the instance id."""
        if request.start_at is not None:
            raise self.unsupported(Feature.START_AT)
        if request.replace:
            raise self.unsupported(Feature.REPLACE)
        workflow = request.workflow_name
        if not LOGIC_APP_NAME.match(workflow):
            raise InvalidArgument(
                "workflow name",
                workflow,
                "a Logic App resource name: 1-80 letters, digits, '-', '_', '.', '(' or ')'",
            )
        instance_id = request.instance_id or uuid.uuid4().hex
        if instance_id in self._starting or instance_id in self._runs:
            raise InstanceExists(instance_id, await self._status_of(instance_id), self.name or None)
        self._starting.add(instance_id)
        try:
            if request.instance_id is not None:
                existing = await self._locate(instance_id, "start")
                if existing is not None:
                    raise InstanceExists(instance_id, await self._status_of(instance_id), self.name or None)
            url = await self._callback_url(workflow)
            run_name = await self._post_trigger(workflow, url, instance_id, request.input)
        finally:
            self._starting.discard(instance_id)
        ref = RunRef(workflow, run_name)
        self._runs[instance_id] = ref
        self._inputs[ref] = request.input
        return instance_id

    async def _status_of(self, instance_id: str) -> str | None:
        ref = self._runs.get(instance_id)
        if ref is None:
            return None
        try:
            run = await self._run(instance_id, ref, "start")
        except EngineError:
            return None
        status = runtime_status(run.status) if run is not None else None
        return status.value if status is not None else None

    async def _callback_url(self, workflow: str) -> str:
        trigger = self.metadata.trigger_name
        try:
            async with self._azure("start"):
                answer = await self.client.workflow_triggers.list_callback_url(self._group, workflow, trigger)
        except EngineError as exc:
            if not isinstance(exc.__cause__, ResourceNotFoundError):
                raise
            if "trigger" in error_code(exc.__cause__).lower():
                raise EngineError(
                    COMPONENT_TYPE,
                    "start",
                    f"Logic App '{workflow}' has no trigger '{trigger}' (triggerName in the component "
                    "metadata): expected the name of its Request trigger ('manual' in the designer)",
                    retryable=False,
                ) from exc.__cause__
            raise LogicAppNotFound(
                workflow, self._group, await self._workflow_names("start")
            ) from exc.__cause__
        if not answer.value:
            raise EngineError(
                COMPONENT_TYPE,
                "start",
                f"trigger '{trigger}' of Logic App '{workflow}' has no callback URL: expected a Request "
                "trigger",
                retryable=False,
            )
        return str(answer.value)

    async def _post_trigger(self, workflow: str, url: str, instance_id: str, data: Any) -> str:
        answer = await self._data.request(
            "POST",
            url,
            "start",
            body=data,
            has_body=data is not None,
            headers={"x-ms-client-tracking-id": instance_id},
        )
        run_name = answer.headers.get("x-ms-workflow-run-id")
        if run_name:  # the run started, whatever its Response action answered
            return run_name
        status = answer.status
        hint = ""
        if status == 409:
            hint = " (is the Logic App disabled? enable it to start runs)"
        elif status in (401, 403):
            hint = " (the trigger's access keys may have been regenerated; try again)"
        raise EngineError(
            COMPONENT_TYPE,
            "start",
            f"Logic App '{workflow}' refused the trigger request: HTTP {status} {answer.error()}{hint}",
            retryable=status in (401, 403, 408, 429) or status >= 500,
        )

    # -- get and list ----------------------------------------------------------------------------

    async def get(self, instance_id: str) -> WorkflowState | None:
        """The run's state; None when no run carries the instance id."""
        ref = await self._locate(instance_id, "get")
        if ref is None:
            return None
        run = await self._run(instance_id, ref, "get")
        if run is None:
            return None
        return await self._state(instance_id, ref.workflow, run)

    # -- terminate, events, history, resubmit ---------------------------------------------------

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """Cancel the run (Logic Apps records no reason; it is logged here)."""
        ref, run = await self._run_or_fail(instance_id, "terminate")
        status = runtime_status(run.status)
        if status is not None and status.is_terminal:
            raise InvalidState(
                instance_id, status.value, "terminate", "the Logic Apps run has already finished"
            )
        log.info(
            "terminating %s (run %s of %s): %s", instance_id, ref.run, ref.workflow, reason or "no reason"
        )
        try:
            async with self._azure("terminate"):
                await self.client.workflow_runs.cancel(self._group, ref.workflow, ref.run)
        except EngineError as exc:
            status = runtime_status((await self._run(instance_id, ref, "terminate") or run).status)
            if status is not None and status.is_terminal:  # it finished between the two calls
                raise InvalidState(
                    instance_id, status.value, "terminate", "the Logic Apps run has already finished"
                ) from exc.__cause__
            raise

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        """The run's trigger and action steps, oldest first, from ``workflow_run_actions.list``."""
        ref, run = await self._run_or_fail(instance_id, "history")
        actions = []
        async with self._azure("history"):
            async for action in self.client.workflow_run_actions.list(self._group, ref.workflow, ref.run):
                actions.append(action)
        events: list[tuple[datetime, int, str, str | None, dict[str, Any]]] = []
        started = aware(run.start_time)
        if started is not None:
            trigger = run.trigger.name if run.trigger is not None else None
            events.append((started, 0, "RunStarted", trigger, {"runId": str(run.name)}))
        for action in actions:
            if aware(action.start_time) is not None:
                events.append((aware(action.start_time), 1, "ActionStarted", action.name, {}))  # type: ignore[arg-type]
            if aware(action.end_time) is not None:
                detail: dict[str, Any] = {"status": action.status, "code": action.code}
                if action.error:
                    detail["error"] = action.error
                events.append((aware(action.end_time), 2, "ActionFinished", action.name, detail))  # type: ignore[arg-type]
        ended = aware(run.end_time)
        if ended is not None:
            events.append((ended, 3, "RunFinished", None, {"status": run.status, "code": run.code}))
        events.sort(key=lambda e: (e[0], e[1]))
        return [
            HistoryEvent(sequence=n, timestamp=when, kind=kind, name=name, data=data)
            for n, (when, _order, kind, name, data) in enumerate(events)
        ]

    async def resubmit(self, instance_id: str) -> str:
        """Rerun the instance's Logic App with the same trigger outputs; returns the new run's instance id.

        Logic Apps' ``resubmit`` answers 202 without the new run's id, so the
        new run is the newest trigger history that appears after the call
        (preferring one tracked with this instance id). The new run keeps the
        client tracking id Logic Apps gives it: when that is this instance id,
        the instance now shows the new run.
        """
        ref, run = await self._run_or_fail(instance_id, "resubmit")
        trigger = (
            run.trigger.name if run.trigger is not None and run.trigger.name else self.metadata.trigger_name
        )
        histories = self.client.workflow_trigger_histories
        async with self._azure("resubmit"):
            before = {str(h.name) async for h in histories.list(self._group, ref.workflow, trigger, top=50)}
            await histories.resubmit(self._group, ref.workflow, trigger, ref.run)
        deadline = time.monotonic() + self._event_timeout
        delay = 0.02
        while True:
            async with self._azure("resubmit"):
                new = [
                    h
                    async for h in histories.list(self._group, ref.workflow, trigger, top=50)
                    if str(h.name) not in before
                ]
            if new:
                mine = [
                    h
                    for h in new
                    if h.correlation is not None and h.correlation.client_tracking_id == instance_id
                ]
                chosen = (mine or new)[-1]  # newest first: the last is the first to appear
                run_name = (
                    str(chosen.run.name) if chosen.run is not None and chosen.run.name else str(chosen.name)
                )
                rerun = await self._run(instance_id, RunRef(ref.workflow, run_name), "resubmit")
                if rerun is not None:
                    new_id = tracking_id(rerun)
                    self._runs[new_id] = RunRef(ref.workflow, run_name)
                    return new_id
            if time.monotonic() >= deadline:
                raise EngineError(
                    COMPONENT_TYPE,
                    "resubmit",
                    f"Logic Apps accepted the resubmission of run '{ref.run}' but no new run appeared in the "
                    f"trigger history within {self._event_timeout:g}s",
                    retryable=False,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
