"""Fixtures for the component-file tests: a registry of the core's own plugins only.

The tests see the built-in engine's types and the secret stores, whatever
else is installed (``TURNOUT_PLUGINS``). For building, the engine's factories
are swapped for recorders, so these tests check the loader, not the engine.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel

from turnout import ComponentContext, ComponentKind, ComponentRegistry
from turnout._plugins import load_registry

CORE_PLUGINS = "builtin,secretstores"


@pytest.fixture
def core_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the core's plugins load in this test, for the CLI as well."""
    monkeypatch.setenv("TURNOUT_PLUGINS", CORE_PLUGINS)


@pytest.fixture
def component_registry(core_plugins: None) -> ComponentRegistry:
    """The component types of the built-in engine and the secret stores."""
    return load_registry()


@dataclass
class Built:
    """What a recording factory returns: the validated metadata and the context it was given."""

    metadata: BaseModel
    context: ComponentContext


@pytest.fixture
def built_log() -> list[str]:
    """Names of the components the recording factories created, in order."""
    return []


@pytest.fixture
def recording_registry(component_registry: ComponentRegistry, built_log: list[str]) -> ComponentRegistry:
    """The same types, but workflow and state factories record their call instead of starting an engine."""

    def recorder(metadata: BaseModel, context: ComponentContext) -> Built:
        built_log.append(context.name)
        return Built(metadata, context)

    registry = ComponentRegistry()
    for component_type in component_registry:
        if component_type.kind is not ComponentKind.SECRET_STORE:
            component_type = dataclasses.replace(component_type, factory=recorder)
        registry.register(component_type)
    return registry


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a (dedented) file under tmp_path, which is also the current folder; returns its relative path."""
    monkeypatch.chdir(tmp_path)

    def write_file(name: str, text: str) -> Path:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write_file
