"""Serverless Workflow 0.8 ``rest`` functions: call an OpenAPI operation over HTTP.

A ``rest`` function's ``operation`` is ``<OpenAPI document URI>#<operationId>``.
Both the document and the call go through the effect activities (fetch,
HTTP), so the interpreter does no I/O and a replay repeats nothing. Arguments
fill the operation's declared parameters by name (path, query, header); what
is left becomes the JSON body (or the query of an operation without a body).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import turnout

from ._effects import FETCH_ACTIVITY, HTTP_ACTIVITY
from ._v08_model import FunctionDef

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OpenApiError(Exception):
    """The OpenAPI document has no such operation, or no server to send it to."""


def find_operation(
    document: Any, operation_id: str, document_uri: str
) -> tuple[str, str, dict[str, Any], str]:
    """``(method, path template, operation, base URL)`` of ``operationId`` in an OpenAPI 2 or 3 document."""
    if not isinstance(document, Mapping):
        raise OpenApiError(f"{document_uri} is not an OpenAPI document (not a JSON/YAML object)")
    for path, item in (document.get("paths") or {}).items():
        for method in _METHODS:
            operation = (item or {}).get(method)
            if isinstance(operation, Mapping) and operation.get("operationId") == operation_id:
                merged = dict(operation)
                merged["parameters"] = [*(item.get("parameters") or []), *(operation.get("parameters") or [])]
                return method, path, merged, _base_url(document, document_uri)
    raise OpenApiError(f"{document_uri} has no operation with operationId {operation_id!r}")


def _base_url(document: Mapping[str, Any], document_uri: str) -> str:
    servers = document.get("servers")
    if servers and isinstance(servers[0], Mapping) and servers[0].get("url"):
        return urljoin(document_uri, str(servers[0]["url"])).rstrip("/")
    if document.get("host"):  # Swagger 2
        scheme = (document.get("schemes") or [urlsplit(document_uri).scheme or "https"])[0]
        return f"{scheme}://{document['host']}{document.get('basePath', '')}".rstrip("/")
    parts = urlsplit(document_uri)
    return f"{parts.scheme}://{parts.netloc}"


def build_request(
    method: str, path: str, operation: Mapping[str, Any], base: str, arguments: Any
) -> dict[str, Any]:
    """The request for the HTTP activity: parameters by name, the rest as body or query."""
    left = dict(arguments) if isinstance(arguments, Mapping) else {}
    query: dict[str, Any] = {}
    headers: dict[str, Any] = {}
    body: Any = None if isinstance(arguments, Mapping) else arguments
    for parameter in operation.get("parameters", []):
        name, place = parameter.get("name"), parameter.get("in")
        if name not in left:
            continue
        if place == "path":
            path = path.replace("{" + name + "}", quote(str(left.pop(name)), safe=""))
        elif place == "query":
            query[name] = left.pop(name)
        elif place == "header":
            headers[name] = left.pop(name)
        elif place == "body":
            body = left.pop(name)
    if left:
        if body is None and ("requestBody" in operation or method in ("post", "put", "patch")):
            body = left
        else:
            query.update(left)
    return {"method": method, "uri": base + path, "query": query, "headers": headers, "body": body}


def call_rest(
    ctx: turnout.WorkflowContext,
    function: FunctionDef,
    arguments: Any,
    wait: Callable[[turnout.Task[Any]], Generator[turnout.Task[Any], Any, Any]],
) -> Generator[turnout.Task[Any], Any, Any]:
    """Fetch the function's OpenAPI document, then call its operation; returns the response content."""
    document_uri, _, operation_id = function.operation.partition("#")
    document = yield from wait(ctx.call_activity(FETCH_ACTIVITY, input={"uri": document_uri}))
    method, path, operation, base = find_operation(document, operation_id, document_uri)
    request = build_request(method, path, operation, base, arguments)
    return (yield from wait(ctx.call_activity(HTTP_ACTIVITY, input=request)))
