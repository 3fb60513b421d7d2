"""Routes for declarative workflow definitions: store a version, list them, read one.

Under their own prefix, ``/v1.0/workflow-definitions/{component}``: below
``/v1.0/workflows/{component}/`` a name would be taken for an instance id.
A stored definition starts by its name through Dapr's start route.
"""

from __future__ import annotations

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from .._errors import InvalidArgument
from ._protocol import EXTENSION_PREFIX, definition_to_json
from ._routing import server_state
from ._schemas import DefinitionBody, DefinitionsBody, error_responses

TAG = "Declarative workflow definitions"
PREFIX = f"{EXTENSION_PREFIX}/workflow-definitions"


def add_definition_routes(app: FastAPI) -> None:
    """Register the definition routes."""
    base = f"{PREFIX}/{{component:segment}}"

    async def put_definition(request: Request, component: str) -> Response:
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument("definition", raw[:40], "UTF-8 text (YAML or JSON)") from None
        stored = await server_state(request).client(component).put_definition(text)
        return JSONResponse(
            definition_to_json(stored.model_copy(update={"document": None})),
            status_code=201,
            headers={"Location": f"{PREFIX}/{component}/{stored.name}?version={stored.version}"},
        )

    app.add_api_route(
        base,
        put_definition,
        methods=["POST"],
        name="put_definition",
        operation_id="put_definition",
        summary="Store a Serverless Workflow definition (YAML or JSON body) as a new version",
        tags=[TAG],
        status_code=201,
        response_model=DefinitionBody,
        responses=error_responses(400, 401, 409, 500, 501),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        },
    )

    async def list_definitions(request: Request, component: str) -> Response:
        definitions = await server_state(request).client(component).list_definitions()
        return JSONResponse({"definitions": [definition_to_json(d) for d in definitions]})

    app.add_api_route(
        base,
        list_definitions,
        methods=["GET"],
        name="list_definitions",
        operation_id="list_definitions",
        summary="Every definition the component can start, each version",
        tags=[TAG],
        response_model=DefinitionsBody,
        responses=error_responses(400, 401, 500, 501),
    )

    async def get_definition(
        request: Request,
        component: str,
        name: str,
        version: str | None = Query(None, description="This version; the latest when absent."),
    ) -> Response:
        found = await server_state(request).client(component).get_definition(name, version or None)
        return JSONResponse(definition_to_json(found))

    app.add_api_route(
        base + "/{name:segment}",
        get_definition,
        methods=["GET"],
        name="get_definition",
        operation_id="get_definition",
        summary="One definition with its document",
        tags=[TAG],
        response_model=DefinitionBody,
        responses=error_responses(400, 401, 404, 500, 501),
    )
