"""``list`` of the Logic Apps component: runs of one or every Logic App, merged newest first, paged.

Each Logic App lists its runs newest first; the component merges those lists.
A page token remembers the start time of the page's last run and the runs
already given at that very time, so pages stay right while new runs arrive.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.logic.models import WorkflowRun

from turnout import (
    EngineError,
    InvalidArgument,
    ListQuery,
    WorkflowPage,
    WorkflowState,
)

from ._core import PARALLEL, LogicAppsBase, RunRef, aware, odata_string, odata_time, tracking_id
from ._status import logic_statuses, runtime_status

log = logging.getLogger("turnout.logicapps")


class ListingMixin(LogicAppsBase):
    """``list`` and its page tokens."""

    async def list(self, query: ListQuery) -> WorkflowPage:
        """Runs of one Logic App (``workflow_name``) or of the whole resource group, newest first."""
        before, seen = self._decode_token(query)
        names = [query.workflow_name] if query.workflow_name else await self._workflow_names("list")
        wanted = set(query.status) if query.status else None
        statuses = logic_statuses(wanted) if wanted is not None else None
        if statuses == []:
            return WorkflowPage(items=[])
        upper = query.created_to
        if before is not None:
            upper = min(upper, before) if upper is not None else before
        clauses = []
        if statuses is not None and len(statuses) == 1:
            clauses.append(f"status eq {odata_string(statuses[0])}")
        if query.created_from is not None:
            clauses.append(f"startTime ge {odata_time(query.created_from)}")
        if upper is not None:
            clauses.append(f"startTime le {odata_time(upper, inclusive_microsecond=True)}")
        run_filter = " and ".join(clauses) or None

        def keep(run: WorkflowRun, started: datetime) -> bool:
            if wanted is not None and runtime_status(run.status) not in wanted:
                return False
            if query.created_from is not None and started < query.created_from:
                return False
            if upper is not None and started > upper:
                return False
            return not (before is not None and started == before and str(run.name) in seen)

        picked = await self._merge(names, run_filter, keep, query.limit + 1)
        more = len(picked) > query.limit
        picked = picked[: query.limit]
        limit = asyncio.Semaphore(PARALLEL)

        async def state(workflow: str, run: WorkflowRun) -> WorkflowState:
            async with limit:
                instance_id = tracking_id(run)
                self._runs.setdefault(instance_id, RunRef(workflow, str(run.name)))
                return await self._state(instance_id, workflow, run)

        items = list(await asyncio.gather(*(state(w, r) for _s, w, r in picked)))
        token = None
        if more and picked:
            last = picked[-1][0]
            boundary = {str(r.name) for s, _w, r in picked if s == last}
            if before is not None and last == before:
                boundary |= seen
            token = self._encode_token(query, last, boundary)
        return WorkflowPage(items=items, next_page_token=token)

    async def _merge(
        self,
        names: list[str],
        run_filter: str | None,
        keep: Callable[[WorkflowRun, datetime], bool],
        count: int,
    ) -> list[tuple[datetime, str, WorkflowRun]]:
        """The ``count`` newest runs kept by ``keep``, merged across Logic Apps (each lists newest first)."""
        iterators = {
            name: self.client.workflow_runs.list(self._group, name, filter=run_filter).__aiter__()
            for name in names
        }
        heads: dict[str, tuple[datetime, WorkflowRun]] = {}

        async def advance(name: str) -> None:
            while True:
                try:
                    async with self._azure("list"):
                        run = await iterators[name].__anext__()
                except StopAsyncIteration:
                    heads.pop(name, None)
                    return
                except EngineError as exc:
                    if isinstance(exc.__cause__, ResourceNotFoundError):  # no such Logic App: no runs
                        heads.pop(name, None)
                        return
                    raise
                started = aware(run.start_time) or datetime.min.replace(tzinfo=UTC)
                if keep(run, started):
                    heads[name] = (started, run)
                    return

        await asyncio.gather(*(advance(name) for name in names))
        picked: list[tuple[datetime, str, WorkflowRun]] = []
        while heads and len(picked) < count:
            name = max(heads, key=lambda n: (heads[n][0], n))
            started, run = heads[name]
            picked.append((started, name, run))
            await advance(name)
        return picked

    def _fingerprint(self, query: ListQuery) -> str:
        shape = [
            sorted(s.value for s in query.status or []),
            query.workflow_name,
            str(query.created_from),
            str(query.created_to),
        ]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:12]

    def _encode_token(self, query: ListQuery, before: datetime, seen: set[str]) -> str:
        data = {"b": before.isoformat(), "s": sorted(seen), "q": self._fingerprint(query)}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    def _decode_token(self, query: ListQuery) -> tuple[datetime | None, set[str]]:
        token = query.page_token
        if not token:
            return None, set()
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            before = aware(datetime.fromisoformat(data["b"]))
            seen = {str(s) for s in data["s"]}
            fingerprint = data["q"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise InvalidArgument(
                "page_token", token, "the next_page_token of a previous list call"
            ) from None
        if fingerprint != self._fingerprint(query):
            raise InvalidArgument(
                "page_token", token, "a next_page_token from a list call with the same filters as this one"
            )
        return before, seen
