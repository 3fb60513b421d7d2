"""Secret stores: where ``secretKeyRef`` values in component files come from.

Two of Dapr's local secret stores, with Dapr's metadata and behaviour:
``secretstores.local.env`` (environment variables) and
``secretstores.local.file`` (a JSON file). The core registers them through the
``turnout.plugins`` entry point (``secretstores``), like any plugin, so
``TURNOUT_PLUGINS`` can leave them out.

A secret store is any object with ``get_secret(name) -> dict[str, str]``; a
``secretKeyRef: {name, key}`` takes ``get_secret(name)[key]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._errors import ComponentError
from ._plugins import hookimpl
from ._registry import ComponentContext, ComponentRegistry, ComponentType

DISTRIBUTION = "turnout"


@runtime_checkable
class SecretStore(Protocol):
    """What the component loader needs from a secret store component."""

    def get_secret(self, name: str) -> dict[str, str]:
        """The secret's keys and values; raises ComponentError naming the store and the secret if missing."""
        ...


class EnvSecretStoreMetadata(BaseModel):
    """``secretstores.local.env``: secrets are environment variables of the Turnout process."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prefix: str = Field(
        default="",
        description="Prepended to the secret's name to form the variable's name: with prefix 'MYAPP_', "
        "secret 'DB_PASSWORD' is read from MYAPP_DB_PASSWORD.",
    )


class FileSecretStoreMetadata(BaseModel):
    """``secretstores.local.file``: secrets in a JSON file, for development (they are stored in clear)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    secrets_file: str = Field(
        alias="secretsFile",
        min_length=1,
        description="Path of the JSON file; a relative path is resolved against the working directory.",
    )
    nested_separator: str = Field(
        default=":",
        alias="nestedSeparator",
        description="Joins the keys of nested JSON objects into one secret name: "
        '{"db": {"password": "x"}} gives the secret db:password.',
    )
    multi_valued: bool = Field(
        default=False,
        alias="multiValued",
        description="When true, each top-level JSON key is one secret, and the keys under it (flattened) "
        "are its keys: secretKeyRef {name: db, key: password}.",
    )

    @field_validator("nested_separator")
    @classmethod
    def _default_separator(cls, value: str) -> str:
        # Dapr falls back to ":" when the separator is empty.
        return value or ":"


