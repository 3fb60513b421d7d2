"""Registers the built-in engine through Turnout's plugin hooks: its component types, and its gRPC service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from turnout import AsyncRuntime, ComponentContext, ComponentRegistry, ComponentType, hookimpl

from ._metadata import BuiltinMetadata, PostgresMetadata, SqliteMetadata

DISTRIBUTION = "turnout"


def _create_workflow_component(metadata: BaseModel, context: ComponentContext) -> Any:
    from ._component import BuiltinWorkflowComponent

    assert isinstance(metadata, BuiltinMetadata)
    return BuiltinWorkflowComponent.from_metadata(metadata, context)


def _create_sqlite_store(metadata: BaseModel, context: ComponentContext) -> Any:
    from ._sqlite import SqliteStore

    assert isinstance(metadata, SqliteMetadata)
    return SqliteStore.from_metadata(metadata, context.working_dir)


def _create_postgres_store(metadata: BaseModel, context: ComponentContext) -> Any:
    from ._postgres import PostgresStore

    assert isinstance(metadata, PostgresMetadata)
    return PostgresStore.from_metadata(metadata)


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """The embedded engine and its two state stores."""
    registry.register(
        ComponentType(
            type="workflow.builtin",
            aliases=("workflow.dapr",),
            metadata_model=BuiltinMetadata,
            factory=_create_workflow_component,
            distribution=DISTRIBUTION,
            description="The built-in durable engine: event-sourced workflows as code, in-process.",
        )
    )
    registry.register(
        ComponentType(
            type="state.sqlite",
            metadata_model=SqliteMetadata,
            factory=_create_sqlite_store,
            distribution=DISTRIBUTION,
            description="The built-in engine's state in an embedded SQLite file.",
        )
    )
    registry.register(
        ComponentType(
            type="state.postgresql",
            metadata_model=PostgresMetadata,
            factory=_create_postgres_store,
            distribution=DISTRIBUTION,
            description="The built-in engine's state in PostgreSQL, shared by several workers.",
        )
    )


@hookimpl
def turnout_grpc_services(runtime: AsyncRuntime) -> list[tuple[Any, Callable[[Any, Any], None]]] | None:
    """The Durable Task sidecar protocol (``TaskHubSidecarService``), when the grpc extra is installed."""
    try:
        from ._sidecar import grpc_services
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("grpc", "dapr", "google"):
            return None  # the grpc extra is not installed: the core says so
        raise
    return grpc_services(runtime)
