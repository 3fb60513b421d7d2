"""Remote work for the engine: turns of workflows and activities that this process does not host.

The engine calls :meth:`RemoteDispatch.prepare` from its turn loop (pure,
like a local turn) and awaits :meth:`RemoteDispatch.run` in a task of its
own, then commits the result through the store exactly as a local turn.
The messages a remote turn applies follow the local rules: results for an
ended execution are dropped, and while the instance is suspended only
suspend, resume and terminate apply. Pause, resume and terminate are
applied here without a worker (so they work while none is connected);
everything else goes to a worker as a Durable Task ``WorkflowRequest``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from google.protobuf import json_format

from turnout import FailureDetails, RuntimeStatus, WorkflowNotRegistered, Workflows

from .._events import CONTROL, EXECUTION_SCOPED, Event, Kind
from .._store import ActivityTask, InstanceRow, TurnCommit, TurnWork
from ._hub import NoWorkers, WorkerHub
from ._protos import pb
from ._translate import (
    RemoteOutcome,
    apply_actions,
    custom_status_in,
    failure_from_pb,
    history_of,
    text,
    text_of,
    timestamp,
)

_LOCAL_KINDS = frozenset({Kind.SUSPENDED, Kind.RESUMED, Kind.TERMINATE_REQUESTED, Kind.CANCEL_REQUESTED})
_STOPS = {Kind.TERMINATE_REQUESTED: RuntimeStatus.TERMINATED, Kind.CANCEL_REQUESTED: RuntimeStatus.CANCELED}


@dataclass
class RemoteTurn:
    """One turn of a remote instance, as prepared from the claimed work."""

    work: TurnWork
    row: InstanceRow
    now: float
    events: list[Event]
    """The messages it applies, in order."""
    consumed: list[int]
    """Their inbox ids, and those of stale messages it drops."""
    suspended: bool
    history: list[Event] = field(default_factory=list)

    @property
    def needs_worker(self) -> bool:
        """Whether a worker must run it (see :meth:`RemoteDispatch.run`)."""
        return bool(self.events) and not (
            any(e.kind in _STOPS for e in self.events) or all(e.kind in _LOCAL_KINDS for e in self.events)
        )

    @property
    def instance_id(self) -> str:
        """The instance the turn is for."""
        return self.row.instance_id


class RemoteDispatch:
    """Runs, through connected workers, what the local :class:`Workflows` registry lacks."""

    def __init__(self, hub: WorkerHub, workflows: Workflows) -> None:
        self.hub = hub
        self.workflows = workflows

    def has_workers(self) -> bool:
        """Whether a worker is connected now."""
        return self.hub.worker_count > 0

    def serves_workflow(self, name: str) -> bool:
        """Whether instances of ``name`` go to remote workers (it is not registered here)."""
        return not self.workflows.has_workflow(name)

    def serves_activity(self, name: str) -> bool:
        """Whether ``name`` goes to remote workers (it is not registered here)."""
        try:
            self.workflows.get_activity(name)
        except WorkflowNotRegistered:
            return True
        return False

    # -- turns ---------------------------------------------------------------------------

    def prepare(self, work: TurnWork, now: float) -> RemoteTurn | None:
        """What the turn applies; None when every message stays buffered (a paused instance)."""
        row = work.instance
        assert row is not None
        consumed: list[int] = []
        waiting: list[tuple[int, Event]] = []
        for message_id, event in work.messages:
            if event.kind in EXECUTION_SCOPED and event.execution_id != row.execution_id:
                consumed.append(message_id)  # a result for an execution that has ended
            else:
                waiting.append((message_id, event))
        suspended = row.status is RuntimeStatus.SUSPENDED
        events: list[Event] = []
        progress = True
        while progress and waiting:
            progress = False
            for entry in list(waiting):
                message_id, event = entry
                if suspended and event.kind not in CONTROL:
                    continue
                waiting.remove(entry)
                consumed.append(message_id)
                events.append(event)
                progress = True
                if event.kind is Kind.SUSPENDED:
                    suspended = True
                elif event.kind is Kind.RESUMED:
                    suspended = False
                elif event.kind in _STOPS:
                    # Nothing applies after the end: later messages are dropped with it.
                    consumed.extend(i for i, _ in waiting)
                    waiting = []
                    break
        if not consumed:
            return None
        return RemoteTurn(work, row, now, events, consumed, suspended, work.history or [])

    async def run(self, turn: RemoteTurn) -> tuple[TurnCommit, RemoteOutcome | None] | None:
        """The turn's commit (without its outgoing tasks) and where it left the instance.

        The outcome is None when nothing was applied (only stale messages dropped);
        the whole answer is None when no worker took the turn.
        """
        row = turn.row
        commit = TurnCommit(
            instance_id=row.instance_id,
            expected_history_length=row.history_length,
            consumed=turn.consumed,
            new_events=[],
            status=row.status,
            last_updated_at=turn.now,
            output=row.output,
            failure=row.failure,
            custom_status=row.custom_status,
            workflow_name=row.workflow_name,
        )
        if not turn.events:
            commit.status_changed = False
            return commit, None
        started = Event(Kind.TURN_STARTED, turn.now)
        if not turn.needs_worker:
            stop = next((e for e in turn.events if e.kind in _STOPS), None)
            return self._apply_locally(turn, commit, started, stop)
        request = pb.WorkflowRequest(
            instanceId=row.instance_id,
            executionId=text(row.execution_id),
            pastEvents=history_of(turn.history, row),
            newEvents=[
                pb.HistoryEvent(
                    eventId=-1, timestamp=timestamp(turn.now), workflowStarted=pb.WorkflowStartedEvent()
                ),
                *history_of(turn.events, row),
            ],
        )
        try:
            response = await self.hub.submit(pb.WorkItem(workflowRequest=request))
        except NoWorkers:
            return None
        if response.HasField("version") and (response.version.name or response.version.patches):
            started.details = {"dt": {"version": json_format.MessageToDict(response.version)}}
        applied = apply_actions(response.actions, row, turn.now)
        outcome = applied.finished or RemoteOutcome(
            workflow_name=row.workflow_name,
            status=RuntimeStatus.SUSPENDED if turn.suspended else RuntimeStatus.RUNNING,
        )
        outcome.custom_status = custom_status_in(text_of(response, "customStatus"))
        commit.new_events = [started, *turn.events, *applied.produced]
        commit.messages.extend(applied.messages)
        commit.status = outcome.status
        commit.output = outcome.output
        commit.failure = outcome.failure.model_dump() if outcome.failure else None
        commit.custom_status = outcome.custom_status
        commit.last_updated_at = time.time()
        return commit, outcome

    def _apply_locally(
        self, turn: RemoteTurn, commit: TurnCommit, started: Event, stop: Event | None
    ) -> tuple[TurnCommit, RemoteOutcome]:
        row = turn.row
        commit.new_events = [started, *turn.events]
        if stop is not None:
            status = _STOPS[stop.kind]
            details = {"status": status.value, "reason": stop.detail("reason")}
            commit.new_events.append(Event(Kind.WORKFLOW_COMPLETED, turn.now, details=details))
            outcome = RemoteOutcome(workflow_name=row.workflow_name, status=status)
            commit.output = commit.failure = None
        else:
            begun = row.history_length > 0
            status = (
                RuntimeStatus.SUSPENDED
                if turn.suspended
                else (RuntimeStatus.RUNNING if begun else RuntimeStatus.PENDING)
            )
            outcome = RemoteOutcome(workflow_name=row.workflow_name, status=status, output=row.output)
        outcome.custom_status = row.custom_status
        commit.status = status
        return commit, outcome

    # -- activities ----------------------------------------------------------------------

    async def run_activity(self, task: ActivityTask) -> tuple[str | None, FailureDetails | None] | None:
        """Run the activity on a worker: its result (JSON text), or its failure; None if no worker took it."""
        request = pb.ActivityRequest(
            name=task.name,
            input=text(task.input),
            workflowInstance=pb.WorkflowInstance(
                instanceId=task.instance_id, executionId=text(task.execution_id)
            ),
            taskId=task.task_id,
            taskExecutionId=f"{task.execution_id}:{task.task_id}:{task.attempt}",
        )
        try:
            response = await self.hub.submit(pb.WorkItem(activityRequest=request))
        except NoWorkers:
            return None
        if response.HasField("failureDetails"):
            return None, failure_from_pb(response.failureDetails)
        return text_of(response, "result"), None
