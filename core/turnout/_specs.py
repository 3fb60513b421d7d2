"""Component YAML: read Dapr's component files and check them (building is in ``_build``).

Dapr's format as it is (``apiVersion: dapr.io/v1alpha1``, ``kind: Component``),
several documents per file, one file or a folder. Every problem in every file
is collected and reported at once (:class:`ComponentErrors`), and everything is
checked before anything is created, so nothing starts half-configured.

Reading happens in three steps:

1. :func:`read_specs` parses the files and checks each document's shape, its
   type and version, its metadata entries and the references between
   components; metadata values that come from secrets are not known yet, so
   only the rest is checked against the plugin's model.
2. :func:`validate_specs` creates the secret stores (and nothing else),
   resolves every ``secretKeyRef`` and ``envRef`` and validates the full
   metadata of every component.
3. :func:`build_components` does step 2 and then calls the factories: state
   stores, then workflow components. Nothing is opened here; the runtime
   opens what was built.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ._errors import ComponentError, ComponentErrors
from ._registry import (
    KNOWN_DISTRIBUTIONS,
    ComponentKind,
    ComponentRegistry,
    ComponentType,
)

log = logging.getLogger("turnout.specs")

API_VERSION = "dapr.io/v1alpha1"
"""The only ``apiVersion`` Dapr (and so Turnout) reads for components."""

SKIPPED_KINDS = ("Configuration", "HTTPEndpoint", "Resiliency", "Subscription")
"""Other Dapr resource kinds: a Dapr resources folder may hold them, so they are skipped, not refused."""

DAPR_CATEGORIES = (
    "bindings",
    "configuration",
    "conversation",
    "crypto",
    "lock",
    "middleware",
    "nameresolution",
    "pubsub",
    "workflowbackend",
)
"""Dapr component categories that Turnout does not serve (named in the error, so users know why)."""

INITIAL_VERSIONS = frozenset({"", "v0", "v1"})
"""Versions Dapr treats as a component's first version."""

YAML_SUFFIXES = (".yaml", ".yml")

_TOP_KEYS = ("apiVersion", "kind", "metadata", "spec", "auth", "scopes")
_SPEC_KEYS = ("type", "version", "metadata", "initTimeout", "ignoreErrors")
_ITEM_KEYS = ("name", "value", "secretKeyRef", "envRef")
_SOURCES = ("value", "secretKeyRef", "envRef")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


@dataclass(frozen=True)
class MetadataItem:
    """One ``spec.metadata`` entry: a plain value, a ``secretKeyRef`` or an ``envRef``.

    ``value`` is the YAML value as written (a string, a number, a list...);
    scalars reach the plugin's model as strings, as in Dapr.
    """

    name: str
    value: Any = None
    secret_name: str | None = None
    secret_key: str | None = None
    env_ref: str | None = None


@dataclass(frozen=True)
class ComponentSpec:
    """One component document, checked for shape, type and references; metadata not yet resolved."""

    name: str
    type: str
    component_type: ComponentType
    version: str = "v1"
    file: str | None = None
    metadata: tuple[MetadataItem, ...] = ()
    secret_store: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields read but not acted on: ``scopes``, ``initTimeout``, ``ignoreErrors``, ``namespace``."""
    line: int | None = None
    """Line of the document's start in ``file``."""


@dataclass(frozen=True)
class SkippedDocument:
    """A Dapr resource of another kind (a Subscription, say) found among the components and skipped."""

    file: str
    line: int
    kind: str
    name: str | None


# ---------------------------------------------------------------------------
# Collecting problems