class EnvSecretStore:
    """Reads secrets from environment variables, as Dapr's ``secretstores.local.env`` does.

    Dapr's own variables (``DAPR_*``) and ``APP_API_TOKEN`` are never handed out.
    """

    def __init__(self, name: str, prefix: str = "", environ: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.prefix = prefix
        self._environ = os.environ if environ is None else environ

    def get_secret(self, name: str) -> dict[str, str]:
        """``{name: value of the variable PREFIX+name}``."""
        variable = self.prefix + name
        upper = variable.upper()
        if upper.startswith("DAPR_") or upper == "APP_API_TOKEN":
            raise ComponentError(
                f"secret store '{self.name}' may not read environment variable '{variable}': "
                "Dapr reserves DAPR_* and APP_API_TOKEN",
                component=self.name,
            )
        value = self._environ.get(variable)
        if value is None:
            raise ComponentError(
                f"secret '{name}' not found in secret store '{self.name}': "
                f"environment variable '{variable}' is not set",
                component=self.name,
            )
        return {name: value}


def _text(value: Any) -> str:
    """A JSON scalar as a secret string: JSON's spelling for booleans and null."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def _flatten(value: Any, path: str, separator: str, into: dict[str, str], file: str) -> None:
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = list(value.items())
    elif isinstance(value, list):
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        if path in into:
            raise ComponentError(
                f"the secrets file {file} gives '{path}' twice once nested keys are joined with "
                f"'{separator}': rename one of them or choose another nestedSeparator",
            )
        into[path] = _text(value)
        return
    for key, item in items:
        _flatten(item, f"{path}{separator}{key}" if path else key, separator, into, file)


def flatten_secrets(
    data: Mapping[str, Any], *, separator: str = ":", multi_valued: bool = False, file: str = "secrets file"
) -> dict[str, dict[str, str]]:
    """Secrets by name (each a dict of keys and values) from a JSON object, as Dapr's file store reads it.

    Single-valued (the default): every leaf is one secret, named by its path
    joined with ``separator``, whose only key is its name. Multi-valued: each
    top-level key is one secret; the leaves under it, flattened, are its keys.
    """
    secrets: dict[str, dict[str, str]] = {}
    if not multi_valued:
        flat: dict[str, str] = {}
        _flatten(dict(data), "", separator, flat, file)
        return {name: {name: value} for name, value in flat.items()}
    for name, value in data.items():
        if isinstance(value, dict | list):
            inner: dict[str, str] = {}
            _flatten(value, "", separator, inner, file)
            secrets[name] = inner
        else:
            secrets[name] = {name: _text(value)}
    return secrets


class FileSecretStore:
    """Secrets read once, at creation, from a JSON file, as Dapr's ``secretstores.local.file`` does."""

    def __init__(self, name: str, secrets: Mapping[str, dict[str, str]], path: Path) -> None:
        self.name = name
        self.path = path
        self._secrets = dict(secrets)

    @classmethod
    def from_file(
        cls, name: str, path: Path, *, separator: str = ":", multi_valued: bool = False
    ) -> FileSecretStore:
        """Read and flatten the file; a missing or malformed file is a ComponentError on ``secretsFile``."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ComponentError(
                f"secrets file not found: {path} (a relative secretsFile is resolved against the "
                "working directory)",
                component=name,
                field="spec.metadata.secretsFile",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ComponentError(
                f"cannot read the secrets file {path}: {exc}",
                component=name,
                field="spec.metadata.secretsFile",
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ComponentError(
                f"the secrets file {path} is not valid JSON at line {exc.lineno}, "
                f"column {exc.colno}: {exc.msg}",
                component=name,
                field="spec.metadata.secretsFile",
            ) from None
        if not isinstance(data, dict):
            raise ComponentError(
                f"the secrets file {path} must hold a JSON object (secret names to values), "
                f"not a JSON {type(data).__name__}",
                component=name,
                field="spec.metadata.secretsFile",
            )
        try:
            secrets = flatten_secrets(data, separator=separator, multi_valued=multi_valued, file=str(path))
        except ComponentError as exc:
            raise ComponentError(exc.reason, component=name, field="spec.metadata.nestedSeparator") from None
        return cls(name, secrets, path)

    def get_secret(self, name: str) -> dict[str, str]:
        """The secret's keys and values (copied, so callers cannot change the store)."""
        found = self._secrets.get(name)
        if found is None:
            names = sorted(self._secrets)
            listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
            raise ComponentError(
                f"secret '{name}' not found in secret store '{self.name}' (file {self.path}; "
                f"its secrets: {listed})",
                component=self.name,
            )
        return dict(found)


def _create_env_store(metadata: BaseModel, context: ComponentContext) -> EnvSecretStore:
    assert isinstance(metadata, EnvSecretStoreMetadata)
    return EnvSecretStore(context.name, metadata.prefix)


def _create_file_store(metadata: BaseModel, context: ComponentContext) -> FileSecretStore:
    assert isinstance(metadata, FileSecretStoreMetadata)
    path = Path(metadata.secrets_file).expanduser()
    if not path.is_absolute():
        path = context.working_dir / path
    return FileSecretStore.from_file(
        context.name, path, separator=metadata.nested_separator, multi_valued=metadata.multi_valued
    )


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """Dapr's two local secret stores."""
    registry.register(
        ComponentType(
            type="secretstores.local.env",
            metadata_model=EnvSecretStoreMetadata,
            factory=_create_env_store,
            distribution=DISTRIBUTION,
            description="Secrets from the environment variables of the Turnout process.",
        )
    )
    registry.register(
        ComponentType(
            type="secretstores.local.file",
            metadata_model=FileSecretStoreMetadata,
            factory=_create_file_store,
            distribution=DISTRIBUTION,
            description="Secrets from a local JSON file, for development.",
        )
    )
