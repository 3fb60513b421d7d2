"""Metadata models of the built-in engine's component types (validation and documentation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from turnout.metadata import parse_duration


class BuiltinMetadata(BaseModel):
    """``workflow.builtin`` (alias ``workflow.dapr``): the embedded durable engine."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    state_store: str | None = Field(
        default=None,
        alias="stateStore",
        description="Name of a state.sqlite or state.postgresql component holding the engine's state; "
        "by default a SQLite file .turnout/<component name>.db under the working directory.",
    )
    max_concurrent_activities: int = Field(
        default=64,
        ge=1,
        alias="maxConcurrentActivityInvocations",
        description="How many activities run at once in this process (Dapr's name for the setting).",
    )
    max_concurrent_workflows: int = Field(
        default=256,
        ge=1,
        alias="maxConcurrentWorkflowInvocations",
        description="How many workflow turns are processed in one batch (and committed together).",
    )
    cache_size: int = Field(
        default=10_000,
        ge=0,
        alias="cacheSize",
        description="How many running instances stay in memory, so a turn does not replay its history.",
    )
    definitions: str | None = Field(
        default=None,
        description="Serverless Workflow definition files to run, as glob patterns separated by commas "
        "(relative to the component file's folder), e.g. 'workflows/*.sw.yaml'. Each starts by its name.",
    )
    http_endpoints: str | None = Field(
        default=None,
        alias="httpEndpoints",
        description="Base URLs that declarative workflows' HTTP calls go to instead of others, as "
        "'from=to' pairs separated by commas, e.g. 'https://api.example.com=http://127.0.0.1:8080' "
        "(for tests and proxies).",
    )
    http_timeout: float = Field(
        default=30.0,
        gt=0,
        alias="httpTimeout",
        description="Seconds an HTTP call of a declarative workflow may take.",
    )
    event_sinks: str | None = Field(
        default=None,
        alias="eventSinks",
        description="URLs that the CloudEvents emitted by declarative workflows are POSTed to, "
        "separated by commas.",
    )

    @field_validator("http_endpoints")
    @classmethod
    def _pairs(cls, value: str | None) -> str | None:
        for pair in (value or "").split(","):
            if pair.strip() and "=" not in pair:
                raise ValueError(f"expected 'from=to' pairs separated by commas, got {pair.strip()!r}")
        return value

    def endpoint_map(self) -> dict[str, str]:
        """``httpEndpoints`` as a mapping."""
        pairs = (p.split("=", 1) for p in (self.http_endpoints or "").split(",") if p.strip())
        return {source.strip(): target.strip() for source, target in pairs}

    @staticmethod
    def split(value: str | None) -> list[str]:
        """A comma-separated setting as a list."""
        return [item.strip() for item in (value or "").split(",") if item.strip()]


class SqliteMetadata(BaseModel):
    """``state.sqlite``: an embedded SQLite database file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_string: str = Field(
        default=".turnout/workflows.db",
        alias="connectionString",
        description="Path of the database file, relative to the working directory, or ':memory:'.",
    )
    busy_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        alias="busyTimeout",
        description="How long a writer waits for a lock held by another process, in milliseconds.",
    )
    disable_wal: bool = Field(
        default=False,
        alias="disableWAL",
        description="Use the rollback journal instead of write-ahead logging (for network file systems).",
    )


class PostgresMetadata(BaseModel):
    """``state.postgresql``: a PostgreSQL database shared by several worker processes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_string: str = Field(
        alias="connectionString",
        description="libpq connection string or URL, e.g. 'host=127.0.0.1 user=postgres dbname=test'.",
    )
    schema_name: str = Field(
        default="turnout", alias="schema", description="Schema that holds the engine's tables."
    )
    max_connections: int = Field(
        default=10, ge=1, alias="maxConns", description="Size of the connection pool."
    )
    lease_seconds: float = Field(
        default=10.0,
        gt=0,
        alias="leaseDurationInSeconds",
        description="How long a worker's claim on an instance or an activity lasts without a heartbeat; "
        "a dead worker's work passes to another after this long.",
    )
    timeout: timedelta = Field(
        default=timedelta(seconds=20),
        description="How long one database operation may take, as a Go duration or a number of "
        "seconds (Dapr's 'timeout'): the server cancels a statement that runs longer, a connection "
        "attempt gives up after it, and a server, or a worker's machine, that stops answering is "
        "given up on after about twice as long. The engine retries each.",
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _parse_timeout(cls, value: Any) -> timedelta:
        return parse_duration(value)