class _Problems:
    """Collects every problem instead of stopping at the first, to report them in file and line order."""

    def __init__(self) -> None:
        self.errors: list[ComponentError] = []
        self._positions: list[tuple[int, int]] = []
        self._files: dict[str | None, int] = {None: -1}

    def add(
        self,
        reason: str,
        *,
        file: str | None = None,
        component: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.extend([ComponentError(reason, file=file, component=component, field=field)], line=line)

    def extend(self, errors: Iterable[ComponentError], *, line: int | None = None) -> None:
        for error in errors:
            rank = self._files.setdefault(error.file, len(self._files))
            self.errors.append(error)
            self._positions.append((rank, line or 0))

    def raise_if_any(self) -> None:
        if self.errors:
            order = sorted(range(len(self.errors)), key=self._positions.__getitem__)
            raise ComponentErrors([self.errors[i] for i in order])


@dataclass
class _Where:
    """Where a document's problems are: file, component name (once known) and document line."""

    problems: _Problems
    file: str | None
    line: int | None = None
    component: str | None = None

    def add(self, reason: str, field: str | None = None) -> None:
        if self.component is None and self.line is not None:
            reason = f"{reason} (in the document at line {self.line})"
        self.problems.add(reason, file=self.file, component=self.component, field=field, line=self.line)


def _describe(value: Any) -> str:
    """A value's YAML kind, for messages: 'a list', 'a number', ..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close match, else ''."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.7)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def _keys(raw: dict[Any, Any], accepted: tuple[str, ...], where: _Where, prefix: str) -> dict[str, Any]:
    """The accepted keys of ``raw`` under their canonical spelling.

    Keys match case-insensitively, as Dapr's Go JSON decoding does (Dapr's
    docs write ``secretstore`` for ``secretStore``); unknown keys are problems.
    """
    lookup = {key.lower(): key for key in accepted}
    found: dict[str, Any] = {}
    for key, value in raw.items():
        canonical = lookup.get(str(key).lower())
        label = f"{prefix}.{key}" if prefix else str(key)
        if canonical is None:
            expected = f"one of {', '.join(accepted)}" if len(accepted) > 1 else f"'{accepted[0]}'"
            where.add(f"unknown key{_suggest(str(key), accepted)}: expected {expected}", label)
        elif canonical in found:
            where.add(f"given twice (as '{canonical}' and '{key}'; keys are case-insensitive)", label)
        else:
            found[canonical] = value
    return found


def _get(raw: Any, key: str) -> Any:
    """``raw[key]`` matched case-insensitively, or None."""
    if not isinstance(raw, dict):
        return None
    for candidate, value in raw.items():
        if str(candidate).lower() == key.lower():
            return value
    return None


# ---------------------------------------------------------------------------
# Reading files


def _documents(file: str, text: str, problems: _Problems) -> list[tuple[int, Any]]:
    """The file's non-empty documents with their first line, or [] after adding a problem."""
    # PyYAML is imported with the first file read: a runtime with no files never pays for it.
    from ._yaml_documents import YamlProblem, load_documents

    try:
        documents = load_documents(text)
    except YamlProblem as exc:
        problems.add(str(exc), file=file)
        return []
    if not documents:
        problems.add(
            "the file is empty: expected one or more component documents "
            f"(apiVersion: {API_VERSION}, kind: Component), separated by '---'",
            file=file,
        )
    return documents


def _component_files(root: Path) -> list[Path]:
    if not root.exists():
        raise ComponentErrors(
            [
                ComponentError(
                    f"no such file or folder: {root}; pass a component YAML file or a folder of them"
                )
            ]
        )
    if not root.is_dir():
        return [root]
    files = sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        raise ComponentErrors(
            [
                ComponentError(
                    f"no component files in folder {root}: expected files ending in .yaml or .yml",
                    file=str(root),
                )
            ]
        )
    return files


@dataclass
class _Parsed:
    """What one document declares, kept even when it has problems (so references to it still resolve)."""

    file: str
    line: int
    name: str | None = None
    kind: ComponentKind | None = None
    type: str | None = None
    secret_store: str | None = None
    spec: ComponentSpec | None = None
    skipped: SkippedDocument | None = None
    check: ComponentSpec | None = None
    """The document as far as it could be read, so its metadata is checked even when other parts are wrong."""
    bad_items: set[str] = field(default_factory=set)


