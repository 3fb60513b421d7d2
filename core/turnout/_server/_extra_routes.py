"""Turnout's routes beyond Dapr, under ``/v1.0`` only: list, history, wait, cancel, components, health.

They follow Dapr's conventions (camelCase JSON, ``{"errorCode", "message"}``
errors, 202 for accepted commands) so that one client speaks both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from ._config import DEFAULT_WAIT
from ._errors import ShuttingDown
from ._protocol import EXTENSION_PREFIX, history_to_json, page_to_json, parse_statuses, state_to_json
from ._routing import accepted, error_response, server_state
from ._schemas import ComponentsBody, EmptyBody, HistoryBody, PageBody, StateBody, error_responses

T = TypeVar("T")
log = logging.getLogger("turnout.server")
TAG = "Turnout extensions"
MAX_PAGE = 1000


class _Disconnected(Exception):
    """The client went away while its long poll was waiting."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _race(work: Awaitable[T], draining: asyncio.Event, request: Request) -> T:
    """``work``'s result, unless the server starts draining (ShuttingDown) or the client leaves first."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(draining.wait())
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, stop, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for other in (task, stop, gone):
            if not other.done():
                other.cancel()
        for other in (task, stop, gone):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await other
    if task.done() and not task.cancelled():
        return task.result()
    if stop.done() and not stop.cancelled():
        raise ShuttingDown()
    raise _Disconnected


def add_extra_routes(app: FastAPI, max_wait: float) -> None:
    """Register the Turnout extensions; ``max_wait`` bounds the long poll's ``timeout``."""
    base = f"{EXTENSION_PREFIX}/workflows/{{component:segment}}"

    def route(path: str, endpoint: Any, method: str, name: str, summary: str, **extra: Any) -> None:
        app.add_api_route(
            path,
            endpoint,
            methods=[method],
            name=name,
            operation_id=name,
            summary=summary,
            tags=[TAG],
            **extra,
        )

    async def list_instances(
        request: Request,
        component: str,
        status: Annotated[
            list[str] | None,
            Query(description="Only these statuses: repeat the parameter or separate with commas."),
        ] = None,
        workflow_name: str | None = Query(None, alias="workflowName", description="Only this workflow."),
        limit: int = Query(100, ge=1, le=MAX_PAGE, description="At most this many instances."),
        page_token: str | None = Query(
            None, alias="pageToken", description="nextPageToken of the last page."
        ),
    ) -> Response:
        client = server_state(request).client(component)
        page = await client.list(
            status=parse_statuses(status, field="status"),
            workflow_name=workflow_name or None,
            limit=limit,
            page_token=page_token or None,
        )
        return JSONResponse(page_to_json(page))

    route(
        base,
        list_instances,
        "GET",
        "list",
        "List instances, newest first, a page at a time",
        response_model=PageBody,
        responses=error_responses(400, 401, 500, 501),
    )

    async def history(request: Request, component: str, instance_id: str) -> Response:
        events = await server_state(request).client(component).history(instance_id)
        return JSONResponse(history_to_json(instance_id, events))

    route(
        base + "/{instance_id:segment}/history",
        history,
        "GET",
        "history",
        "An instance's history, oldest first",
        response_model=HistoryBody,
        responses=error_responses(400, 401, 404, 500, 501),
    )

    async def wait(
        request: Request,
        component: str,
        instance_id: str,
        timeout: float = Query(
            DEFAULT_WAIT, ge=0, le=max_wait, description="Seconds to wait before answering 408."
        ),
        until: Annotated[
            list[str] | None,
            Query(
                description="Answer once the status is one of these (repeat or separate with commas); "
                "default: COMPLETED, FAILED, TERMINATED, CANCELED."
            ),
        ] = None,
    ) -> Response:
        state = server_state(request)
        client = state.client(component)
        wanted = parse_statuses(until, field="until")
        log.debug("long-poll wait on %s/%s for up to %gs", component, instance_id, timeout)
        try:
            found = await _race(
                client.wait(instance_id, timeout=timeout, until=wanted), state.draining, request
            )
        except _Disconnected:
            return Response(status_code=204)
        return JSONResponse(state_to_json(found))

    route(
        base + "/{instance_id:segment}/wait",
        wait,
        "GET",
        "wait",
        "Long-poll until the instance reaches a status",
        response_model=StateBody,
        responses=error_responses(400, 401, 404, 408, 500, 503),
    )

    async def cancel(
        request: Request, component: str, instance_id: str, reason: str | None = None
    ) -> Response:
        await server_state(request).client(component).cancel(instance_id, reason)
        return accepted()

    route(
        base + "/{instance_id:segment}/cancel",
        cancel,
        "POST",
        "cancel",
        "Ask an instance to stop; it may compensate, then ends CANCELED",
        status_code=202,
        response_model=EmptyBody,
        responses=error_responses(400, 401, 404, 409, 500, 501),
    )

    async def components(request: Request) -> Response:
        clients = server_state(request).clients
        body = [
            {
                "name": name,
                "type": client.component.component_type,
                "features": sorted(feature.value for feature in client.features),
            }
            for name, client in clients.items()
        ]
        return JSONResponse({"components": body})

    route(
        f"{EXTENSION_PREFIX}/components",
        components,
        "GET",
        "components",
        "The loaded workflow components, their types and features",
        response_model=ComponentsBody,
        responses=error_responses(401),
    )

    async def healthz(request: Request) -> Response:
        if server_state(request).draining.is_set():
            return error_response(ShuttingDown(), "healthz")
        return Response(status_code=204)

    route(
        f"{EXTENSION_PREFIX}/healthz",
        healthz,
        "GET",
        "healthz",
        "204 while the server serves (no token needed)",
        status_code=204,
        responses={**error_responses(503), 204: {"description": "Serving."}},
    )
