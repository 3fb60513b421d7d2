"""Conformance targets: how to run each installed workflow component type on this machine.

One or more *recipes* per component type, as components-contrib keeps one
config folder per component. Every installed workflow type gets an entry:
a type without a recipe, an adapter whose engine calls are not implemented
yet, and a server that is not there are each reported as a skip with the
reason, and in CI (``CI=true``) a missing server fails instead.

Adding an engine: write its recipe (a component YAML and the roles its
workflows play) and add it to ``RECIPES``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from turnout import AsyncRuntime, AsyncWorkflowClient, ComponentError, ComponentKind, EngineError
from turnout._plugins import load_registry
from turnout.testing import (
    EVENT_NAME,
    FAILURE_MESSAGE,
    ConformanceTarget,
    conformance_workflows,
    missing_server,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"

NOT_IMPLEMENTED = "not implemented"
"""What an adapter's factory says while its engine calls are still missing."""


Opener = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[ConformanceTarget]]


@dataclass(frozen=True)
class Recipe:
    """One way to run the suite against a component type."""

    id: str
    component_type: str
    open: Opener


# -- helpers ---------------------------------------------------------------------------


def component(name: str, component_type: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Dapr component document."""
    items = [{"name": key, "value": value} for key, value in (metadata or {}).items()]
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": component_type, "version": "v1", "metadata": items},
    }


def write_components(tmp_path: Path, *documents: dict[str, Any]) -> Path:
    """Write the documents as one component file under ``tmp_path/components``; returns the folder."""
    folder = tmp_path / "components"
    folder.mkdir(exist_ok=True)
    (folder / "components.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return folder


def template_plugin() -> ModuleType | None:
    """The template adapter's plugin module from plugins/_template, if the folder has one."""
    if not (TEMPLATE / "turnout_example" / "_plugin.py").exists():
        return None
    # The template is never installed: import it from its folder. Its component module is
    # found later through the package's own path, so sys.path is restored at once.
    sys.path.insert(0, str(TEMPLATE))
    try:
        return importlib.import_module("turnout_example._plugin")
    finally:
        sys.path.remove(str(TEMPLATE))


def reachable(address: str, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` (or a URL) succeeds."""
    if "://" in address:
        parts = urlsplit(address)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    else:
        host, _, port_text = address.rpartition(":")
        port = int(port_text)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Served:
    """A running runtime with the component under test; ``restart`` reopens it on the same state."""

    def __init__(
        self,
        tmp_path: Path,
        resources: Path | None,
        *,
        component_type: str,
        component_name: str | None,
        plugins: tuple[object, ...],
        server: Callable[[], str | None] | None,
    ) -> None:
        self.tmp_path = tmp_path
        self.resources = resources
        self.component_type = component_type
        self.component_name = component_name
        self.registry = load_registry(extra_plugins=plugins) if plugins else None
        self.server = server
        self.runtime: AsyncRuntime | None = None

    @property
    def client(self) -> AsyncWorkflowClient:
        """A client of the component under test."""
        assert self.runtime is not None
        return self.runtime.client(self.component_name)

    def _check_server(self, error: BaseException | None = None) -> None:
        problem = self.server() if self.server is not None else None
        if problem is not None:
            cause = f" ({type(error).__name__}: {error})" if error is not None else ""
            missing_server(f"{self.component_type}: {problem}{cause}")

    async def open(self) -> None:
        """Start the runtime: a not-implemented adapter skips, a missing server is reported."""
        runtime = AsyncRuntime(
            self.resources, conformance_workflows(), working_dir=self.tmp_path, registry=self.registry
        )
        try:
            await runtime.start()
        except ComponentError as exc:
            if NOT_IMPLEMENTED in str(exc):
                # Not a missing server: nothing on this machine can make it run, so even CI skips.
                pytest.skip(
                    f"{self.component_type}: the adapter is installed but not implemented yet: {exc.reason}"
                )
            raise
        except (EngineError, OSError) as exc:
            self._check_server(exc)
            raise
        self.runtime = runtime
        self._check_server()

    async def close(self) -> None:
        """Stop the runtime."""
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            await runtime.aclose()

    async def restart(self) -> AsyncWorkflowClient:
        """Stop the runtime and start a new one on the same resources and working directory."""
        await self.close()
        await self.open()
        return self.client


def skip_if_not_implemented(tmp_path: Path, resources: Path, component_type: str) -> None:
    """Skip (even in CI) when the adapter's factory says it is not implemented yet.

    The components are built but not opened, so no server is needed yet: a
    recipe calls this before it starts (or asks for) its engine's server.
    """
    from turnout._build import build_components
    from turnout._specs import read_specs

    try:
        build_components(
            read_specs(resources, load_registry()), working_dir=tmp_path, workflows=conformance_workflows()
        )
    except ComponentError as exc:
        if NOT_IMPLEMENTED in str(exc):
            pytest.skip(f"{component_type}: the adapter is installed but not implemented yet: {exc}")
        raise


@asynccontextmanager
async def serve(
    tmp_path: Path,
    resources: Path | None,
    *,
    component_type: str,
    component_name: str | None = None,
    plugins: tuple[object, ...] = (),
    server: Callable[[], str | None] | None = None,
) -> AsyncIterator[Served]:
    """Run the runtime with the conformance workflows; stop it afterwards.

    An adapter whose factory says its engine calls are not implemented is a
    skip. ``server`` returns why the engine's server is unusable, or None; a
    missing server goes through :func:`turnout.testing.missing_server`.
    """
    served = Served(
        tmp_path,
        resources,
        component_type=component_type,
        component_name=component_name,
        plugins=plugins,
        server=server,
    )
    await served.open()
    try:
        yield served
    finally:
        await served.close()


# -- the built-in engine ---------------------------------------------------------------

BUILTIN_LATENCY = 0.5
"""The built-in engine acts on each call at once; half its 1 s poll interval shows a lost wake-up."""


@asynccontextmanager
async def builtin_default(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
    """No resources at all: the runtime creates the built-in engine as component 'dapr'."""
    async with serve(tmp_path, None, component_type="workflow.builtin") as served:
        assert served.client.component.name == "dapr"
        yield ConformanceTarget.for_workflow_code(
            served.client, restart=served.restart, latency=BUILTIN_LATENCY
        )


@asynccontextmanager
async def builtin_replay(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
    """workflow.builtin from a YAML file with cacheSize 0: every turn replays from the store."""
    resources = write_components(tmp_path, component("engine", "workflow.builtin", {"cacheSize": "0"}))
    async with serve(tmp_path, resources, component_type="workflow.builtin") as served:
        yield ConformanceTarget.for_workflow_code(
            served.client, restart=served.restart, latency=BUILTIN_LATENCY
        )


@asynccontextmanager
async def dapr_alias_sqlite(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ConformanceTarget]:
    """Dapr's own type name, workflow.dapr, on a state.sqlite component named by stateStore."""
    resources = write_components(
        tmp_path,
        component("store", "state.sqlite", {"connectionString": "state/workflows.db"}),
        component("dapr", "workflow.dapr", {"stateStore": "store"}),
    )
    async with serve(tmp_path, resources, component_type="workflow.dapr", component_name="dapr") as served:
        assert (tmp_path / "state" / "workflows.db").exists(), "the engine does not use the named store"
        yield ConformanceTarget.for_workflow_code(
            served.client, restart=served.restart, latency=BUILTIN_LATENCY
        )


@asynccontextmanager
async def builtin_postgresql(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ConformanceTarget]:
    """workflow.builtin on state.postgresql (the machine's server), in a schema of its own."""
    conninfo = request.getfixturevalue("postgres_conninfo")  # skips, or fails in CI, without a server
    schema = f"conf_{uuid.uuid4().hex[:12]}"
    resources = write_components(
        tmp_path,
        component(
            "pg", "state.postgresql", {"connectionString": conninfo, "schema": schema, "maxConns": "4"}
        ),
        component("engine", "workflow.builtin", {"stateStore": "pg"}),
    )
    try:
        async with serve(tmp_path, resources, component_type="workflow.builtin") as served:
            yield ConformanceTarget.for_workflow_code(
                served.client, restart=served.restart, latency=BUILTIN_LATENCY
            )
    finally:
        await asyncio.to_thread(_drop_schema, conninfo, schema)


def _drop_schema(conninfo: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- the template adapter (plugins/_template) ----------------------------------------------


@asynccontextmanager
async def example(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
    """The template's in-memory workflow.example engine: fixed behaviours, few features."""
    plugin = template_plugin()
    assert plugin is not None
    resources = write_components(
        tmp_path,
        component(
            "example",
            "workflow.example",
            {"workflows": {"echo": "echo", "fail": "fail", "sleep": "sleep"}, "failureMessage": "broke"},
        ),
    )
    no_code = "the example engine runs fixed behaviours, not Turnout code"
    async with serve(tmp_path, resources, component_type="workflow.example", plugins=(plugin,)) as served:
        yield ConformanceTarget(
            served.client,
            echo="echo",
            sleeper="sleep",
            failing="fail",
            failure_message="broke",
            failure_error_type="ExampleFailure",
            reasons={
                "waiter": "the example engine has no external events",
                "activity": no_code,
                "custom_status": no_code,
                "parent": no_code,
                "restart": "the example engine keeps its instances in memory only",
            },
        )


# -- adapters for external engines -------------------------------------------------------


def _temporal_component(address: str, task_queue: str) -> dict[str, Any]:
    return component(
        "temporal",
        "workflow.temporal",
        {"hostPort": address, "taskQueue": task_queue, "hostWorker": "true"},
    )


@asynccontextmanager
async def temporal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
    """workflow.temporal with hostWorker on a dev server, running the conformance workflows.

    Each check gets a task queue of its own, so no check's worker sees another's workflows.
    """
    task_queue = f"turnout-conformance-{uuid.uuid4().hex[:12]}"
    placeholder = write_components(tmp_path, _temporal_component("127.0.0.1:1", task_queue))
    skip_if_not_implemented(tmp_path, placeholder, "workflow.temporal")
    address = request.getfixturevalue("temporal_address")  # skips, or fails in CI, without a server
    resources = write_components(tmp_path, _temporal_component(address, task_queue))

    def server() -> str | None:
        return None if reachable(address) else f"no Temporal server at {address}"

    async with serve(tmp_path, resources, component_type="workflow.temporal", server=server) as served:
        yield ConformanceTarget.for_workflow_code(served.client, timeout=20.0, restart=served.restart)


# Amazon States Language definitions that play the roles the suite needs on Step Functions.
# One file per workflow; the workflow's name is the file's name (see the adapter's _definitions).
STEP_FUNCTIONS_DEFINITIONS = {
    "conformance_echo": {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}},
    "conformance_sleeper": {
        "StartAt": "Sleep",
        "States": {"Sleep": {"Type": "Wait", "Seconds": 3600, "End": True}},
    },
    "conformance_failing": {
        "StartAt": "Fail",
        "States": {"Fail": {"Type": "Fail", "Error": "ValueError", "Cause": FAILURE_MESSAGE}},
    },
}


def _waiter_definition(queue_url: str) -> dict[str, Any]:
    # Step Functions waits for the outside world with a .waitForTaskToken task; the adapter
    # completes the task of the state named like the event (here "go") with the event's data.
    return {
        "StartAt": EVENT_NAME,
        "States": {
            EVENT_NAME: {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"TaskToken.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }


def _create_queue(endpoint: str) -> str:
    import boto3

    sqs = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return str(sqs.create_queue(QueueName="turnout-conformance")["QueueUrl"])


def _step_functions_component(folder: Path, endpoint: str) -> dict[str, Any]:
    return component(
        "sfn",
        "workflow.aws.stepfunctions",
        {
            "region": "us-east-1",
            "endpoint": endpoint,
            "accessKey": "testing",
            "secretKey": "testing",
            "roleArn": "arn:aws:iam::123456789012:role/turnout",
            "definitions": str(folder / "*.asl.json"),
        },
    )


@asynccontextmanager
async def aws_stepfunctions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ConformanceTarget]:
    """workflow.aws.stepfunctions against moto's server, with state machines created from ASL files."""
    folder = tmp_path / "asl"
    folder.mkdir()
    for name, definition in STEP_FUNCTIONS_DEFINITIONS.items():
        (folder / f"{name}.asl.json").write_text(json.dumps(definition), encoding="utf-8")
    resources = write_components(tmp_path, _step_functions_component(folder, "http://127.0.0.1:1"))
    skip_if_not_implemented(tmp_path, resources, "workflow.aws.stepfunctions")
    endpoint = request.getfixturevalue("moto_endpoint")  # skips, or fails in CI, without moto
    queue_url = await asyncio.to_thread(_create_queue, endpoint)
    (folder / "conformance_waiter.asl.json").write_text(
        json.dumps(_waiter_definition(queue_url)), encoding="utf-8"
    )
    resources = write_components(tmp_path, _step_functions_component(folder, endpoint))

    def server() -> str | None:
        return None if reachable(endpoint) else f"no moto server at {endpoint}"

    async with serve(
        tmp_path, resources, component_type="workflow.aws.stepfunctions", server=server
    ) as served:
        yield ConformanceTarget(
            served.client,
            echo="conformance_echo",
            sleeper="conformance_sleeper",
            failing="conformance_failing",
            waiter="conformance_waiter",
            timeout=30.0,
            restart=served.restart,
            reasons={
                "activity": "Step Functions runs no Turnout code",
                "custom_status": "Step Functions has no custom status",
                "parent": "no child-execution recipe yet",
            },
        )


@asynccontextmanager
async def logicapps(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
    """workflow.azure.logicapps against tests/logicapps' local double of the ARM API (no Azure account).

    The Logic Apps workflows that play the roles, and the way to start the
    double, belong to the adapter's own tests (tests/logicapps/support.py);
    this recipe reuses them rather than keep a second copy.
    """
    placeholder = component(
        "logicapps",
        "workflow.azure.logicapps",
        {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "conformance"},
    )
    skip_if_not_implemented(tmp_path, write_components(tmp_path, placeholder), "workflow.azure.logicapps")
    from logicapps.support import runtime_target  # tests/logicapps, a package beside this one

    double = request.getfixturevalue("arm_double")
    with pytest.MonkeyPatch.context() as patch:
        # azure-identity reads its token endpoint from here when the credential is made.
        patch.setenv("AZURE_AUTHORITY_HOST", double.base_url)
        async with runtime_target(double, tmp_path / "logicapps") as target:
            yield target


RECIPES: dict[str, list[tuple[str, Opener]]] = {
    "workflow.builtin": [
        ("builtin", builtin_default),
        ("builtin-replay", builtin_replay),
        ("dapr-alias-sqlite", dapr_alias_sqlite),
        ("builtin-postgresql", builtin_postgresql),
    ],
    "workflow.example": [("example", example)],
    "workflow.temporal": [("temporal", temporal)],
    "workflow.aws.stepfunctions": [("aws-stepfunctions", aws_stepfunctions)],
    "workflow.azure.logicapps": [("logicapps", logicapps)],
}
"""Recipes by component type (the registered type, not an alias)."""


def _no_recipe(component_type: str, distribution: str) -> Opener:
    @asynccontextmanager
    async def skip(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConformanceTarget]:
        pytest.skip(
            f"{component_type} (from {distribution}) is installed but has no conformance recipe: "
            "add one to tests/conformance/workflow_targets.py"
        )
        yield  # pragma: no cover - unreachable, makes this an async generator

    return skip


def installed_workflow_types() -> dict[str, str]:
    """Every installed workflow component type (plus the template's), with its distribution."""
    plugin = template_plugin()
    registry = load_registry(extra_plugins=(plugin,) if plugin is not None else ())
    return {t.type: t.distribution for t in registry if t.kind is ComponentKind.WORKFLOW}


def recipes() -> list[Recipe]:
    """One recipe or more for each installed workflow type; a type without one gets a skip."""
    found = []
    for component_type, distribution in sorted(installed_workflow_types().items()):
        known = RECIPES.get(component_type) or [(component_type, _no_recipe(component_type, distribution))]
        found.extend(Recipe(recipe_id, component_type, opener) for recipe_id, opener in known)
    return found
