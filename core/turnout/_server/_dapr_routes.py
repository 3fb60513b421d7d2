"""Dapr's workflow routes, exactly: start, get, terminate, raiseEvent, pause, resume, purge.

Registered once per prefix (``/v1.0``, ``/v1.0-beta1``, ``/v1.0-alpha1``), all
calling the same handlers, as daprd does. Bodies of start and raiseEvent are
the raw payload: JSON, or else the text itself (Dapr stores the text).
Terminate, pause and resume take an optional ``reason`` query parameter, a
Turnout extension that Dapr clients never send; start takes ``startAt``
(RFC 3339) to schedule, as Dapr's gRPC ``dapr.workflow.start_time`` option.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from .._errors import InstanceNotFound
from ._protocol import decode_payload, parse_time, state_to_json, status_path
from ._routing import accepted, server_state
from ._schemas import EmptyBody, StartBody, StateBody, error_responses

PAYLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "The raw payload: JSON text, or any other text (taken as a string). "
        "With Content-Type application/json it must be valid JSON.",
        "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}},
    }
}

COMPONENT_DOC = "The workflow component's name (metadata.name in its YAML); Dapr's docs use 'dapr'."
REASON = Query(None, description="Why (Turnout extension; recorded in the history where the engine can).")
RETRY_AFTER_SECONDS = "1"


def add_dapr_routes(app: FastAPI, prefix: str) -> None:
    """Register Dapr's seven workflow routes under ``prefix``."""
    tag = f"Dapr workflow API ({prefix.strip('/')})"
    deprecated = prefix.endswith("alpha1")
    slug = prefix.strip("/").replace(".", "_").replace("-", "_")
    base = f"{prefix}/workflows/{{component:segment}}"

    def route(path: str, endpoint: Any, method: str, name: str, summary: str, **extra: Any) -> None:
        app.add_api_route(
            base + path,
            endpoint,
            methods=[method],
            name=name,
            operation_id=f"{name}_{slug}",
            summary=summary,
            tags=[tag],
            deprecated=deprecated,
            **extra,
        )

    async def start(
        request: Request,
        component: str,
        workflow_name: str,
        instance_id: str | None = Query(
            None,
            alias="instanceID",
            description="The new instance's id: 1 to 64 letters, digits, '_' or '-'. Generated when absent.",
        ),
        start_at: str | None = Query(
            None, alias="startAt", description="Start no earlier than this RFC 3339 time (Turnout extension)."
        ),
    ) -> Response:
        state = server_state(request)
        client = state.client(component)
        when = parse_time(start_at, field="startAt") if start_at else None
        body = await request.body()
        payload = decode_payload(
            body,
            request.headers.get("content-type"),
            max_depth=state.config.max_json_depth,
            what="workflow input",
        )
        new_id = await client.start(workflow_name, payload, instance_id=instance_id or None, start_at=when)
        location = status_path(component, new_id, prefix)
        return accepted({"instanceID": new_id}, {"Location": location, "Retry-After": RETRY_AFTER_SECONDS})

    route(
        "/{workflow_name:segment}/start",
        start,
        "POST",
        "start",
        "Start a workflow instance",
        status_code=202,
        response_model=StartBody,
        responses=error_responses(400, 401, 409, 413, 500, 501),
        openapi_extra=PAYLOAD_BODY,
    )

    async def get(request: Request, component: str, instance_id: str) -> Response:
        client = server_state(request).client(component)
        found = await client.get(instance_id)
        if found is None:
            raise InstanceNotFound(instance_id, component)
        return JSONResponse(state_to_json(found))

    route(
        "/{instance_id:segment}",
        get,
        "GET",
        "get",
        "Get an instance's state",
        response_model=StateBody,
        responses=error_responses(400, 401, 404, 500),
    )

    async def raise_event(request: Request, component: str, instance_id: str, event_name: str) -> Response:
        state = server_state(request)
        client = state.client(component)
        payload = decode_payload(
            await request.body(),
            request.headers.get("content-type"),
            max_depth=state.config.max_json_depth,
            what="event data",
        )
        await client.raise_event(instance_id, event_name, payload)
        return accepted()

    route(
        "/{instance_id:segment}/raiseEvent/{event_name:segment}",
        raise_event,
        "POST",
        "raise_event",
        "Raise an event for an instance",
        status_code=202,
        response_model=EmptyBody,
        responses=error_responses(400, 401, 404, 409, 413, 500, 501),
        openapi_extra=PAYLOAD_BODY,
    )

    async def terminate(
        request: Request, component: str, instance_id: str, reason: str | None = REASON
    ) -> Response:
        await server_state(request).client(component).terminate(instance_id, reason)
        return accepted()

    async def pause(
        request: Request, component: str, instance_id: str, reason: str | None = REASON
    ) -> Response:
        await server_state(request).client(component).pause(instance_id, reason)
        return accepted()

    async def resume(
        request: Request, component: str, instance_id: str, reason: str | None = REASON
    ) -> Response:
        await server_state(request).client(component).resume(instance_id, reason)
        return accepted()

    async def purge(request: Request, component: str, instance_id: str) -> Response:
        await server_state(request).client(component).purge(instance_id)
        return accepted()

    for name, endpoint, summary in (
        ("terminate", terminate, "Terminate an instance (and its children)"),
        ("pause", pause, "Pause (suspend) an instance"),
        ("resume", resume, "Resume a paused instance"),
        ("purge", purge, "Delete a finished instance and its history"),
    ):
        route(
            f"/{{instance_id:segment}}/{name}",
            endpoint,
            "POST",
            name,
            summary,
            status_code=202,
            response_model=EmptyBody,
            responses=error_responses(400, 401, 404, 409, 500, 501),
        )
