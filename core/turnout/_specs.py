"""Component YAML: read Dapr's component files, validate them, build the components.

Dapr's format as it is (``apiVersion: dapr.io/v1alpha1``, ``kind: Component``),
several documents per file, one file or a folder. Everything is checked before
anything is created, so nothing starts half-configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ._errors import ComponentError
from ._registry import ComponentContext, ComponentKind, ComponentRegistry, ComponentType


@dataclass(frozen=True)
class MetadataItem:
    """One ``spec.metadata`` entry: a plain value, a ``secretKeyRef`` or an ``envRef``."""

    name: str
    value: Any = None
    secret_name: str | None = None
    secret_key: str | None = None
    env_ref: str | None = None


@dataclass(frozen=True)
class ComponentSpec:
    """One component document, checked for shape and type but not yet for metadata."""

    name: str
    type: str
    component_type: ComponentType
    version: str = "v1"
    file: str | None = None
    metadata: tuple[MetadataItem, ...] = ()
    secret_store: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_specs(path: str | os.PathLike[str], registry: ComponentRegistry) -> list[ComponentSpec]:
    """Every component in a YAML file or a folder of them (``*.yaml`` and ``*.yml``)."""
    root = Path(path)
    if not root.exists():
        raise ComponentError(f"no such file or folder: {root}")
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml")) if root.is_dir() else [root]
    specs: list[ComponentSpec] = []
    seen: dict[str, str] = {}
    for file in files:
        for spec in _read_file(file, registry):
            if spec.name in seen:
                raise ComponentError(
                    f"duplicate component name '{spec.name}' (first defined in {seen[spec.name]})",
                    file=spec.file,
                    component=spec.name,
                    field="metadata.name",
                )
            seen[spec.name] = str(file)
            specs.append(spec)
    return specs


def _read_file(file: Path, registry: ComponentRegistry) -> list[ComponentSpec]:
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as exc:
        raise ComponentError(f"not valid YAML: {exc}", file=str(file)) from exc
    specs = []
    for doc in documents:
        if not isinstance(doc, dict):
            raise ComponentError("each YAML document must be a mapping", file=str(file))
        if doc.get("kind") != "Component":
            continue
        specs.append(_parse_document(doc, str(file), registry))
    return specs


def _parse_document(doc: dict[str, Any], file: str, registry: ComponentRegistry) -> ComponentSpec:
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ComponentError("missing component name", file=file, field="metadata.name")
    spec = doc.get("spec") or {}
    type_name = spec.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ComponentError("missing component type", file=file, component=name, field="spec.type")
    try:
        component_type = registry.lookup(type_name)
    except ComponentError as exc:
        raise ComponentError(exc.reason, file=file, component=name, field="spec.type") from None
    items = []
    for index, raw in enumerate(spec.get("metadata") or []):
        where = f"spec.metadata[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ComponentError("each metadata entry needs a 'name'", file=file, component=name, field=where)
        ref = raw.get("secretKeyRef")
        items.append(
            MetadataItem(
                name=raw["name"],
                value=raw.get("value"),
                secret_name=ref.get("name") if isinstance(ref, dict) else None,
                secret_key=(ref.get("key") or ref.get("name")) if isinstance(ref, dict) else None,
                env_ref=raw.get("envRef"),
            )
        )
    auth = doc.get("auth") or {}
    return ComponentSpec(
        name=name,
        type=type_name,
        component_type=component_type,
        version=str(spec.get("version") or "v1"),
        file=file,
        metadata=tuple(items),
        secret_store=auth.get("secretStore"),
    )


def validate_metadata(
    spec: ComponentSpec, values: dict[str, Any]
) -> BaseModel:
    """The component's metadata as its plugin's pydantic model, or a ComponentError naming the field."""
    model = spec.component_type.metadata_model
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "metadata"
        raise ComponentError(first["msg"], file=spec.file, component=spec.name, field=loc) from None


def build_components(
    specs: list[ComponentSpec],
    *,
    working_dir: Path,
    workflows: Any,
) -> dict[str, tuple[ComponentSpec, Any]]:
    """Create every component: secret stores, then state stores, then workflow components."""
    built: dict[str, tuple[ComponentSpec, Any]] = {}
    order = [ComponentKind.SECRET_STORE, ComponentKind.STATE, ComponentKind.WORKFLOW]

    def resolve(name: str, kind: ComponentKind) -> Any:
        found = built.get(name)
        if found is None or found[0].component_type.kind is not kind:
            raise ComponentError(f"no {kind.value} component named '{name}'")
        return found[1]

    for kind in order:
        for spec in specs:
            if spec.component_type.kind is not kind:
                continue
            values: dict[str, Any] = {}
            for item in spec.metadata:
                if item.env_ref:
                    values[item.name] = os.environ.get(item.env_ref)
                elif item.secret_name:
                    store = resolve(spec.secret_store or "", ComponentKind.SECRET_STORE)
                    values[item.name] = store.get_secret(item.secret_name)[item.secret_key]
                else:
                    values[item.name] = item.value
            metadata = validate_metadata(spec, values)
            context = ComponentContext(
                name=spec.name,
                component_type=spec.component_type.type,
                file=spec.file,
                working_dir=working_dir,
                workflows=workflows,
                resolve=resolve,
            )
            built[spec.name] = (spec, spec.component_type.factory(metadata, context))
    return built
