"""``list`` on Step Functions: each state machine's ListExecutions, merged newest first and paged.

Step Functions lists executions per state machine, newest first, with an
opaque ``nextToken``. The page token Turnout hands out records, for each
state machine not yet exhausted, the ``nextToken`` of the AWS page being
read and how far into it the merge got, so the next page resumes exactly
there (the AWS page size is kept in the token too). Filters Step Functions
cannot apply (several statuses, creation times) are applied while reading.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from turnout import InvalidArgument, ListQuery, TurnoutError, WorkflowPage, WorkflowState

from ._aws import AwsCalls, error_message
from ._mapping import utc

ToState = Callable[[str, Mapping[str, Any]], WorkflowState]
"""(the stream's state machine ARN, a ListExecutions item) -> the item as a state."""


class _Gone(TurnoutError):
    """Internal: the state machine of a stream was deleted (the stream is then empty)."""


class _Stream:
    """ListExecutions of one state machine, read item by item, resumable from (nextToken, offset)."""

    def __init__(self, lister: Lister, arn: str, token: str | None, offset: int) -> None:
        self.lister = lister
        self.arn = arn
        self.token = token
        self.offset = offset
        self.items: list[dict[str, Any]] | None = None
        self.next_token: str | None = None
        self.done = False

    async def head(self) -> dict[str, Any] | None:
        """The newest item not returned yet that matches the query, or None at the end."""
        query = self.lister.query
        while not self.done:
            if self.items is None:
                await self._fetch()
                continue
            while self.offset < len(self.items):
                item = self.items[self.offset]
                started = utc(item["startDate"])
                if query.created_from is not None and started < utc(query.created_from):
                    self.done = True  # newest first: everything after is older still
                    return None
                wanted = self.lister.wanted
                too_new = query.created_to is not None and started > utc(query.created_to)
                if not too_new and (wanted is None or item["status"] in wanted):
                    return item
                self.offset += 1
            if not self.next_token:
                self.done = True
                return None
            self.token, self.offset, self.items = self.next_token, 0, None
        return None

    async def _fetch(self) -> None:
        parameters: dict[str, Any] = {"stateMachineArn": self.arn, "maxResults": self.lister.page_size}
        if self.token:
            parameters["nextToken"] = self.token
        if self.lister.server_filter:
            parameters["statusFilter"] = self.lister.server_filter

        def expired(exc: ClientError) -> TurnoutError:
            return InvalidArgument(
                "page_token", "<token>", f"a next_page_token of a recent list call ({error_message(exc)})"
            )

        try:
            answer = await self.lister.calls.call(
                "list_executions",
                errors={
                    "StateMachineDoesNotExist": lambda exc: _Gone(error_message(exc)),
                    "InvalidToken": expired,
                },
                **parameters,
            )
        except _Gone:
            self.items, self.next_token, self.done = [], None, True
            return
        self.items = list(answer.get("executions", []))
        self.next_token = answer.get("nextToken")


class Lister:
    """One page of ``list``: a k-way merge of the state machines' streams (see the module docstring)."""

    def __init__(
        self,
        calls: AwsCalls,
        query: ListQuery,
        wanted: frozenset[str] | None,
        arns: list[str],
        to_state: ToState,
    ) -> None:
        self.calls = calls
        self.to_state = to_state
        self.query = query
        self.wanted = wanted
        self.server_filter = next(iter(wanted)) if wanted is not None and len(wanted) == 1 else None
        self.page_size = min(1000, max(query.limit, 50))
        cursor = self._decode(query.page_token) if query.page_token else None
        if cursor is None:
            self.streams = [_Stream(self, arn, None, 0) for arn in arns]
        else:
            self.page_size = cursor["n"]
            self.streams = [_Stream(self, arn, token, offset) for arn, (token, offset) in cursor["s"].items()]

    @staticmethod
    def _decode(token: str) -> dict[str, Any]:
        expected = "a next_page_token returned by an earlier list call of this component"
        try:
            cursor = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
            streams = cursor["s"]
            size = int(cursor["n"])
            if not isinstance(streams, dict) or not 1 <= size <= 1000:
                raise ValueError(token)
            for arn, (aws_token, offset) in streams.items():
                if not isinstance(arn, str) or not isinstance(offset, int) or offset < 0:
                    raise ValueError(token)
                if aws_token is not None and not isinstance(aws_token, str):
                    raise ValueError(token)
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidArgument("page_token", token, expected) from exc
        return {"n": size, "s": streams}

    def _encode(self) -> str | None:
        left = {s.arn: [s.token, s.offset] for s in self.streams if not s.done}
        if not left:
            return None
        text = json.dumps({"n": self.page_size, "s": left}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    async def page(self) -> WorkflowPage:
        """The next ``query.limit`` items, newest first, and the token of the page after them."""
        items: list[WorkflowState] = []
        while len(items) < self.query.limit:
            heads = await asyncio.gather(*(stream.head() for stream in self.streams))
            live = [
                (stream, head) for stream, head in zip(self.streams, heads, strict=True) if head is not None
            ]
            if not live:
                break
            stream, head = max(live, key=lambda pair: (utc(pair[1]["startDate"]), pair[1]["executionArn"]))
            items.append(self.to_state(stream.arn, head))
            stream.offset += 1
        await asyncio.gather(*(stream.head() for stream in self.streams))  # is anything left?
        return WorkflowPage(items=items, next_page_token=self._encode())
