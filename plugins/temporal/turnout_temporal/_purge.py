"""purge: Temporal's DeleteWorkflowExecution for every run of an instance and of its children.

The server accepts a deletion at once and carries it out later: with its
default settings, after the next acknowledgement of its transfer and
visibility queues (up to about a minute). ``Purger.until_gone`` waits for
both describe and visibility to stop knowing the ids.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DeleteWorkflowExecutionRequest,
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.service import RPCError, RPCStatusCode, WorkflowService

from turnout import EngineError

from ._errors import COMPONENT_TYPE
from ._listing import quote

RPC_TIMEOUT = timedelta(seconds=10)


class Purger:
    """Deletes instances with their runs and children, in one namespace."""

    def __init__(self, service: WorkflowService, namespace: str) -> None:
        self._service = service
        self._namespace = namespace

    async def descendants(self, instance_id: str) -> list[str]:
        """Child workflow ids started by every run of the instance, and theirs, depth first."""
        found: list[str] = []
        for run_id in await self.run_ids(instance_id):
            request = GetWorkflowExecutionHistoryRequest(
                namespace=self._namespace, execution=WorkflowExecution(workflow_id=instance_id, run_id=run_id)
            )
            while True:
                try:
                    response = await self._service.get_workflow_execution_history(
                        request, retry=True, timeout=RPC_TIMEOUT
                    )
                except RPCError as exc:
                    if exc.status is RPCStatusCode.NOT_FOUND:
                        break
                    raise
                for event in response.history.events:
                    if event.HasField("child_workflow_execution_started_event_attributes"):
                        child = event.child_workflow_execution_started_event_attributes.workflow_execution
                        if child.workflow_id not in found:
                            found.append(child.workflow_id)
                            found.extend(
                                c for c in await self.descendants(child.workflow_id) if c not in found
                            )
                if not response.next_page_token:
                    break
                request.next_page_token = response.next_page_token
        return found

    async def run_ids(self, instance_id: str) -> list[str]:
        """Every run of a workflow id that visibility knows (continue-as-new and replaced runs too)."""
        runs: list[str] = []
        request = ListWorkflowExecutionsRequest(
            namespace=self._namespace, page_size=1000, query=f"WorkflowId = {quote(instance_id)}"
        )
        while True:
            response = await self._service.list_workflow_executions(request, retry=True, timeout=RPC_TIMEOUT)
            runs.extend(info.execution.run_id for info in response.executions)
            if not response.next_page_token:
                break
            request.next_page_token = response.next_page_token
        current = await self._current_run(instance_id)
        if current is not None and current not in runs:
            runs.append(current)  # visibility may lag behind the newest run
        return runs

    async def delete_runs(self, instance_id: str) -> None:
        """Ask the server to delete every run of the id (it does so asynchronously)."""
        for run_id in await self.run_ids(instance_id):
            request = DeleteWorkflowExecutionRequest(
                namespace=self._namespace,
                workflow_execution=WorkflowExecution(workflow_id=instance_id, run_id=run_id),
            )
            try:
                await self._service.delete_workflow_execution(request, timeout=RPC_TIMEOUT)
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:  # already gone
                    raise

    async def until_gone(self, instance_ids: list[str], timeout: float) -> None:
        """Wait until neither describe nor visibility knows the ids; EngineError after ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        pending = list(instance_ids)
        while pending:
            still = []
            for member in pending:
                if await self._current_run(member) is not None or await self._visible(member):
                    still.append(member)
            pending = still
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise EngineError(
                    COMPONENT_TYPE,
                    "purge",
                    f"Temporal accepted the deletion of {', '.join(pending)} but had not finished it "
                    f"within purgeTimeout ({timeout:g}s); it deletes asynchronously, so get will return "
                    "None once it has (raise purgeTimeout, or set it to 0 not to wait)",
                    retryable=True,
                )
            await asyncio.sleep(delay)  # polling a condition, bounded by the deadline above
            delay = min(delay * 2, 0.5)

    async def _visible(self, instance_id: str) -> bool:
        request = CountWorkflowExecutionsRequest(
            namespace=self._namespace, query=f"WorkflowId = {quote(instance_id)}"
        )
        response = await self._service.count_workflow_executions(request, retry=True, timeout=RPC_TIMEOUT)
        return response.count > 0

    async def _current_run(self, instance_id: str) -> str | None:
        request = DescribeWorkflowExecutionRequest(
            namespace=self._namespace, execution=WorkflowExecution(workflow_id=instance_id)
        )
        try:
            response = await self._service.describe_workflow_execution(
                request, retry=True, timeout=RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return str(response.workflow_execution_info.execution.run_id)
