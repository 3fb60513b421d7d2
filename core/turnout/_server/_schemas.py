"""Pydantic models of the bodies, for the OpenAPI document (the routes write the JSON themselves).

The JSON itself comes from :mod:`turnout._server._protocol`, shared with the
client; these models only describe it, with Dapr's field names as aliases.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._models import Feature, RuntimeStatus


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class ErrorBody(_Model):
    """Dapr's error body; Turnout may add ``componentType``, ``operation``, ``components`` or ``state``."""

    error_code: str = Field(alias="errorCode", description="A stable code such as ERR_INSTANCE_ID_NOT_FOUND.")
    message: str = Field(description="What went wrong and what to do next.")


class StartBody(_Model):
    """The answer to start: the instance's id (generated when none was given)."""

    instance_id: str = Field(alias="instanceID")


class EmptyBody(_Model):
    """An empty JSON object, as Dapr answers 202 (protojson of google.protobuf.Empty)."""


class StateBody(_Model):
    """An instance's state, as Dapr's GET answers it."""

    instance_id: str = Field(alias="instanceID")
    workflow_name: str | None = Field(default=None, alias="workflowName")
    created_at: str = Field(alias="createdAt", description="RFC 3339, UTC.")
    last_updated_at: str = Field(alias="lastUpdatedAt", description="RFC 3339, UTC.")
    runtime_status: RuntimeStatus = Field(alias="runtimeStatus")
    properties: dict[str, str] | None = Field(
        default=None,
        description="dapr.workflow.input, .output, .custom_status (JSON text) and "
        ".failure.error_type, .failure.error_message, .failure.stack_trace; engine facts besides.",
    )


class PageBody(_Model):
    """One page of instances, newest first."""

    items: list[StateBody]
    next_page_token: str | None = Field(
        default=None,
        alias="nextPageToken",
        description="Pass as pageToken for the next page; absent on the last.",
    )


class HistoryEventBody(_Model):
    """One step of an instance's history."""

    sequence: int
    timestamp: str
    kind: str
    name: str | None = None
    task_id: int | None = Field(default=None, alias="taskID")
    data: dict[str, Any] | None = None


class HistoryBody(_Model):
    """An instance's history, oldest first."""

    instance_id: str = Field(alias="instanceID")
    events: list[HistoryEventBody]


class ComponentBody(_Model):
    """A loaded workflow component: its name (the route segment), type and features."""

    name: str
    type: str
    features: list[Feature]


class ComponentsBody(_Model):
    """Every loaded workflow component."""

    components: list[ComponentBody]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the error statuses a route may answer."""
    descriptions = {
        400: "Bad request: a missing or invalid value (the errorCode names which).",
        401: "Missing or wrong dapr-api-token header.",
        404: "No such instance (ERR_INSTANCE_ID_NOT_FOUND).",
        408: "The instance did not reach the awaited status in time (ERR_WAIT_TIMEOUT).",
        409: "The instance exists already, or is in a status the operation does not apply to.",
        413: "The request body is too large.",
        500: "The engine failed (ERR_START_WORKFLOW, ERR_GET_WORKFLOW, ...).",
        501: "The component's engine does not offer this operation (ERR_NOT_SUPPORTED).",
        503: "The server is shutting down.",
    }
    return {status: {"model": ErrorBody, "description": descriptions[status]} for status in statuses}


class DefinitionBody(_Model):
    """A stored declarative definition; ``document`` (its text) only when one is read."""

    name: str
    version: str
    dialect: str = Field(description="1.0 or 0.8 (Serverless Workflow).")
    workflow_name: str = Field(alias="workflowName", description="What start takes for this version.")
    created_at: str = Field(alias="createdAt", description="RFC 3339, UTC.")
    document: str | None = None


class DefinitionsBody(_Model):
    """Every stored definition, by name, each version in the order stored."""

    definitions: list[DefinitionBody]
