"""Servers for the tests: uvicorn in a thread, or ``turnout serve`` as a process, on a free loopback port.

Both listen on port 0 and report the port they got once they listen, so no
test guesses a free port or sleeps: it waits for that report.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from child_process import ChildProcess
from pydantic import BaseModel, ConfigDict

from turnout import (
    AsyncRuntime,
    ComponentContext,
    ComponentRegistry,
    ComponentType,
    EngineError,
    Feature,
    StartRequest,
    WorkflowComponent,
    Workflows,
    WorkflowState,
    hookimpl,
)
from turnout._plugins import load_registry
from turnout._server._app import create_app, server_state_of
from turnout._server._config import ServerConfig
from turnout._server._runner import DrainingServer, ServeOptions, uvicorn_config

from . import flows

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "plugins" / "_template"
FLOWS = Path(__file__).with_name("flows.py")
TURNOUT = str(Path(sys.executable).with_name("turnout"))
STARTUP_TIMEOUT = 30.0

BUILTIN_YAML = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: workflow.builtin
  version: v1
"""

EXAMPLE_YAML = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: example
spec:
  type: workflow.example
  version: v1
  metadata:
  - name: workflows
    value: {greet: echo, broken: fail, forever: sleep}
"""


BROKEN_YAML = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: broken
spec:
  type: workflow.broken
  version: v1
"""


class BrokenMetadata(BaseModel):
    """``workflow.broken`` takes no metadata."""

    model_config = ConfigDict(extra="forbid")


class BrokenComponent(WorkflowComponent):
    """An engine whose every call fails, as an unreachable engine does (get fails as a bug would)."""

    features = frozenset(Feature)

    def _fail(self, operation: str) -> EngineError:
        return EngineError(self.component_type, operation, "connection refused (on purpose)")

    async def start(self, request: StartRequest) -> str:
        raise self._fail("start")

    async def get(self, instance_id: str) -> WorkflowState | None:
        raise RuntimeError("a bug in the engine adapter (on purpose)")

    async def terminate(self, instance_id: str, reason: str | None = None) -> None:
        raise self._fail("terminate")

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        raise self._fail("raise_event")

    async def pause(self, instance_id: str, reason: str | None = None) -> None:
        raise self._fail("pause")

    async def resume(self, instance_id: str, reason: str | None = None) -> None:
        raise self._fail("resume")

    async def purge(self, instance_id: str) -> None:
        raise self._fail("purge")


class BrokenPlugin:
    """Registers ``workflow.broken`` (tests only)."""

    @hookimpl
    def turnout_register_components(self, registry: ComponentRegistry) -> None:
        def create(metadata: BaseModel, context: ComponentContext) -> BrokenComponent:
            return BrokenComponent()

        registry.register(
            ComponentType(
                type="workflow.broken", metadata_model=BrokenMetadata, factory=create, distribution="tests"
            )
        )


def new_id(prefix: str = "t") -> str:
    """A fresh instance id that Dapr's rules accept."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_components(
    folder: Path, *, example: bool = False, broken: bool = False, builtin_name: str = "dapr"
) -> Path:
    """A resources folder: the built-in engine (``dapr``), optionally the template's and a broken one."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "builtin.yaml").write_text(BUILTIN_YAML.format(name=builtin_name))
    if example:
        (folder / "example.yaml").write_text(EXAMPLE_YAML)
    if broken:
        (folder / "broken.yaml").write_text(BROKEN_YAML)
    return folder


def template_plugin() -> ModuleType:
    """The adapter template's plugin module (never installed; imported from plugins/_template)."""
    if str(TEMPLATE) not in sys.path:
        sys.path.insert(0, str(TEMPLATE))
    return importlib.import_module("turnout_example._plugin")


class LiveServer:
    """The application served by uvicorn in a background thread, on a free loopback port."""

    def __init__(
        self,
        resources: Path | None,
        working_dir: Path,
        *,
        workflows: Workflows | None = flows.wf,
        registry: ComponentRegistry | None = None,
        config: ServerConfig | None = None,
        options: ServeOptions | None = None,
    ) -> None:
        self.resources = resources
        self.working_dir = working_dir
        self.workflows = workflows
        self.registry = registry
        self.config = config or ServerConfig()
        self.options = options or ServeOptions()
        self.options.host, self.options.port = "127.0.0.1", 0
        self.port = 0
        self.error: BaseException | None = None
        self.server: DrainingServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="live-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.options.scheme}://127.0.0.1:{self.port}"

    async def _main(self) -> None:
        try:
            runtime = AsyncRuntime(
                self.resources, self.workflows, working_dir=self.working_dir, registry=self.registry
            )
            await runtime.start()
            try:
                app = create_app(runtime, self.config)
                state = server_state_of(app)
                self.loop = asyncio.get_running_loop()
                state.bind_loop(self.loop)
                server = DrainingServer(uvicorn_config(app, self.options, configure_logging=False), state)
                server.on_started = self._started
                self.server = server
                await server.serve()
            finally:
                await runtime.aclose()
        except BaseException as exc:  # reported by start() or stop()
            self.error = exc
        finally:
            self._ready.set()

    def _started(self, server: DrainingServer) -> None:
        self.port = server.bound_port()
        self._ready.set()

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise TimeoutError(f"the server did not start within {STARTUP_TIMEOUT}s")
        if self.error is not None or not self.port:
            raise RuntimeError(f"the server did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self.server is not None and self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.stop)
        self._thread.join(STARTUP_TIMEOUT)
        assert not self._thread.is_alive(), "the server did not stop"

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, **kwargs)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServeProcess(ChildProcess):
    """``turnout serve`` as a child process, on a free port it reports on stdout."""

    SERVING = re.compile(r"serving the workflow API on (\S+)")
    TIMEOUT = STARTUP_TIMEOUT

    def __init__(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        super().__init__([TURNOUT, "serve", "--http-port", "0", *args], cwd=cwd, env=env)
        self.url = ""

    def start(self) -> ServeProcess:
        """Start it and wait for its "serving" line."""
        self.spawn()
        self.url = self.wait_for(self.SERVING.pattern).group(1)
        return self

    def run_to_exit(self, timeout: float = STARTUP_TIMEOUT) -> int:
        """Run a command that is expected to exit by itself (a refused start); its exit status."""
        self.spawn()
        return self.wait(timeout)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def registry_with_template() -> ComponentRegistry:
    """The installed plugins (as tests/conftest.py allows), ``workflow.example`` and ``workflow.broken``."""
    return load_registry(extra_plugins=(template_plugin(), BrokenPlugin()))


@pytest.fixture(scope="session")
def live(
    tmp_path_factory: pytest.TempPathFactory, registry_with_template: ComponentRegistry
) -> Iterator[LiveServer]:
    """One server for the route tests: ``dapr`` (built-in), ``example`` (few features), ``broken`` (fails)."""
    folder = tmp_path_factory.mktemp("live")
    resources = write_components(folder / "components", example=True, broken=True)
    with LiveServer(resources, folder, registry=registry_with_template) as server:
        yield server


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    """A client of the shared server."""
    with live.client() as client:
        yield client
