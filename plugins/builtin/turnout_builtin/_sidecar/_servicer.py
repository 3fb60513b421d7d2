"""``TaskHubSidecarService``: the Durable Task sidecar protocol (Dapr's lineage) over the built-in engine.

Workers (``dapr.ext.workflow.WorkflowRuntime``) connect with ``Hello`` and
``GetWorkItems`` and answer with ``CompleteOrchestratorTask`` (or its alias
``CompleteWorkflowTask``) and ``CompleteActivityTask``; clients
(``DaprWorkflowClient``) start, query, wait for and manage instances. RPCs
not implemented here answer UNIMPLEMENTED (the generated base class does).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from turnout import (
    TERMINAL_STATUSES,
    AsyncWorkflowClient,
    InstanceExists,
    InstanceNotFound,
    InvalidState,
    ListQuery,
    RuntimeStatus,
    TurnoutError,
    Unsupported,
    WaitTimeout,
)

from .._store import InstanceRow
from ._hub import WorkerHub
from ._protos import pb, service
from ._translate import STATUS_FROM_PB, history_of, seconds_of, state_to_pb, text_of

log = logging.getLogger("turnout.builtin.sidecar")

STARTED = frozenset(set(RuntimeStatus) - {RuntimeStatus.PENDING})


def status_code(exc: TurnoutError) -> grpc.StatusCode:
    """The gRPC status for one of Turnout's errors (Dapr's table: not found, invalid argument, internal)."""
    if isinstance(exc, InstanceNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, InstanceExists):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, InvalidState):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, Unsupported):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, WaitTimeout):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if exc.http_status == 400:
        return grpc.StatusCode.INVALID_ARGUMENT
    if exc.http_status == 404:
        return grpc.StatusCode.NOT_FOUND
    if getattr(exc, "retryable", False):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def _payload(message: Any, name: str) -> Any:
    """A JSON payload field as a value (a text that is not JSON stays text)."""
    raw = text_of(message, name)
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _reason(message: Any) -> str | None:
    reason = _payload(message, "reason")
    return None if reason is None else str(reason)


Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _answering(handler: Handler) -> Handler:
    """Turnout's errors, raised by a client RPC, answered with their gRPC status."""

    @functools.wraps(handler)
    async def answer(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except TurnoutError as exc:
            await context.abort(status_code(exc), exc.message)

    return answer


class SidecarServicer(service.TaskHubSidecarServiceServicer):  # type: ignore[misc]
    """The sidecar service, for the built-in component ``component()`` returns."""

    def __init__(self, hub: WorkerHub, component: Callable[[], Any]) -> None:
        self.hub = hub
        self._component = component

    @property
    def component(self) -> Any:
        """The built-in workflow component the service manages."""
        return self._component()

    @property
    def client(self) -> AsyncWorkflowClient:
        """The management API over it: the same checks (instance ids, names) and spans as everywhere."""
        return AsyncWorkflowClient(self.component)

    async def _row(self, instance_id: str) -> InstanceRow | None:
        row: InstanceRow | None = await self.component.store.get_instance(instance_id)
        return row

    # -- workers -------------------------------------------------------------------------

    async def Hello(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return empty_pb2.Empty()

    async def GetWorkItems(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:  # noqa: N802
        worker = self.hub.connect()
        try:
            while (item := await self.hub.next(worker)) is not None:
                yield item
        finally:
            self.hub.disconnect(worker)

    async def aclose(self) -> None:
        """The server is stopping: end the work-item streams (their workers reconnect elsewhere)."""
        self.hub.close()

    async def CompleteOrchestratorTask(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        if not self.hub.complete(request.completionToken, request):
            log.info("ignored a stale workflow result for '%s'", request.instanceId)
        return pb.CompleteTaskResponse()

    CompleteWorkflowTask = CompleteOrchestratorTask

    async def CompleteActivityTask(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        if not self.hub.complete(request.completionToken, request):
            log.info("ignored a stale activity result for '%s' task %d", request.instanceId, request.taskId)
        return pb.CompleteTaskResponse()

    # -- clients -------------------------------------------------------------------------

    @_answering
    async def StartInstance(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        start_at = None
        if request.HasField("scheduledStartTimestamp"):
            start_at = datetime.fromtimestamp(seconds_of(request.scheduledStartTimestamp), UTC)
        started = await self.client.start(
            request.name,
            _payload(request, "input"),
            instance_id=request.instanceId or None,
            start_at=start_at,
        )
        return pb.CreateInstanceResponse(instanceId=started)

    @_answering
    async def GetInstance(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        row = await self._row(request.instanceId)
        if row is None:
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(
            exists=True, workflowState=state_to_pb(row, with_payloads=request.getInputsAndOutputs)
        )

    async def _wait(self, request: Any, context: grpc.aio.ServicerContext, until: frozenset[Any]) -> Any:
        remaining = context.time_remaining()
        try:
            await self.component.wait(request.instanceId, until=until, timeout=remaining)
        except InstanceNotFound:
            return pb.GetInstanceResponse(exists=False)
        except WaitTimeout as exc:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, exc.message)
        return await self.GetInstance(request, context)

    @_answering
    async def WaitForInstanceStart(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._wait(request, context, STARTED)

    @_answering
    async def WaitForInstanceCompletion(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._wait(request, context, TERMINAL_STATUSES)

    @_answering
    async def RaiseEvent(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        await self.client.raise_event(request.instanceId, request.name, _payload(request, "input"))
        return pb.RaiseEventResponse()

    @_answering
    async def TerminateInstance(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        output = _payload(request, "output")
        reason = None if output is None else str(output)
        await self.client.terminate(request.instanceId, reason)
        return pb.TerminateResponse()

    @_answering
    async def SuspendInstance(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        await self.client.pause(request.instanceId, _reason(request))
        return pb.SuspendResponse()

    @_answering
    async def ResumeInstance(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        await self.client.resume(request.instanceId, _reason(request))
        return pb.ResumeResponse()

    @_answering
    async def PurgeInstances(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        if request.HasField("purgeInstanceFilter"):
            ids = await self._filtered(request.purgeInstanceFilter)
        else:
            ids = [request.instanceId]
        deleted = 0
        for instance_id in ids:
            purged = await self._purge(instance_id)
            deleted += len(purged)
        return pb.PurgeInstancesResponse(
            deletedInstanceCount=deleted, isComplete=wrappers_pb2.BoolValue(value=True)
        )

    async def _purge(self, instance_id: str) -> list[str]:
        component = self.component
        purged: list[str] = await component.store.purge(instance_id)
        component.engine.forget(purged)
        return purged

    async def _filtered(self, where: Any) -> list[str]:
        statuses = [STATUS_FROM_PB[s] for s in where.runtimeStatus if s in STATUS_FROM_PB] or list(
            TERMINAL_STATUSES
        )
        low = seconds_of(where.createdTimeFrom) if where.HasField("createdTimeFrom") else None
        high = seconds_of(where.createdTimeTo) if where.HasField("createdTimeTo") else None
        found: list[str] = []
        token: str | None = None
        while True:
            rows, token = await self.component.store.list_instances(
                ListQuery(status=statuses, limit=500, page_token=token)
            )
            for row in rows:
                inside = (low is None or row.created_at >= low) and (high is None or row.created_at <= high)
                if inside and row.parent_instance_id is None:
                    found.append(row.instance_id)
            if token is None:
                return found

    @_answering
    async def ListInstanceIDs(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        query = ListQuery(limit=request.pageSize or 100, page_token=request.continuationToken or None)
        rows, token = await self.component.store.list_instances(query)
        return pb.ListInstanceIDsResponse(
            instanceIds=[r.instance_id for r in rows], continuationToken=token or None
        )

    @_answering
    async def GetInstanceHistory(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        row = await self._row(request.instanceId)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no workflow instance '{request.instanceId}'")
        events = await self.component.store.load_history(request.instanceId)
        return pb.GetInstanceHistoryResponse(events=history_of(events, row))
