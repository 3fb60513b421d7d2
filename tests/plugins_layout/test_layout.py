"""Every folder under plugins/ is a complete, registered and documented plugin.

A folder is complete when it has a README.md, a package with ``_plugin.py``,
and a pyproject.toml whose ``turnout.plugins`` entry point names that module;
the built-in engine is the one exception to "its own pyproject", because it
ships inside the core distribution (DESIGN.md), so the root pyproject declares
its entry point. The registry loaded from the installed entry points must
then hold exactly the types Turnout documents.
"""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from pydantic import BaseModel

from turnout import ComponentRegistry
from turnout._plugins import ENTRY_POINT_GROUP, PLUGINS_ENV, load_registry

from .conftest import PLUGINS, ROOT, TEMPLATE

EMBEDDED_IN_CORE = {"builtin"}
"""Plugin folders shipped by the root distribution rather than their own."""

EXPECTED_TYPES = {
    "workflow.builtin",
    "workflow.temporal",
    "workflow.aws.stepfunctions",
    "workflow.azure.logicapps",
    "state.sqlite",
    "state.postgresql",
    "secretstores.local.env",
    "secretstores.local.file",
}
EXPECTED_ALIASES = {"workflow.dapr": "workflow.builtin"}


@dataclass(frozen=True)
class PluginFolder:
    """What a folder under plugins/ declares."""

    folder: Path
    pyproject: Path
    distribution: str
    entry_point: str
    module: str

    @property
    def package(self) -> str:
        return self.module.split(".", 1)[0]


def _plugin_folders() -> list[Path]:
    return sorted(
        p
        for p in PLUGINS.iterdir()
        if p.is_dir() and not p.name.startswith(("_", ".")) and p.name != "__pycache__"
    )


def _declared(folder: Path) -> PluginFolder:
    """The entry point that registers ``folder``'s package, read from the pyproject that ships it."""
    pyproject = ROOT / "pyproject.toml" if folder.name in EMBEDDED_IN_CORE else folder / "pyproject.toml"
    assert pyproject.is_file(), f"{folder.relative_to(ROOT)} has no pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    group = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    matches = [(name, value) for name, value in group.items() if value.split(".", 1)[0] in packages]
    assert len(matches) == 1, (
        f"{pyproject.relative_to(ROOT)} must declare one '{ENTRY_POINT_GROUP}' entry point for the package "
        f"in {folder.relative_to(ROOT)} (packages {sorted(packages)}, entry points {group})"
    )
    name, value = matches[0]
    return PluginFolder(folder, pyproject, project["name"], name, value)


def _registry_of(monkeypatch: pytest.MonkeyPatch, entry_point: str | None) -> ComponentRegistry:
    if entry_point is None:
        monkeypatch.delenv(PLUGINS_ENV, raising=False)
    else:
        monkeypatch.setenv(PLUGINS_ENV, entry_point)
    return load_registry()


FOLDERS = _plugin_folders()


def test_plugin_folders_exist() -> None:
    names = {p.name for p in FOLDERS}
    assert {"builtin", "temporal", "aws_stepfunctions", "logicapps"} <= names


@pytest.mark.parametrize("folder", [*FOLDERS, TEMPLATE], ids=lambda p: p.name)
def test_folder_is_complete(folder: Path) -> None:
    declared = _declared(folder)
    assert (folder / "README.md").is_file(), f"{folder.relative_to(ROOT)} has no README.md"
    assert declared.module == f"{declared.package}._plugin", (
        "the entry point names the package's _plugin module"
    )
    plugin_file = folder / declared.package / "_plugin.py"
    assert plugin_file.is_file(), f"{plugin_file.relative_to(ROOT)} is missing"
    assert "@hookimpl" in plugin_file.read_text(encoding="utf-8")
    assert "turnout_register_components" in plugin_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "folder", [p for p in FOLDERS if p.name not in EMBEDDED_IN_CORE], ids=lambda p: p.name
)
def test_adapter_pyproject(folder: Path) -> None:
    """Adapters are their own distributions, installable alone, without their engine's SDK yet."""
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "hatchling.build"
    meta = project["project"]
    assert meta["name"].startswith("turnout-")
    assert meta["requires-python"] == ">=3.11"
    assert meta["readme"] == "README.md"
    requirements = {req.split(">", 1)[0].split("=", 1)[0].strip().lower() for req in meta["dependencies"]}
    assert {"turnout", "pydantic"} <= requirements
    assert any(req.replace(" ", "").startswith("turnout>=0.1") for req in meta["dependencies"])


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_entry_point_is_installed_from_this_folder(folder: Path) -> None:
    declared = _declared(folder)
    installed = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared.entry_point in installed, (
        f"entry point '{declared.entry_point}' of {declared.distribution} is not installed; run "
        f"'pip install -e {folder.relative_to(ROOT)}' (or 'make venv')"
    )
    assert installed[declared.entry_point].value == declared.module
    spec = importlib.util.find_spec(declared.package)
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve().is_relative_to(folder.resolve()), (
        f"{declared.package} is imported from {spec.origin}, not from {folder}"
    )


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_folder_registers_types_through_its_entry_point(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = _declared(folder)
    registry = _registry_of(monkeypatch, declared.entry_point)
    types = list(registry)
    assert types, f"entry point '{declared.entry_point}' registered no component type"
    for component_type in types:
        assert component_type.distribution == declared.distribution, component_type.type


@pytest.mark.parametrize("folder", [*FOLDERS, TEMPLATE], ids=lambda p: p.name)
def test_readme_documents_every_metadata_field(
    folder: Path, monkeypatch: pytest.MonkeyPatch, template_plugin: object
) -> None:
    declared = _declared(folder)
    if folder == TEMPLATE:
        monkeypatch.setenv(PLUGINS_ENV, "")
        registry = load_registry(extra_plugins=(template_plugin,))
    else:
        registry = _registry_of(monkeypatch, declared.entry_point)
    readme_file = folder / "README.md"
    assert readme_file.is_file(), f"{folder.relative_to(ROOT)} has no README.md"
    readme = readme_file.read_text(encoding="utf-8")
    for component_type in registry:
        assert f"`{component_type.type}`" in readme, f"README does not name {component_type.type}"
        for name, info in component_type.metadata_model.model_fields.items():
            field = info.alias or name
            assert f"`{field}`" in readme, (
                f"{folder.name}/README.md does not document {component_type.type} {field}"
            )


def test_registry_shows_exactly_the_documented_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``turnout components list`` shows with every plugin of this repository installed."""
    registry = _registry_of(monkeypatch, None)
    types = {t.type for t in registry}
    missing = sorted(EXPECTED_TYPES - types)
    unexpected = sorted(types - EXPECTED_TYPES)
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    aliases = {name: registry.lookup(name).type for name in registry.names() if name not in types}
    assert aliases == EXPECTED_ALIASES


def test_every_metadata_field_has_a_description(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model is the documentation: ``turnout components describe`` prints these."""
    registry = _registry_of(monkeypatch, None)
    undocumented = []
    for component_type in registry:
        assert component_type.description, f"{component_type.type} has no description"
        model: type[BaseModel] = component_type.metadata_model
        assert model.model_config.get("extra") == "forbid", f"{component_type.type} accepts unknown fields"
        undocumented += [
            f"{component_type.type}: {info.alias or name}"
            for name, info in model.model_fields.items()
            if not (info.description or "").strip()
        ]
    assert not undocumented, f"fields without a description: {undocumented}"
