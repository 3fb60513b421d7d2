"""Shared helpers for the tests of the plugin folders: paths, component files, registries."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from turnout import ComponentContext, ComponentError, ComponentRegistry, ComponentType, hookimpl
from turnout._build import build_components, validate_specs
from turnout._plugins import PLUGINS_ENV, load_registry
from turnout._specs import read_specs

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
TEMPLATE = PLUGINS / "_template"


def component_yaml(
    component_type: str,
    metadata: dict[str, Any],
    *,
    name: str = "wf",
    secrets: dict[str, str] | None = None,
) -> str:
    """A Dapr component document; ``secrets`` names fields read through a secretKeyRef."""
    items: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in metadata.items()]
    doc: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": component_type, "version": "v1", "metadata": items},
    }
    if secrets:
        items.extend({"name": key, "secretKeyRef": {"name": key, "key": key}} for key in secrets)
        store = {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "vault"},
            "spec": {
                "type": "secretstores.test.memory",
                "version": "v1",
                "metadata": [{"name": "secrets", "value": dict(secrets)}],
            },
        }
        doc["auth"] = {"secretStore": "vault"}
        return yaml.safe_dump_all([store, doc], sort_keys=False)
    return yaml.safe_dump(doc, sort_keys=False)


def build(path: Path, registry: ComponentRegistry) -> dict[str, Any]:
    """Read, validate and build every component in ``path``, as the runtime does at start-up."""
    built = build_components(read_specs(path, registry), working_dir=path.parent, workflows=None)
    return {name: component for name, (_spec, component) in built.items()}


def refusal(tmp_path: Path, registry: ComponentRegistry, text: str) -> ComponentError:
    """The one ComponentError that building the component file ``text`` ends with."""
    path = tmp_path / "component.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ComponentError) as caught:
        build(path, registry)
    found = problems(caught.value)
    assert len(found) == 1, f"expected one problem, got: {caught.value}"
    return found[0]


def problems(error: ComponentError) -> list[ComponentError]:
    """Each problem of an error that may list several (``ComponentErrors``)."""
    return list(getattr(error, "errors", None) or [error])


NOT_IMPLEMENTED = "engine calls are not implemented in this version yet"
"""What the adapters' factories say until their engine calls land."""


def expect_valid(
    tmp_path: Path,
    registry: ComponentRegistry,
    component_type: str,
    metadata: dict[str, Any],
    *,
    secrets: dict[str, str] | None = None,
) -> Any:
    """Valid metadata: every check passes (secrets resolved); returns the validated model.

    Building is left to each adapter's own tests: it connects to the engine.
    """
    (tmp_path / "component.yaml").write_text(component_yaml(component_type, metadata, secrets=secrets))
    specs = read_specs(tmp_path / "component.yaml", registry)
    return validate_specs(specs, working_dir=tmp_path)["wf"]


def expect_invalid(
    tmp_path: Path,
    registry: ComponentRegistry,
    component_type: str,
    metadata: dict[str, Any],
    field: str,
    fragment: str,
    *,
    secrets: dict[str, str] | None = None,
) -> ComponentError:
    """Invalid metadata: refused before the factory runs, naming the file, the field and the reason."""
    error = refusal(tmp_path, registry, component_yaml(component_type, metadata, secrets=secrets))
    assert NOT_IMPLEMENTED not in error.reason
    assert error.file == str(tmp_path / "component.yaml")
    assert error.component == "wf"
    assert error.field == f"spec.metadata.{field}", error.message
    assert fragment in error.reason, error.message
    return error


class MemorySecretsMetadata(BaseModel):
    """``secretstores.test.memory``: secrets given inline (tests only)."""

    model_config = ConfigDict(extra="forbid")

    secrets: dict[str, str] = Field(default_factory=dict, description="The secrets by name.")


class MemorySecretStore:
    """A secret store over a dictionary, so that secretKeyRef can be tested without a real store."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self._secrets = secrets

    def get_secret(self, name: str) -> dict[str, str]:
        return {name: self._secrets[name]}


class MemorySecretsPlugin:
    """A test-only plugin registering ``secretstores.test.memory``."""

    @hookimpl
    def turnout_register_components(self, registry: ComponentRegistry) -> None:
        def create(metadata: BaseModel, context: ComponentContext) -> MemorySecretStore:
            assert isinstance(metadata, MemorySecretsMetadata)
            return MemorySecretStore(metadata.secrets)

        registry.register(
            ComponentType(
                type="secretstores.test.memory",
                metadata_model=MemorySecretsMetadata,
                factory=create,
                distribution="tests",
            )
        )


@pytest.fixture
def adapter_registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A function: the registry with one installed plugin (by entry-point name) and the test secret store."""

    def load(entry_point: str) -> ComponentRegistry:
        monkeypatch.setenv(PLUGINS_ENV, entry_point)
        return load_registry(extra_plugins=(MemorySecretsPlugin(),))

    return load


@pytest.fixture
def template_plugin(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The template's plugin module, imported from plugins/_template (it is never installed)."""
    monkeypatch.syspath_prepend(str(TEMPLATE))
    return importlib.import_module("turnout_example._plugin")


@pytest.fixture
def template_registry(monkeypatch: pytest.MonkeyPatch, template_plugin: ModuleType) -> ComponentRegistry:
    """The template's type alone: no installed plugin loads (TURNOUT_PLUGINS is empty)."""
    monkeypatch.setenv(PLUGINS_ENV, "")
    return load_registry(extra_plugins=(template_plugin,))
