"""``list``, newest first, over a visibility store that cannot sort.

Turnout lists instances by creation time, newest first, one page at a time.
Temporal's SQL visibility (the dev server, PostgreSQL, MySQL, SQLite) has no
``ORDER BY``: it returns running executions first, then closed ones by close
time. So a page is built from a window of start times: starting below the
previous page's last item (the cursor), the window reaches back until it
holds more than a page (counted with ``CountWorkflowExecutions``, which is
cheap) or nothing older remains; its executions are fetched and sorted here.
Each page costs a few counts and one window, whatever the namespace's size,
unless thousands of executions started within the same instant.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import CountWorkflowExecutionsRequest, ListWorkflowExecutionsRequest
from temporalio.service import WorkflowService

from turnout import InvalidArgument, ListQuery

from ._mapping import visibility_clause

RPC_TIMEOUT = timedelta(seconds=10)
FIRST_WINDOW = timedelta(minutes=1)
WIDEN = 8
"""How much wider each next window is, so that a year back takes about nine steps."""
FETCH_PAGE = 1000


def quote(value: str) -> str:
    """A string literal of Temporal's visibility query language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def iso(value: datetime) -> str:
    """A time as the visibility query language reads it (UTC, ISO 8601)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page ended: the last item's start time (to the nanosecond) and ids, as a sort key."""

    seconds: int
    nanos: int
    workflow_id: str
    run_id: str

    @classmethod
    def of(cls, info: WorkflowExecutionInfo) -> Cursor:
        """The sort key of an execution."""
        return cls(
            info.start_time.seconds, info.start_time.nanos, info.execution.workflow_id, info.execution.run_id
        )

    @property
    def time(self) -> datetime:
        """The start time, to the microsecond."""
        return datetime.fromtimestamp(self.seconds, UTC) + timedelta(microseconds=self.nanos // 1000)

    def token(self) -> str:
        """The page token handed to the caller."""
        text = json.dumps([self.seconds, self.nanos, self.workflow_id, self.run_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def parse(cls, token: str) -> Cursor:
        """The cursor in a page token; InvalidArgument for anything else."""
        try:
            seconds, nanos, workflow_id, run_id = json.loads(base64.urlsafe_b64decode(token.encode()))
            return cls(int(seconds), int(nanos), str(workflow_id), str(run_id))
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            raise InvalidArgument("page_token", token, "a token from a previous list page") from None


def filter_clauses(query: ListQuery) -> list[str]:
    """The query's filters in the visibility query language."""
    clauses = []
    if query.workflow_name:
        clauses.append(f"WorkflowType = {quote(query.workflow_name)}")
    if query.status:
        now = iso(datetime.now(UTC))
        alternatives = [visibility_clause(s, now) for s in dict.fromkeys(query.status)]
        clauses.append("(" + " OR ".join(alternatives) + ")")
    if query.created_from is not None:
        clauses.append(f"StartTime >= {quote(iso(query.created_from))}")
    if query.created_to is not None:
        clauses.append(f"StartTime <= {quote(iso(query.created_to))}")
    return clauses


class Lister:
    """Pages of executions, newest first, for one namespace."""

    def __init__(self, service: WorkflowService, namespace: str) -> None:
        self._service = service
        self._namespace = namespace

    async def page(
        self, clauses: Sequence[str], limit: int, cursor: Cursor | None
    ) -> tuple[list[WorkflowExecutionInfo], Cursor | None]:
        """Up to ``limit`` executions older than ``cursor`` (all, without one), and the next cursor."""
        bounded = list(clauses)
        reference = datetime.now(UTC)
        if cursor is not None:
            reference = cursor.time
            # A millisecond of margin: the store may keep more precision than the bound is written with.
            bounded.append(f"StartTime <= {quote(iso(reference + timedelta(milliseconds=1)))}")
        span = FIRST_WINDOW
        while True:
            lower = reference - span
            window = [*bounded, f"StartTime >= {quote(iso(lower))}"]
            older = await self._count([*bounded, f"StartTime < {quote(iso(lower))}"]) > 0
            if older and await self._count(window) <= limit:
                span *= WIDEN  # too few in this window: reach further back before fetching
                continue
            found = [info for info in await self._fetch(window) if cursor is None or Cursor.of(info) < cursor]
            if len(found) > limit or not older:
                break
            span *= WIDEN  # the window's newest items were on earlier pages
        found.sort(key=Cursor.of, reverse=True)
        page = found[:limit]
        more = len(found) > limit or older
        return page, (Cursor.of(page[-1]) if more and page else None)

    async def _count(self, clauses: Sequence[str]) -> int:
        request = CountWorkflowExecutionsRequest(namespace=self._namespace, query=" AND ".join(clauses))
        response = await self._service.count_workflow_executions(request, retry=True, timeout=RPC_TIMEOUT)
        return int(response.count)

    async def _fetch(self, clauses: Sequence[str]) -> list[WorkflowExecutionInfo]:
        request = ListWorkflowExecutionsRequest(
            namespace=self._namespace, page_size=FETCH_PAGE, query=" AND ".join(clauses)
        )
        found: list[WorkflowExecutionInfo] = []
        while True:
            response = await self._service.list_workflow_executions(request, retry=True, timeout=RPC_TIMEOUT)
            found.extend(response.executions)
            if not response.next_page_token:
                return found
            request.next_page_token = response.next_page_token