def read_specs(
    path: str | os.PathLike[str],
    registry: ComponentRegistry,
    *,
    environ: Mapping[str, str] | None = None,
    skipped: list[SkippedDocument] | None = None,
) -> list[ComponentSpec]:
    """Every component in a YAML file or a folder of them (``*.yaml``, ``*.yml``; not sub-folders).

    Raises :class:`ComponentErrors` listing every problem in every file.
    Other Dapr kinds (Subscription, Configuration, ...) are skipped and
    appended to ``skipped`` when given. ``environ`` (default ``os.environ``)
    resolves ``envRef``.
    """
    environ = os.environ if environ is None else environ
    problems = _Problems()
    parsed: list[_Parsed] = []
    for file in _component_files(Path(path)):
        name = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.add(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", file=name)
            continue
        except OSError as exc:
            problems.add(f"cannot read the file: {exc.strerror or exc}", file=name)
            continue
        for line, document in _documents(name, text, problems):
            parsed.append(_parse_document(document, name, line, registry, problems))
    for record in parsed:
        if record.skipped is not None:
            log.info(
                "skipped %s '%s' in %s: Turnout reads only kind Component",
                record.skipped.kind,
                record.skipped.name,
                record.file,
            )
            if skipped is not None:
                skipped.append(record.skipped)
    _check_references(parsed, problems)
    for record in parsed:
        if record.check is not None:
            _metadata, errors = _validate_metadata(
                record.check, environ=environ, get_secret=None, skip=record.bad_items
            )
            if record.name is None:  # say which document, as _Where does
                errors = [
                    ComponentError(
                        f"{e.reason} (in the document at line {record.line})", file=e.file, field=e.field
                    )
                    for e in errors
                ]
            problems.extend(errors, line=record.line)
    specs = [record.spec for record in parsed if record.spec is not None]
    problems.raise_if_any()
    if not specs:
        kinds = ", ".join(sorted({r.skipped.kind for r in parsed if r.skipped is not None}))
        also = f" (only {kinds}, which Turnout skips)" if kinds else ""
        raise ComponentErrors(
            [ComponentError(f"no components found in {path}{also}: expected documents with kind: Component")]
        )
    return specs


def _parse_document(
    document: Any, file: str, line: int, registry: ComponentRegistry, problems: _Problems
) -> _Parsed:
    record = _Parsed(file=file, line=line)
    where = _Where(problems, file, line)
    start = len(problems.errors)
    if not isinstance(document, dict):
        where.add(f"expected a mapping with apiVersion, kind, metadata and spec, got {_describe(document)}")
        return record
    raw_name = _get(_get(document, "metadata"), "name")
    if isinstance(raw_name, str) and raw_name:
        where.component = raw_name
    top = _keys(document, _TOP_KEYS, where, "")
    api_version, kind = top.get("apiVersion"), top.get("kind")

    if kind is None:
        where.add("missing: expected 'kind: Component'", "kind")
    elif kind != "Component":
        if kind in SKIPPED_KINDS and isinstance(api_version, str) and api_version.startswith("dapr.io/"):
            record.skipped = SkippedDocument(file, line, kind, where.component)
            return record
        where.add(
            f"unsupported kind '{kind}'{_suggest(str(kind), ['Component'])}: "
            "Turnout reads only 'kind: Component' documents "
            f"(and skips Dapr's {', '.join(SKIPPED_KINDS)})",
            "kind",
        )
        return record
    if api_version is None:
        where.add(f"missing: expected 'apiVersion: {API_VERSION}'", "apiVersion")
    elif api_version != API_VERSION:
        where.add(f"unsupported apiVersion '{api_version}': expected {API_VERSION}", "apiVersion")

    extra: dict[str, Any] = {}
    record.name = _parse_name(top.get("metadata"), where, extra)
    spec = top.get("spec")
    if spec is None:
        where.add("missing: a component needs spec.type, spec.version and usually spec.metadata", "spec")
        return record
    if not isinstance(spec, dict):
        where.add(f"expected a mapping with type, version and metadata, got {_describe(spec)}", "spec")
        return record
    spec = _keys(spec, _SPEC_KEYS, where, "spec")
    record.type, component_type = _parse_type(spec.get("type"), registry, where)
    record.kind = component_type.kind if component_type else ComponentKind.of((record.type or "").lower())
    version = _parse_version(spec, component_type, where)
    _parse_extras(spec, top, extra, where)
    record.secret_store = _parse_auth(top.get("auth"), where)
    items = _parse_items(spec.get("metadata"), where, record.bad_items)
    if items and any(item.secret_name is not None for item in items):
        users = ", ".join(f"spec.metadata.{item.name}" for item in items if item.secret_name is not None)
        if record.kind is ComponentKind.SECRET_STORE:
            where.add(
                "a secret store cannot read its own metadata from a secret store: "
                "give it with 'value' or 'envRef'",
                users,
            )
        elif record.secret_store is None and _get(top.get("auth"), "secretStore") is None:
            where.add(
                f"missing: {users} {'uses' if ',' not in users else 'use'} secretKeyRef, which is resolved "
                "through a secret store; "
                "add 'auth: {secretStore: NAME}' naming a secretstores.local.env or "
                "secretstores.local.file component",
                "auth.secretStore",
            )
    if component_type is not None and items is not None:
        record.check = ComponentSpec(
            name=record.name or "",
            type=record.type or component_type.type,
            component_type=component_type,
            version=version or "",
            file=file,
            metadata=tuple(items),
            secret_store=record.secret_store,
            extra=extra,
            line=line,
        )
        if len(problems.errors) == start and record.name and version is not None:
            record.spec = record.check
    return record


def _parse_name(meta: Any, where: _Where, extra: dict[str, Any]) -> str | None:
    if meta is None:
        where.add("missing: every component needs 'metadata: {name: NAME}'", "metadata")
        return None
    if not isinstance(meta, dict):
        where.add(f"expected a mapping with 'name', got {_describe(meta)}", "metadata")
        return None
    name = _get(meta, "name")
    if name is None or name == "":
        where.add("missing: every component needs a name, the one used in every API call", "metadata.name")
        return None
    if not isinstance(name, str):
        where.add(f"expected a string, got {_describe(name)}: quote it", "metadata.name")
        return None
    invalid = _invalid_name(name)
    if invalid:
        where.add(f"invalid name '{name}': {invalid}", "metadata.name")
        return None
    namespace = _get(meta, "namespace")
    if namespace is not None:
        if isinstance(namespace, str):
            extra["namespace"] = namespace
        else:
            where.add(f"expected a string, got {_describe(namespace)}", "metadata.namespace")
    return name


def _invalid_name(name: str) -> str | None:
    """Dapr's rule for component names (a valid URL path segment), or None when the name is fine."""
    if name in (".", ".."):
        return f"a name may not be '{name}'"
    for char in ("/", "%"):
        if char in name:
            return f"a name may not contain '{char}' (it is used in URL paths)"
    return None


def _parse_type(
    raw: Any, registry: ComponentRegistry, where: _Where
) -> tuple[str | None, ComponentType | None]:
    installed = ", ".join(sorted(registry.names())) or "none"
    if raw is None or raw == "":
        where.add(
            f"missing: give the component type, e.g. 'type: workflow.builtin' (installed types: {installed})",
            "spec.type",
        )
        return None, None
    if not isinstance(raw, str):
        where.add(f"expected a type name such as workflow.builtin, got {_describe(raw)}", "spec.type")
        return None, None
    category = raw.split(".", 1)[0].lower()
    if ComponentKind.of(category) is None:
        if category in DAPR_CATEGORIES:
            where.add(
                f"'{raw}' is a Dapr {category} component, which Turnout does not serve: Turnout reads "
                "workflow, state and secretstores components; keep this file in Dapr's own resources folder",
                "spec.type",
            )
        else:
            where.add(
                f"unknown category '{category}' in type '{raw}': a type starts with workflow., state. or "
                f"secretstores. (installed types: {installed})",
                "spec.type",
            )
        return raw, None
    if raw not in registry:
        distribution = KNOWN_DISTRIBUTIONS.get(raw.lower())
        if distribution:
            how = f"install its plugin with 'pip install {distribution}'"
        else:
            how = (
                f"check the spelling{_suggest(raw, registry.names())} or install the plugin that provides it"
            )
        where.add(f"unknown component type '{raw}': {how}; installed types are: {installed}", "spec.type")
        return raw, None
    return raw, registry.lookup(raw)


def _version_supported(version: str, versions: tuple[str, ...]) -> bool:
    if version in versions:
        return True
    return version in INITIAL_VERSIONS and any(v in INITIAL_VERSIONS for v in versions)


def _parse_version(spec: dict[str, Any], component_type: ComponentType | None, where: _Where) -> str | None:
    supported = ", ".join(component_type.versions) if component_type else "v1"
    raw = spec.get("version")
    if raw is None:
        first = component_type.versions[0] if component_type else "v1"
        where.add(f"missing: add 'version: {first}' (supported versions: {supported})", "spec.version")
        return None
    if not isinstance(raw, str):
        where.add(f"expected a version string such as 'v1', got {_describe(raw)}", "spec.version")
        return None
    if component_type is not None and not _version_supported(raw, component_type.versions):
        where.add(
            f"unsupported version '{raw}' of {component_type.type}: supported versions are {supported}",
            "spec.version",
        )
        return None
    return raw


def _parse_extras(spec: dict[str, Any], top: dict[str, Any], extra: dict[str, Any], where: _Where) -> None:
    """Dapr fields Turnout accepts for compatibility but does not act on; their shape is still checked."""
    timeout = spec.get("initTimeout")
    if timeout is not None:
        if isinstance(timeout, str) and _GO_DURATION.match(timeout):
            extra["initTimeout"] = timeout
        else:
            where.add(
                f"expected a duration such as '5s' or '1m30s', got {_describe(timeout)}", "spec.initTimeout"
            )
    ignore = spec.get("ignoreErrors")
    if ignore is not None:
        if isinstance(ignore, bool) or (isinstance(ignore, str) and ignore.lower() in ("true", "false")):
            extra["ignoreErrors"] = ignore if isinstance(ignore, bool) else ignore.lower() == "true"
        else:
            where.add(f"expected true or false, got {_describe(ignore)}", "spec.ignoreErrors")
    scopes = top.get("scopes")
    if scopes is not None:
        if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
            extra["scopes"] = list(scopes)
        else:
            where.add(f"expected a list of app ids (strings), got {_describe(scopes)}", "scopes")


def _parse_auth(raw: Any, where: _Where) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        where.add(f"expected a mapping such as '{{secretStore: NAME}}', got {_describe(raw)}", "auth")
        return None
    auth = _keys(raw, ("secretStore",), where, "auth")
    store = auth.get("secretStore")
    if "secretStore" in auth and (not isinstance(store, str) or not store):
        where.add(
            f"expected the name of a secret store component, got {_describe(store)}", "auth.secretStore"
        )
        return None
    return store


def _parse_items(raw: Any, where: _Where, bad: set[str]) -> list[MetadataItem] | None:
    """The metadata entries that are well formed (the names of the others go to ``bad``), or None."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        where.add(
            f"expected a list of entries such as '- name: connectionString' with 'value: ...', "
            f"got {_describe(raw)}",
            "spec.metadata",
        )
        return None
    items: list[MetadataItem] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        item = _parse_item(index, entry, where)
        if item is None:
            name = _get(entry, "name")
            if isinstance(name, str):
                bad.add(name.lower())
            continue
        first = seen.setdefault(item.name.lower(), index)
        if first != index:
            where.add(
                f"given twice (also as spec.metadata[{first}]; metadata names are case-insensitive)",
                f"spec.metadata.{item.name}",
            )
            continue
        items.append(item)
    return items


def _parse_item(index: int, entry: Any, where: _Where) -> MetadataItem | None:
    position = f"spec.metadata[{index}]"
    if not isinstance(entry, dict):
        where.add(f"expected a mapping with 'name' and 'value', got {_describe(entry)}", position)
        return None
    name = _get(entry, "name")
    if name is None or name == "":
        where.add(
            "missing 'name': each metadata entry needs a name and a value, secretKeyRef or envRef", position
        )
        return None
    if not isinstance(name, str):
        where.add(f"expected 'name' to be a string, got {_describe(name)}", position)
        return None
    label = f"spec.metadata.{name}"
    before = len(where.problems.errors)
    keys = _keys(entry, _ITEM_KEYS, where, label)
    given = [key for key in _SOURCES if keys.get(key) is not None]
    if len(given) > 1:
        where.add(
            f"gives both {given[0]} and {given[1]}: use exactly one of value, secretKeyRef and envRef", label
        )
    elif not given:
        where.add(
            "has no value: give 'value', 'secretKeyRef' or 'envRef' (write value: \"\" for empty)", label
        )
    secret_name = secret_key = env_ref = None
    if "secretKeyRef" in given:
        secret_name, secret_key = _parse_secret_ref(keys["secretKeyRef"], where, f"{label}.secretKeyRef")
    if "envRef" in given:
        env_ref = _parse_env_ref(keys["envRef"], where, f"{label}.envRef")
    if len(where.problems.errors) != before:
        return None
    return MetadataItem(
        name=name, value=keys.get("value"), secret_name=secret_name, secret_key=secret_key, env_ref=env_ref
    )


def _parse_secret_ref(raw: Any, where: _Where, label: str) -> tuple[str | None, str | None]:
    if not isinstance(raw, dict):
        where.add(f"expected a mapping such as '{{name: SECRET, key: KEY}}', got {_describe(raw)}", label)
        return None, None
    ref = _keys(raw, ("name", "key"), where, label)
    name, key = ref.get("name"), ref.get("key")
    if not isinstance(name, str) or not name:
        where.add(f"expected the secret's name (a non-empty string), got {_describe(name)}", f"{label}.name")
        return None, None
    if key is not None and (not isinstance(key, str) or not key):
        where.add(f"expected a key (a non-empty string), got {_describe(key)}", f"{label}.key")
        return None, None
    return name, key or name


def _parse_env_ref(raw: Any, where: _Where, label: str) -> str | None:
    if not isinstance(raw, str) or not raw:
        where.add(f"expected the name of an environment variable, got {_describe(raw)}", label)
        return None
    upper = raw.upper()
    if " " in raw:
        where.add(f"invalid environment variable name '{raw}': names may not contain spaces", label)
    elif upper.startswith("DAPR_") or upper == "APP_API_TOKEN":
        where.add(
            f"environment variable '{raw}' may not be read by envRef: Dapr reserves DAPR_* and APP_API_TOKEN",
            label,
        )
    else:
        return raw
    return None


def _check_references(records: list[_Parsed], problems: _Problems) -> None:
    """Names are unique, and every auth.secretStore names a declared secret store."""
    declared: dict[str, _Parsed] = {}
    for record in records:
        if record.name is None or record.skipped is not None:
            continue
        first = declared.setdefault(record.name, record)
        if first is not record:
            where = f"at line {first.line} of this file" if first.file == record.file else f"in {first.file}"
            problems.add(
                f"duplicate component name '{record.name}': also defined {where}; names must be unique",
                file=record.file or None,
                component=record.name,
                line=record.line,
                field="metadata.name",
            )
            record.spec = None
    stores = sorted(name for name, r in declared.items() if r.kind is ComponentKind.SECRET_STORE)
    for record in records:
        if record.secret_store is None or record.skipped is not None:
            continue
        target = declared.get(record.secret_store)
        if target is None:
            known = ", ".join(stores) if stores else "none"
            problems.add(
                f"no component named '{record.secret_store}' is declared (secret stores declared: {known}); "
                "declare a secretstores.local.env or secretstores.local.file component with that name",
                file=record.file or None,
                component=record.name,
                line=record.line,
                field="auth.secretStore",
            )
            record.spec = None
        elif target.kind is not ComponentKind.SECRET_STORE:
            problems.add(
                f"'{record.secret_store}' is a {target.type} component, not a secret store: "
                "name a secretstores.* component",
                file=record.file or None,
                component=record.name,
                line=record.line,
                field="auth.secretStore",
            )
            record.spec = None


# ---------------------------------------------------------------------------
# Metadata against the plugin's model

SecretGetter = Callable[[str, str], str]


def _as_text(value: Any) -> Any:
    """Scalars as Dapr passes them: strings (``true``, ``30``); lists and mappings unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, _dt.date | _dt.datetime):
        return value.isoformat()
    return value


