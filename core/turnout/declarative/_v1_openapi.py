"""OpenAPI documents (2.0 and 3.x): where an operation is, and where the API lives.

Pure functions over an already fetched document; the interpreter fetches it
with an activity and calls the operation with another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def find_operation(document: Any, operation_id: str) -> tuple[str, str, list[Mapping[str, Any]]] | None:
    """``(method, path template, parameters)`` of an operation in an OpenAPI 2 or 3 document."""
    paths = document.get("paths") if isinstance(document, Mapping) else None
    if not isinstance(paths, Mapping):
        return None
    for template, item in paths.items():
        if not isinstance(item, Mapping):
            continue
        shared = [p for p in item.get("parameters") or [] if isinstance(p, Mapping)]
        for method in _HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, Mapping) and operation.get("operationId") == operation_id:
                own = [p for p in operation.get("parameters") or [] if isinstance(p, Mapping)]
                return method, str(template), shared + own
    return None


def base_url(document: Mapping[str, Any], document_uri: str) -> str:
    """Where an OpenAPI document's operations live: ``servers[0]`` (3.x) or scheme/host/basePath (2.0)."""
    servers = document.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], Mapping) and servers[0].get("url"):
        return urljoin(document_uri, str(servers[0]["url"]))
    parts = urlsplit(document_uri)
    schemes = document.get("schemes") if isinstance(document.get("schemes"), list) else []
    # The document's own scheme when the API offers it, else the first it declares.
    scheme = parts.scheme if not schemes or parts.scheme in schemes else str(schemes[0])
    host = document.get("host") or parts.netloc
    return f"{scheme}://{host}{document.get('basePath', '')}"
