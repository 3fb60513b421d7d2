"""The adapter template (plugins/_template) is a working adapter: load it, run it, copy it.

It is never installed: the tests put plugins/_template on sys.path and pass its
plugin module to ``load_registry(extra_plugins=...)``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import re
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import turnout
from turnout import AsyncRuntime, AsyncWorkflowClient, ComponentRegistry, Feature, RuntimeStatus
from turnout._plugins import PLUGINS_ENV, load_registry

from .conftest import TEMPLATE, component_yaml, expect_invalid

TYPE = "workflow.example"
WORKFLOWS = {"greet": "echo", "broken": "fail", "forever": "sleep"}


@pytest.fixture
async def client(tmp_path: Path, template_registry: ComponentRegistry) -> AsyncIterator[AsyncWorkflowClient]:
    path = tmp_path / "example.yaml"
    path.write_text(
        component_yaml(TYPE, {"workflows": WORKFLOWS, "failureMessage": "broke on purpose"}, name="ex")
    )
    async with AsyncRuntime(resources=path, registry=template_registry, working_dir=tmp_path) as rt:
        yield rt.client()


def test_template_is_not_installed() -> None:
    """The Makefile must not install the template; only tests (and curious developers) load it."""
    assert "turnout_example" not in {
        ep.value.split(".")[0] for ep in importlib.metadata.entry_points(group="turnout.plugins")
    }
    assert "plugins/_template" not in (TEMPLATE.parents[1] / "Makefile").read_text()


def test_registers_one_type(template_registry: ComponentRegistry) -> None:
    found = template_registry.lookup(TYPE)
    assert found.distribution == "turnout-example"
    assert found.kind is turnout.ComponentKind.WORKFLOW
    assert [t.type for t in template_registry] == [TYPE]


async def test_declares_list_terminate_purge_only(client: AsyncWorkflowClient) -> None:
    assert client.features == frozenset({Feature.LIST, Feature.TERMINATE, Feature.PURGE})
    assert isinstance(client.component, turnout.WorkflowComponent)
    assert client.component.component_type == TYPE
    assert client.component.name == "ex"


async def test_echo_completes_with_its_input(client: AsyncWorkflowClient) -> None:
    instance_id = await client.start("greet", {"name": "Ada"}, instance_id="greet-1")
    assert instance_id == "greet-1"
    state = await client.wait(instance_id, timeout=5)
    assert state.runtime_status is RuntimeStatus.COMPLETED
    assert state.output == {"name": "Ada"} == state.input
    assert state.workflow_name == "greet"
    assert state.properties["behaviour"] == "echo"


async def test_fail_fails_with_the_configured_message(client: AsyncWorkflowClient) -> None:
    state = await client.wait(await client.start("broken"), timeout=5)
    assert state.runtime_status is RuntimeStatus.FAILED
    assert state.failure is not None
    assert state.failure.message == "workflow 'broken' broke on purpose"


async def test_sleep_runs_until_terminated(client: AsyncWorkflowClient) -> None:
    instance_id = await client.start("forever")
    with pytest.raises(turnout.WaitTimeout) as caught:
        await client.wait(instance_id, timeout=0.05)
    assert caught.value.state.runtime_status is RuntimeStatus.RUNNING

    await client.terminate(instance_id, reason="enough")
    state = await client.get(instance_id)
    assert state is not None and state.runtime_status is RuntimeStatus.TERMINATED
    assert state.properties["terminate_reason"] == "enough"
    await client.terminate(instance_id)  # a finished instance is left as it is
    assert (await client.get(instance_id)).runtime_status is RuntimeStatus.TERMINATED


async def test_get_returns_a_copy(client: AsyncWorkflowClient) -> None:
    instance_id = await client.start("greet", {"n": 1})
    state = await client.get(instance_id)
    state.output["n"] = 2
    assert (await client.get(instance_id)).output == {"n": 1}


async def test_list_filters_and_pages_newest_first(client: AsyncWorkflowClient) -> None:
    ids = [
        await client.start(name, instance_id=f"i{n}")
        for n, name in enumerate(["greet", "broken", "forever"] * 2)
    ]

    everything = await client.list()
    assert [s.instance_id for s in everything] == ids[::-1]
    assert everything.next_page_token is None

    running = await client.list(status="RUNNING")
    assert [s.instance_id for s in running] == ["i5", "i2"]
    finished = await client.list(status=[RuntimeStatus.COMPLETED, RuntimeStatus.FAILED])
    assert [s.instance_id for s in finished] == ["i4", "i3", "i1", "i0"]
    assert [s.instance_id for s in await client.list(workflow_name="greet")] == ["i3", "i0"]

    first = await client.list(limit=4)
    assert [s.instance_id for s in first] == ["i5", "i4", "i3", "i2"]
    second = await client.list(limit=4, page_token=first.next_page_token)
    assert [s.instance_id for s in second] == ["i1", "i0"]
    assert second.next_page_token is None
    with pytest.raises(turnout.InvalidArgument):
        await client.list(page_token="not-a-token")


async def test_list_by_creation_time(client: AsyncWorkflowClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await client.start("greet", instance_id="early")
    page = await client.component.list(turnout.ListQuery(created_from=before))
    assert [s.instance_id for s in page] == ["early"]
    page = await client.component.list(turnout.ListQuery(created_to=before))
    assert len(page) == 0


async def test_purge_forgets_finished_instances_only(client: AsyncWorkflowClient) -> None:
    done = await client.start("greet")
    await client.purge(done)
    assert await client.get(done) is None
    with pytest.raises(turnout.InstanceNotFound):
        await client.purge(done)

    running = await client.start("forever")
    with pytest.raises(turnout.InvalidState) as caught:
        await client.purge(running)
    assert (caught.value.operation, caught.value.status) == ("purge", "RUNNING")


async def test_start_refuses_taken_ids_and_unknown_workflows(client: AsyncWorkflowClient) -> None:
    await client.start("greet", instance_id="once")
    with pytest.raises(turnout.InstanceExists) as caught:
        await client.start("greet", instance_id="once")
    assert caught.value.status == "COMPLETED"

    with pytest.raises(turnout.WorkflowNotRegistered) as unknown:
        await client.start("missing")
    assert set(unknown.value.registered) == set(WORKFLOWS)

    with pytest.raises(turnout.InstanceNotFound):
        await client.terminate("nobody")


@pytest.mark.parametrize(
    ("operation", "feature"),
    [
        ("pause", "pause"),
        ("resume", "pause"),
        ("cancel", "cancel"),
        ("raise_event", "raise_event"),
        ("history", "history"),
    ],
)
async def test_undeclared_operations_are_refused(
    client: AsyncWorkflowClient, operation: str, feature: str
) -> None:
    instance_id = await client.start("forever")
    args: tuple[Any, ...] = (instance_id, "approved") if operation == "raise_event" else (instance_id,)
    with pytest.raises(turnout.Unsupported) as caught:
        await getattr(client, operation)(*args)
    assert caught.value.component_type == TYPE
    assert caught.value.operation == feature
    assert f"component type '{TYPE}' does not support '{feature}'" in str(caught.value)
    assert caught.value.reason  # unsupported_reasons says why
    assert (await client.get(instance_id)).runtime_status is RuntimeStatus.RUNNING


async def test_scheduled_and_replacing_starts_are_refused(client: AsyncWorkflowClient) -> None:
    with pytest.raises(turnout.Unsupported) as scheduled:
        await client.start("greet", start_at=timedelta(minutes=5))
    assert scheduled.value.operation == "start_at"
    with pytest.raises(turnout.Unsupported) as replacing:
        await client.start("greet", instance_id="r", replace=True)
    assert replacing.value.operation == "replace"


def test_the_sync_runtime_drives_it_too(tmp_path: Path, template_registry: ComponentRegistry) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(component_yaml(TYPE, {}, name="ex"))  # default workflows: echo, fail, sleep
    with turnout.Runtime(resources=path, registry=template_registry, working_dir=tmp_path) as rt:
        client = rt.client("ex")
        assert client.wait(client.start("echo", [1, 2]), timeout=5).output == [1, 2]
        sleeper = client.start("sleep")
        client.terminate(sleeper)
        client.purge(sleeper)
        assert client.get(sleeper) is None
        with pytest.raises(turnout.Unsupported):
            client.pause(client.start("sleep"))


@pytest.mark.parametrize(
    ("metadata", "field", "fragment"),
    [
        ({"workflows": {"greet": "shout"}}, "workflows.greet", "'echo', 'fail' or 'sleep'"),
        ({"workflows": "{oops"}, "workflows", "in YAML or JSON"),
        ({"workflows": {}}, "workflows", "at least one workflow"),
        ({"failureMessage": []}, "failureMessage", "string"),
        ({"workflow": {"a": "echo"}}, "workflow", "did you mean 'workflows'"),
    ],
)
def test_metadata_is_validated(
    tmp_path: Path, template_registry: ComponentRegistry, metadata: dict[str, Any], field: str, fragment: str
) -> None:
    expect_invalid(tmp_path, template_registry, TYPE, metadata, field, fragment)


def test_workflows_as_a_json_string(tmp_path: Path, template_registry: ComponentRegistry) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(component_yaml(TYPE, {"workflows": '{"hello": "echo"}'}, name="ex"))

    async def run() -> Any:
        async with AsyncRuntime(resources=path, registry=template_registry) as rt:
            client = rt.client()
            return await client.wait(await client.start("hello", "hi"), timeout=5)

    assert asyncio.run(run()).output == "hi"


def test_public_names(template_plugin: ModuleType) -> None:
    package = importlib.import_module("turnout_example")
    assert sorted(package.__all__) == ["Behaviour", "ExampleMetadata", "ExampleWorkflowComponent"]
    assert issubclass(package.ExampleWorkflowComponent, turnout.WorkflowComponent)
    for name, info in package.ExampleMetadata.model_fields.items():
        assert info.description, name


def _renames() -> list[tuple[str, str]]:
    """The placeholder table of the template's README, as (placeholder, replacement) pairs."""
    readme = (TEMPLATE / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", readme, flags=re.MULTILINE)
    assert rows, "the template README lost its table of placeholders"
    return rows


def test_a_renamed_copy_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Follow the README's "Make it yours" steps on a copy, then load and run the copy."""
    copy = tmp_path / "acme"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "turnout_example").rename(copy / "turnout_acme")
    for file in [p for p in copy.rglob("*") if p.is_file() and p.suffix in (".py", ".toml", ".md")]:
        text = file.read_text(encoding="utf-8")
        for placeholder, replacement in _renames():
            text = text.replace(placeholder, replacement)
        file.write_text(text, encoding="utf-8")

    leftovers = [
        f"{p.relative_to(copy)}: {word}"
        for p in copy.rglob("*")
        if p.is_file() and p.suffix in (".py", ".toml")
        for word in re.findall(r"turnout[_-]example|workflow\.example|\bExample\w*", p.read_text())
    ]
    assert not leftovers, leftovers
    assert 'acme = "turnout_acme._plugin"' in (copy / "pyproject.toml").read_text()

    monkeypatch.syspath_prepend(str(copy))
    monkeypatch.setenv(PLUGINS_ENV, "")
    try:
        plugin = importlib.import_module("turnout_acme._plugin")
        registry = load_registry(extra_plugins=(plugin,))
        assert registry.lookup("workflow.acme").distribution == "turnout-acme"
        component_file = tmp_path / "acme.yaml"
        component_file.write_text(component_yaml("workflow.acme", {"workflows": {"hello": "echo"}}))

        async def run() -> Any:
            async with AsyncRuntime(resources=component_file, registry=registry) as rt:
                client = rt.client()
                with pytest.raises(turnout.Unsupported, match=r"workflow\.acme"):
                    await client.pause("x")
                return await client.wait(await client.start("hello", 42), timeout=5)

        assert asyncio.run(run()).output == 42
    finally:
        for name in [m for m in sys.modules if m == "turnout_acme" or m.startswith("turnout_acme.")]:
            del sys.modules[name]
