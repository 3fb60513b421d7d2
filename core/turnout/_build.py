"""Building components from checked specs: secret stores first, then state stores, then workflows.

Everything is validated before anything is created (secrets resolved through
the secret stores, which are created first for that); if any factory fails,
nothing built is kept, so nothing starts half-configured. Nothing is opened
here: the runtime opens what was built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ._errors import ComponentError
from ._registry import ComponentContext, ComponentKind
from ._specs import (
    ComponentSpec,
    SecretGetter,
    _check_references,
    _Parsed,
    _Problems,
    _validate_metadata,
)

log = logging.getLogger("turnout.specs")


_BUILD_ORDER = (ComponentKind.SECRET_STORE, ComponentKind.STATE, ComponentKind.WORKFLOW)


def _records(specs: list[ComponentSpec]) -> list[_Parsed]:
    return [
        _Parsed(
            file=spec.file or "",
            line=spec.line or 0,
            name=spec.name,
            kind=spec.component_type.kind,
            type=spec.component_type.type,
            secret_store=spec.secret_store,
            spec=spec,
        )
        for spec in specs
    ]


class _Builder:
    """Validates, then creates, a list of specs; nothing is kept if any step fails."""

    def __init__(
        self,
        specs: list[ComponentSpec],
        *,
        working_dir: Path,
        workflows: Any,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.specs = sorted(specs, key=lambda s: _BUILD_ORDER.index(s.component_type.kind))
        self.working_dir = Path(working_dir)
        self.workflows = workflows
        self.environ = os.environ if environ is None else environ
        self.built: dict[str, tuple[ComponentSpec, Any]] = {}
        self.metadata: dict[str, BaseModel] = {}
        self._secrets: dict[tuple[str, str], dict[str, str]] = {}

    def validate(self) -> dict[str, BaseModel]:
        """Check everything, creating only the secret stores (to resolve secrets)."""
        problems = _Problems()
        _check_references(_records(self.specs), problems)
        for spec in self.specs:
            problems.extend(
                _validate_metadata(spec, environ=self.environ, get_secret=None)[1], line=spec.line
            )
        self._stop_if_any(problems)
        for spec in self.specs:
            if spec.component_type.kind is ComponentKind.SECRET_STORE:
                self._create(spec, self._resolved(spec, problems), problems)
        self._stop_if_any(problems)
        for spec in self.specs:
            if spec.component_type.kind is not ComponentKind.SECRET_STORE:
                self._resolved(spec, problems)
        self._stop_if_any(problems)
        return self.metadata

    def build(self) -> dict[str, tuple[ComponentSpec, Any]]:
        """Validate everything, then create the rest in order; stop at the first factory that fails."""
        self.validate()
        problems = _Problems()
        for spec in self.specs:
            if spec.component_type.kind is not ComponentKind.SECRET_STORE:
                self._create(spec, self.metadata[spec.name], problems)
                self._stop_if_any(problems)  # later components may depend on this one
        return dict(self.built)

    def _stop_if_any(self, problems: _Problems) -> None:
        """Drop everything created so far and raise, if there are problems.

        Nothing was opened, so dropping the objects is enough: factories leave
        acquiring resources to ``open()``.
        """
        if problems.errors:
            self.built.clear()
            self._secrets.clear()
            problems.raise_if_any()

    def _resolved(self, spec: ComponentSpec, problems: _Problems) -> BaseModel | None:
        getter = self._secret_getter(spec)
        metadata, errors = _validate_metadata(spec, environ=self.environ, get_secret=getter)
        problems.extend(errors, line=spec.line)
        if metadata is not None and not errors:
            self.metadata[spec.name] = metadata
            return metadata
        return None

    def _secret_getter(self, spec: ComponentSpec) -> SecretGetter:
        def get(name: str, key: str) -> str:
            store_name = spec.secret_store or ""
            found = self.built.get(store_name)
            if found is None:
                raise ComponentError(f"secret store '{store_name}' could not be created (see its own error)")
            store = found[1]
            data = self._secrets.get((store_name, name))
            if data is None:
                try:
                    data = dict(store.get_secret(name))
                except ComponentError:
                    raise
                except Exception as exc:
                    raise ComponentError(
                        f"secret store '{store_name}' failed to read secret '{name}': "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self._secrets[(store_name, name)] = data
            if key not in data:
                keys = ", ".join(sorted(data)) or "none"
                raise ComponentError(
                    f"secret '{name}' in secret store '{store_name}' has no key '{key}' (its keys: {keys}); "
                    "fix secretKeyRef.key"
                )
            return data[key]

        return get

    def _resolve(self, name: str, kind: ComponentKind) -> Any:
        found = self.built.get(name)
        if found is not None and found[0].component_type.kind is kind:
            return found[1]
        if found is not None:
            raise ComponentError(
                f"'{name}' is a {found[0].component_type.type} component, not a {kind.value} one"
            )
        known = ", ".join(sorted(n for n, (s, _c) in self.built.items() if s.component_type.kind is kind))
        raise ComponentError(f"no {kind.value} component named '{name}' (declared: {known or 'none'})")

    def _create(self, spec: ComponentSpec, metadata: BaseModel | None, problems: _Problems) -> None:
        if metadata is None:
            return
        context = ComponentContext(
            name=spec.name,
            component_type=spec.component_type.type,
            file=spec.file,
            working_dir=self.working_dir,
            workflows=self.workflows,
            resolve=self._resolve,
        )
        try:
            component = spec.component_type.factory(metadata, context)
        except ComponentError as exc:
            problems.add(
                exc.reason,
                file=exc.file or spec.file,
                component=exc.component or spec.name,
                field=exc.field,
            )
            return
        except Exception as exc:
            log.debug("factory of %s failed", spec.name, exc_info=True)
            problems.add(
                f"could not be created: {type(exc).__name__}: {exc}",
                file=spec.file,
                component=spec.name,
            )
            return
        self.built[spec.name] = (spec, component)


def validate_specs(
    specs: list[ComponentSpec],
    *,
    working_dir: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
) -> dict[str, BaseModel]:
    """Every component's resolved, validated metadata by name, creating nothing but the secret stores.

    ``working_dir`` resolves relative paths (a secrets file); ``environ``
    (default ``os.environ``) resolves ``envRef``. Raises :class:`ComponentErrors`.
    """
    return _Builder(specs, working_dir=Path(working_dir), workflows=None, environ=environ).validate()


def build_components(
    specs: list[ComponentSpec],
    *,
    working_dir: Path,
    workflows: Any,
    environ: Mapping[str, str] | None = None,
) -> dict[str, tuple[ComponentSpec, Any]]:
    """Create every component: secret stores, then state stores, then workflow components.

    Every spec is validated (secrets and environment variables resolved)
    before any factory other than a secret store's runs. If a factory fails,
    what was created is dropped and :class:`ComponentErrors` is raised. The
    components are not opened: factories must leave acquiring resources
    (connections, files, threads) to ``open()``, which the runtime calls.
    """
    return _Builder(specs, working_dir=working_dir, workflows=workflows, environ=environ).build()
