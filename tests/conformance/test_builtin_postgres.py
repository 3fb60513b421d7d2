"""The workflow conformance suite for ``workflow.builtin`` on ``state.postgresql``.

Each check gets a fresh schema in the machine's server (127.0.0.1:5432,
dropped afterwards); without a server the checks skip with the reason, and
fail with ``CI=true``. Three configurations:

- ``postgresql``: the engine on its store, as users declare it. The recipes
  of ``workflow_targets.py`` already run this one (``builtin-postgresql``);
  it runs here only when they stop doing so, so that it never runs twice.
- ``postgresql-replay``: ``cacheSize`` 0, so every turn replays its history
  from PostgreSQL (the recovery path of a worker that took an instance over).
- ``postgresql-two-workers``: a second worker (its own runtime, engine,
  connection pool and LISTEN connection, in this process) shares the schema,
  so turns and activities land on either worker and every management call
  must reach an instance that the other worker may hold. The restart check
  restarts the client's worker while the other one goes on.

The latency check (``test_operations_apply_promptly``) is not enabled: see
the engine's lost wake-up in KNOWN_BUGS of ``test_workflow_components.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from turnout import AsyncRuntime, AsyncWorkflowClient
from turnout.testing import ConformanceTarget, WorkflowComponentSuite, conformance_workflows


@dataclass(frozen=True)
class Setup:
    """One configuration of the engine on PostgreSQL."""

    id: str
    workers: int = 1
    cache_size: int | None = None


SETUPS = [
    Setup("postgresql"),
    Setup("postgresql-replay", cache_size=0),
    Setup("postgresql-two-workers", workers=2),
]


def _covered_elsewhere() -> bool:
    """Whether the shared recipes already run workflow.builtin on state.postgresql."""
    try:
        from .workflow_targets import RECIPES
    except ImportError:
        return False
    return any("postgresql" in recipe_id for recipe_id, _ in RECIPES.get("workflow.builtin", []))


def _params() -> list[object]:
    params: list[object] = []
    for setup in SETUPS:
        marks = []
        if setup.id == "postgresql" and _covered_elsewhere():
            marks.append(pytest.mark.skip(reason="runs as builtin-postgresql in test_workflow_components.py"))
        params.append(pytest.param(setup, id=setup.id, marks=marks))
    return params


def _components(conninfo: str, schema: str, setup: Setup) -> str:
    engine: dict[str, str] = {"stateStore": "pg"}
    if setup.cache_size is not None:
        engine["cacheSize"] = str(setup.cache_size)
    store = {"connectionString": conninfo, "schema": schema, "maxConns": "4", "leaseDurationInSeconds": "5"}
    documents = [
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": name},
            "spec": {
                "type": kind,
                "version": "v1",
                "metadata": [{"name": k, "value": v} for k, v in meta.items()],
            },
        }
        for name, kind, meta in [("pg", "state.postgresql", store), ("engine", "workflow.builtin", engine)]
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


class Workers:
    """The runtimes sharing one schema; the first one's client is the one under test."""

    def __init__(self, resources: Path, working_dir: Path, count: int) -> None:
        self.resources = resources
        self.working_dir = working_dir
        self.count = count
        self.runtimes: list[AsyncRuntime] = []

    async def _runtime(self) -> AsyncRuntime:
        runtime = AsyncRuntime(self.resources, conformance_workflows(), working_dir=self.working_dir)
        await runtime.start()
        return runtime

    async def open(self) -> None:
        """Start every worker."""
        for _ in range(self.count):
            self.runtimes.append(await self._runtime())

    @property
    def client(self) -> AsyncWorkflowClient:
        """A client of the first worker."""
        return self.runtimes[0].client("engine")

    async def restart(self) -> AsyncWorkflowClient:
        """Stop the first worker and start it again on the same schema; the others keep running."""
        await self.runtimes[0].aclose()
        self.runtimes[0] = await self._runtime()
        return self.client

    async def close(self) -> None:
        """Stop every worker, the client's last."""
        for runtime in reversed(self.runtimes):
            await runtime.aclose()
        self.runtimes.clear()


def _drop_schema(conninfo: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


class TestBuiltinPostgres(WorkflowComponentSuite):
    """Every check of the suite, once per configuration."""

    @pytest_asyncio.fixture(params=_params())
    async def target(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[ConformanceTarget]:
        setup: Setup = request.param
        conninfo: str = request.getfixturevalue("postgres_conninfo")  # skips (fails in CI) without a server
        schema = f"confpg_{uuid.uuid4().hex[:12]}"
        resources = tmp_path / "components.yaml"
        resources.write_text(_components(conninfo, schema, setup), encoding="utf-8")
        workers = Workers(resources, tmp_path, setup.workers)
        try:
            await workers.open()
            yield ConformanceTarget.for_workflow_code(workers.client, restart=workers.restart)
        finally:
            await workers.close()
            await asyncio.to_thread(_drop_schema, conninfo, schema)
