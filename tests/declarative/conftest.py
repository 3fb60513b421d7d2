"""Shared fixtures: the Serverless Workflow corpus, the HTTP stub, and a runtime that runs definitions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.declarative import Definition, Settings, load_definition, register

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
