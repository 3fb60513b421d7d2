"""JSON Schema checks of inputs, outputs and exported context (``schema: {format: json, ...}``).

A schema is written inline (``document: {...}``) or given by reference
(``resource: {endpoint: ...}``): an http(s) URL, or a file path relative to
the folder of the file the definition was read from (only definitions read
from a file may name files, so an uploaded definition cannot read the
worker's disk).

A referenced schema is fetched by an activity when an instance first needs
it (once per run and endpoint), so it is in the instance's history: a replay
validates against the schema the instance first saw, even if the file or the
URL has changed since. Files are also read when the definition is loaded, so
a missing or invalid one is refused before anything runs. ``jsonschema`` is
imported lazily, so definitions without schemas do not need it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import yaml

from ._expressions import is_expression


def source_folder(source: str | None) -> Path | None:
    """The folder of the file a definition was read from (where its schema files are), or None."""
    if source and Path(source).is_file():
        return Path(source).resolve().parent
    return None


def endpoint_of(resource: Any) -> Any:
    """The endpoint as written: ``resource.endpoint`` or its ``uri``."""
    endpoint = resource.get("endpoint") if isinstance(resource, Mapping) else None
    return endpoint.get("uri") if isinstance(endpoint, Mapping) else endpoint


def resource_uri(resource: Any, base: Path | None) -> str:
    """Where a referenced schema is: an http(s) URL as written, or the ``file:`` URI of an absolute path.

    Raises ValueError saying what is wrong with the reference.
    """
    uri = endpoint_of(resource)
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("expected resource: {endpoint: <an http(s) URL or a file path>}")
    if is_expression(uri):
        raise ValueError(f"endpoint {uri!r}: a schema's endpoint is a URL or a file path, not an expression")
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        return uri
    if scheme not in ("", "file"):
        raise ValueError(f"endpoint {uri!r}: expected an http(s) URL or a file path")
    if base is None:
        raise ValueError(
            f"endpoint {uri!r}: only a definition read from a file may name schema files "
            "(they are found relative to its folder); give an http(s) URL"
        )
    path = Path(url2pathname(urlsplit(uri).path)) if scheme == "file" else Path(uri)
    return (base / path).resolve().as_uri()


def read_file(uri: str) -> Any:
    """The JSON or YAML document in the file a ``file:`` URI names; ValueError if it cannot be read."""
    path = Path(url2pathname(urlsplit(uri).path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not JSON or YAML: {getattr(exc, 'problem', None) or exc}") from None


def document_problem(document: Any) -> str | None:
    """Why ``document`` is not a usable JSON Schema, or None."""
    if not isinstance(document, (Mapping, bool)):
        return f"expected a JSON Schema (an object or a boolean), not {type(document).__name__}"
    try:
        import jsonschema
    except ImportError:
        return "validating with a schema needs the jsonschema package: pip install jsonschema"
    try:
        jsonschema.validators.validator_for(document).check_schema(document)
    except jsonschema.SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    return None


def schema_problem(spec: Any, base: Path | None = None) -> str | None:
    """What is wrong with a ``schema`` declaration, or None when it can be used.

    ``base`` is the folder of the definition's file (None when it has none).
    A referenced file is read and checked here; a URL only when an instance needs it.
    """
    if not isinstance(spec, Mapping):
        return "expected {format: json, document: {...}} or {format: json, resource: {endpoint: ...}}"
    if str(spec.get("format", "json")).split(":")[0] != "json":
        return f"schema format {spec.get('format')!r} is not supported: expected json"
    if "resource" in spec:
        try:
            uri = resource_uri(spec["resource"], base)
        except ValueError as exc:
            return str(exc)
        if not uri.startswith("file:"):
            return None
        try:
            problem = document_problem(read_file(uri))
        except ValueError as exc:
            problem = str(exc)
        return f"endpoint {endpoint_of(spec['resource'])!r}: {problem}" if problem else None
    if "document" not in spec:
        return "expected the JSON Schema under schema.document, or a reference under schema.resource"
    return document_problem(spec["document"])


@functools.lru_cache(maxsize=512)
def _validator(text: str) -> Any:
    import jsonschema

    document = json.loads(text)
    return jsonschema.validators.validator_for(document)(document)


def violation(schema: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the JSON Schema ``schema`` (the first error, with its place), or None."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    place = "/" + "/".join(str(p) for p in error.path)
    return f"{place}: {error.message}"
