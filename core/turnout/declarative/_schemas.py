"""JSON Schema checks of inputs, outputs and exported context (``schema: {format: json, document: ...}``).

Only inline schemas: fetching one (``schema.resource``) would be I/O in the
workflow, and a schema that changes under a running instance would break
replay. ``jsonschema`` is imported lazily, so definitions without schemas do
not need it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any


def schema_problem(spec: Any) -> str | None:
    """What is wrong with a ``schema`` declaration, or None when it can be used."""
    if not isinstance(spec, Mapping):
        return "expected {format: json, document: {...}}"
    if "resource" in spec:
        return "external schemas (schema.resource) are not supported: inline the schema under schema.document"
    if str(spec.get("format", "json")).split(":")[0] != "json":
        return f"schema format {spec.get('format')!r} is not supported: expected json"
    document = spec.get("document")
    if not isinstance(document, (Mapping, bool)):
        return "expected the JSON Schema under schema.document"
    try:
        import jsonschema
    except ImportError:
        return "validating with a schema needs the jsonschema package: pip install jsonschema"
    try:
        jsonschema.validators.validator_for(document).check_schema(document)
    except jsonschema.SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    return None


@functools.lru_cache(maxsize=512)
def _validator(text: str) -> Any:
    import jsonschema

    document = json.loads(text)
    return jsonschema.validators.validator_for(document)(document)


def violation(spec: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` does not fit the declared schema (the first error, with its place), or None."""
    validator = _validator(json.dumps(spec["document"], sort_keys=True))
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    place = "/" + "/".join(str(p) for p in error.path)
    return f"{place}: {error.message}"
