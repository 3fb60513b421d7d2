"""An async client of the HTTP API with the same calls as :class:`turnout.AsyncWorkflowClient`.

The CLI talks to a server through this class and to an in-process runtime
through AsyncWorkflowClient, with the same code: both take and return
Turnout's models and raise TurnoutErrors with the same codes. The JSON is read
with the functions the server writes it with (``_protocol``). Needs httpx.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from .._errors import ComponentError, InstanceNotFound, InvalidArgument, WaitTimeout
from .._models import HistoryEvent, RuntimeStatus, WorkflowDefinition, WorkflowPage, WorkflowState
from ._config import TOKEN_HEADER
from ._errors import RemoteError, ServerUnreachable, error_from_response
from ._protocol import (
    EXTENSION_PREFIX,
    definition_from_json,
    format_time,
    history_from_json,
    page_from_json,
    state_from_json,
)

WAIT_CHUNK = 60.0
"""Longest single long poll; longer waits are several polls (servers allow up to 300 s by default)."""

REQUEST_TIMEOUT = 30.0


class HttpWorkflowClient:
    """The management API of one workflow component on a Turnout server (``async with``)."""

    def __init__(
        self,
        address: str,
        component: str | None = None,
        *,
        token: str | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.address = address.rstrip("/")
        self.component_name = component
        headers = {TOKEN_HEADER: token} if token else {}
        self._http = httpx.AsyncClient(base_url=self.address, headers=headers, verify=verify, timeout=timeout)

    async def __aenter__(self) -> HttpWorkflowClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, ok: int = 200, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except (httpx.TransportError, ssl.SSLError) as exc:
            raise ServerUnreachable(
                self.address, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from exc
        if response.status_code != ok:
            raise error_from_response(response.status_code, response.content)
        return response

    async def _component(self) -> str:
        """The component to use: the one named, else the server's only one (``dapr`` for a Dapr sidecar)."""
        if self.component_name:
            return self.component_name
        try:
            body = (await self._call("GET", f"{EXTENSION_PREFIX}/components")).json()
        except RemoteError as exc:
            if exc.http_status != 404:
                raise
            self.component_name = "dapr"  # not a Turnout server: Dapr's own component name
            return self.component_name
        names = [item["name"] for item in body.get("components", [])]
        if len(names) != 1:
            raise ComponentError(
                f"the server has {len(names)} workflow components ({', '.join(names) or 'none'}): "
                "name one with --component"
            )
        self.component_name = names[0]
        return self.component_name

    async def _path(self, *parts: str) -> str:
        segments = [quote(await self._component(), safe=""), *(quote(part, safe="") for part in parts)]
        return f"{EXTENSION_PREFIX}/workflows/" + "/".join(segments)

    async def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        instance_id: str | None = None,
        start_at: datetime | timedelta | None = None,
    ) -> str:
        """Start an instance; returns its id."""
        params: dict[str, str] = {}
        if instance_id:
            params["instanceID"] = instance_id
        if isinstance(start_at, timedelta):
            start_at = datetime.now(UTC) + start_at
        if start_at is not None:
            params["startAt"] = format_time(start_at)
        content = None if input is None else json.dumps(input).encode()
        response = await self._call(
            "POST",
            await self._path(workflow, "start"),
            ok=202,
            params=params,
            content=content,
            headers={"content-type": "application/json"},
        )
        return str(response.json()["instanceID"])

    async def get(self, instance_id: str) -> WorkflowState | None:
        """The instance's state, or None."""
        try:
            response = await self._call("GET", await self._path(instance_id))
        except RemoteError as exc:
            if exc.code == InstanceNotFound.code:
                return None
            raise
        return state_from_json(response.json())

    async def wait(
        self,
        instance_id: str,
        *,
        timeout: float | None = None,
        until: Collection[RuntimeStatus | str] | None = None,
    ) -> WorkflowState:
        """Long-poll until the instance reaches one of ``until`` (default: a terminal status)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        params: dict[str, Any] = {}
        if until:
            params["until"] = ",".join(RuntimeStatus(str(s).upper()).value for s in until)
        while True:
            remaining = WAIT_CHUNK if deadline is None else max(0.0, deadline - time.monotonic())
            chunk = min(WAIT_CHUNK, remaining)
            try:
                response = await self._call(
                    "GET",
                    await self._path(instance_id, "wait"),
                    params={**params, "timeout": f"{chunk:.3f}"},
                    timeout=chunk + REQUEST_TIMEOUT,
                )
            except RemoteError as exc:
                if exc.code != WaitTimeout.code:
                    raise
                state = state_from_json(exc.body["state"]) if "state" in exc.body else None
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(instance_id, timeout or 0.0, state) from None
                continue
            return state_from_json(response.json())

    async def list(
        self,
        *,
        status: Collection[RuntimeStatus | str] | RuntimeStatus | str | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> WorkflowPage:
        """One page of instances, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            items = [status] if isinstance(status, str) else list(status)
            params["status"] = [str(item) for item in items]
        if workflow_name:
            params["workflowName"] = workflow_name
        if page_token:
            params["pageToken"] = page_token
        response = await self._call("GET", await self._path(), params=params)
        return page_from_json(response.json())

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an event to the instance."""
        if not name:
            raise InvalidArgument(
                "event name", name, "a non-empty name", code="ERR_WORKFLOW_EVENT_NAME_MISSING"
            )
        content = None if data is None else json.dumps(data).encode()
        await self._call(
            "POST",
            await self._path(instance_id, "raiseEvent", name),
            ok=202,
            content=content,
            headers={"content-type": "application/json"},
        )

    async def _command(self, instance_id: str, operation: str, reason: str | None = None) -> None:
        params = {"reason": reason} if reason else {}
        await self._call("POST", await self._path(instance_id, operation), ok=202, params=params)

    async def pause(self, instance_id: str, reason: str | None = None) -> None:
        """Suspend the instance."""
        await self._command(instance_id, "pause", reason)

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        """Resume a paused instance."""
        await self._command(instance_id, "resume", reason)

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        """Stop the instance and its children."""
        await self._command(instance_id, "terminate", reason)

    async def cancel(self, instance_id: str, reason: str | None = None) -> None:
        """Ask the instance to stop cooperatively."""
        await self._command(instance_id, "cancel", reason)

    async def purge(self, instance_id: str) -> None:
        """Delete a finished instance."""
        await self._command(instance_id, "purge")

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        """The instance's history, oldest first."""
        response = await self._call("GET", await self._path(instance_id, "history"))
        return history_from_json(response.json())

    async def _definitions_path(self, *parts: str) -> str:
        segments = [quote(await self._component(), safe=""), *(quote(part, safe="") for part in parts)]
        return f"{EXTENSION_PREFIX}/workflow-definitions/" + "/".join(segments)

    async def put_definition(self, document: str, *, source: str | None = None) -> WorkflowDefinition:
        """Store a definition (YAML or JSON text) as a new version."""
        response = await self._call(
            "POST",
            await self._definitions_path(),
            ok=201,
            content=document.encode(),
            headers={"content-type": "application/yaml"},
        )
        return definition_from_json(response.json())

    async def get_definition(self, name: str, version: str | None = None) -> WorkflowDefinition:
        """A stored definition with its document."""
        params = {"version": version} if version else {}
        response = await self._call("GET", await self._definitions_path(name), params=params)
        return definition_from_json(response.json())

    async def list_definitions(self) -> list[WorkflowDefinition]:
        """Every definition the component can start."""
        response = await self._call("GET", await self._definitions_path())
        return [definition_from_json(item) for item in response.json()["definitions"]]


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext | bool:
    """What httpx verifies with: the default CAs, or ``ca``; with a client certificate for mutual TLS."""
    if not ca and not cert:
        return True
    context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if cert:
        context.load_cert_chain(cert, key)
    return context