def yaml_name(python_name: str, info: FieldInfo) -> str:
    """A metadata field's name in component files: its alias (Dapr's camelCase name), else its own."""
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return alias or python_name


def metadata_names(model: type[BaseModel]) -> dict[str, str]:
    """YAML names by lower-cased YAML name and Python name (Dapr matches names case-insensitively)."""
    names: dict[str, str] = {}
    for python_name, info in model.model_fields.items():
        name = yaml_name(python_name, info)
        names[python_name.lower()] = name
        names[name.lower()] = name
    return names


def _expected(message: str) -> str:
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            rest = message[len(prefix) :]
            if prefix == "Input should be ":
                return rest if rest.startswith(("a ", "an ")) else f"a value {rest}"
            return rest
    return message[:1].lower() + message[1:]


def _validate_metadata(
    spec: ComponentSpec,
    *,
    environ: Mapping[str, str],
    get_secret: SecretGetter | None,
    skip: Iterable[str] = (),
) -> tuple[BaseModel | None, list[ComponentError]]:
    """The spec's metadata as its plugin's model, with every problem as a ComponentError.

    With ``get_secret`` None, values from secrets are left out and only the
    rest is checked (the secret stores do not exist yet).
    """
    model = spec.component_type.metadata_model
    names = metadata_names(model)
    found: list[tuple[int, ComponentError]] = []  # (entry index, error): reported in file order
    values: dict[str, Any] = {}
    written: dict[str, str] = {}
    position: dict[str, int] = {}
    origin: dict[str, str] = {}
    unresolved: set[str] = {names.get(name.lower(), name) for name in skip}

    def problem(reason: str, yaml_field: str, key: str) -> None:
        error = ComponentError(reason, file=spec.file, component=spec.name, field=yaml_field)
        found.append((position.get(key, len(spec.metadata)), error))

    def errors() -> list[ComponentError]:
        return [error for _index, error in sorted(found, key=lambda pair: pair[0])]

    for index, item in enumerate(spec.metadata):
        key = names.get(item.name.lower(), item.name)
        written[key] = item.name
        position[key] = index
        label = f"spec.metadata.{item.name}"
        if item.env_ref is not None:
            if item.env_ref not in environ:
                problem(
                    f"environment variable '{item.env_ref}' (envRef) is not set: set it, or use 'value'",
                    label,
                    key,
                )
                unresolved.add(key)
                continue
            values[key] = environ[item.env_ref]
            origin[key] = f"from environment variable '{item.env_ref}'"
        elif item.secret_name is not None:
            if get_secret is None:
                if key in names.values():
                    unresolved.add(key)
                else:
                    values[key] = None  # an unknown name: let the model refuse it
                continue
            try:
                values[key] = get_secret(item.secret_name, item.secret_key or item.secret_name)
            except ComponentError as exc:
                problem(exc.reason, label, key)
                unresolved.add(key)
                continue
            origin[key] = f"from secret '{item.secret_name}' key '{item.secret_key}' (value not shown)"
        else:
            values[key] = _as_text(item.value)
            origin[key] = repr(item.value)
    try:
        return model.model_validate(values), errors()
    except ValidationError as exc:
        accepted = sorted(set(names.values()), key=str.lower)
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            key = str(loc[0]) if loc else ""
            if error["type"] == "missing" and key in unresolved:
                continue
            yaml_field = "spec.metadata" + "".join(f".{written.get(str(p), p)}" for p in loc[:1])
            yaml_field += "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
            if error["type"] == "missing":
                reason = f"required: add an entry '- name: {key}' with a value, secretKeyRef or envRef"
                if error["msg"] != "Field required":  # a plugin's own reason (e.g. "goes with accessKey")
                    reason = (
                        f"required ({error['msg']}): add an entry '- name: {key}' with a value, "
                        "secretKeyRef or envRef"
                    )
            elif not loc:
                # A rule on the whole model: its input holds every value, secrets included,
                # so only the plugin's message is shown.
                reason = f"invalid metadata: {_expected(error['msg'])}"
            elif error["type"] == "extra_forbidden":
                reason = (
                    f"unknown field for {spec.component_type.type}{_suggest(key, accepted)}; "
                    f"accepted fields: {', '.join(accepted)}"
                )
            else:
                shown = origin.get(key, repr(error.get("input")))
                reason = f"invalid value {shown}: expected {_expected(error['msg'])}"
            problem(reason, yaml_field, key)
        return None, errors()
