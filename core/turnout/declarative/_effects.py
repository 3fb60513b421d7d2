"""The activities behind every external effect of a declarative workflow.

The interpreter never touches the network: an HTTP call, fetching an OpenAPI
document and emitting a CloudEvent are Turnout activities, so the engine
records their results and a replay does not repeat them. They are async and
share one ``httpx`` client per call. Deployment settings (endpoint rewrites,
timeout, sinks) are bound when the activities are installed on a registry;
the history only ever holds the URLs the definition wrote.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import yaml

import turnout

from ._definition import Settings
from ._faults import FaultFailure, failure_exception, make_fault
from ._schemas import read_file

INTERNAL_PREFIX = "turnout.declarative."
"""The interpreters' own activities: a definition cannot call them by name (see ``callable_by_name``)."""
HTTP_ACTIVITY = INTERNAL_PREFIX + "http"
FETCH_ACTIVITY = INTERNAL_PREFIX + "fetch"
EMIT_ACTIVITY = INTERNAL_PREFIX + "emit"


def callable_by_name(name: str) -> bool:
    """Whether a definition may call the activity ``name`` as a named function.

    Not the interpreters' own: the fetch activity reads files for schemas of
    definitions read from files, and the start activity starts any workflow, so
    a definition uploaded through the API must not reach them directly.
    """
    return not name.startswith(INTERNAL_PREFIX)


ACTIVITY_NAMES = (HTTP_ACTIVITY, FETCH_ACTIVITY, EMIT_ACTIVITY)


def rewrite(url: str, endpoints: dict[str, str]) -> str:
    """``url`` with the longest matching prefix of ``endpoints`` replaced."""
    for prefix in sorted(endpoints, key=len, reverse=True):
        if url.startswith(prefix):
            return endpoints[prefix] + url[len(prefix) :]
    return url


def _decode(response: httpx.Response) -> Any:
    """The body as JSON when it is JSON (whatever the content type says), else as text."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _communication_error(status: int, title: str, detail: str) -> FaultFailure:
    return failure_exception(make_fault("communication", status=status, title=title, detail=detail))


def authorization_header(scheme: str, credentials: Any) -> str:
    """The ``Authorization`` value for ``basic`` ({username, password}) or ``bearer`` (a token or {token})."""
    if scheme == "basic":
        if not isinstance(credentials, dict) or not {"username", "password"} <= set(credentials):
            raise ValueError("basic credentials need a username and a password")
        pair = f"{credentials['username']}:{credentials['password']}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    token = credentials.get("token") if isinstance(credentials, dict) else credentials
    return f"Bearer {token}"


def install(workflows: turnout.Workflows, settings: Settings) -> None:
    """Register the three effect activities on ``workflows``, bound to ``settings``."""

    def secret_header(secret: dict[str, Any]) -> str:
        # Resolved here, not in the workflow, so that the secret's value stays out of the history.
        name = secret["name"]
        if name not in settings.secrets:
            raise failure_exception(
                make_fault(
                    "authorization",
                    title="Secret not found",
                    detail=f"no secret named '{name}' is configured (Settings.secrets)",
                    instance=secret.get("instance"),
                )
            )
        try:
            return authorization_header(secret["scheme"], settings.secrets[name])
        except ValueError as exc:
            raise failure_exception(
                make_fault("authentication", title="Unusable secret", detail=f"secret '{name}': {exc}")
            ) from None

    async def send(request: dict[str, Any]) -> httpx.Response:
        method = str(request.get("method", "get")).upper()
        uri = str(request["uri"])
        body = request.get("body")
        content: bytes | None = None
        headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
        if request.get("secret"):
            headers["Authorization"] = secret_header(request["secret"])
        if body is not None:
            if isinstance(body, (dict, list, int, float, bool)):
                content = json.dumps(body).encode()
                headers.setdefault("Content-Type", "application/json")
            else:
                content = str(body).encode()
        query = {str(k): _query_value(v) for k, v in (request.get("query") or {}).items()}
        async with httpx.AsyncClient(
            timeout=settings.timeout, follow_redirects=bool(request.get("redirect", False))
        ) as client:
            try:
                return await client.request(
                    method,
                    rewrite(uri, settings.endpoints),
                    params=query or None,
                    headers=headers,
                    content=content,
                )
            except httpx.HTTPError as exc:
                raise _communication_error(
                    503, "Service Unavailable", f"{method} {uri} failed: {type(exc).__name__}: {exc}"
                ) from None

    async def http_call(ctx: turnout.ActivityContext, request: dict[str, Any]) -> Any:
        """One HTTP request; a status outside 2xx (3xx too unless ``redirect``) is a communication error."""
        response = await send(request)
        highest = 399 if request.get("redirect") else 299
        if not 200 <= response.status_code <= highest:
            raise _communication_error(
                response.status_code,
                response.reason_phrase or "HTTP error",
                f"{str(request.get('method', 'get')).upper()} {request['uri']} answered "
                f"{response.status_code}: {response.text[:500]}",
            )
        output = request.get("output", "content")
        if output == "raw":
            return base64.b64encode(response.content).decode("ascii")
        content = _decode(response)
        if output == "response":
            return {
                "request": {
                    "method": str(request.get("method", "get")).upper(),
                    "uri": request["uri"],
                    "headers": {
                        k: "<redacted>" if str(k).lower() == "authorization" else v
                        for k, v in (request.get("headers") or {}).items()
                    },
                },
                "statusCode": response.status_code,
                "headers": dict(response.headers),
                "content": content,
            }
        return content

    async def fetch(ctx: turnout.ActivityContext, request: dict[str, Any]) -> Any:
        """A JSON or YAML document (an OpenAPI description, a JSON Schema), parsed.

        A ``file`` (a ``file:`` URI) is read from disk instead: only the
        interpreter sets it, for the schema files of a definition read from a
        file (see ``_schemas.resource_uri``); a ``uri`` is always fetched over
        HTTP, so an OpenAPI document's URL cannot read the worker's disk.
        """
        if "file" in request:
            try:
                return read_file(request["file"])
            except ValueError as exc:
                raise _communication_error(404, "Not Found", str(exc)) from None
        response = await send({**request, "method": "get"})
        if not 200 <= response.status_code <= 299:
            raise _communication_error(
                response.status_code,
                response.reason_phrase or "HTTP error",
                f"fetching {request['uri']} answered {response.status_code}",
            )
        try:
            return response.json()
        except ValueError:
            return yaml.safe_load(response.text)

    async def emit(ctx: turnout.ActivityContext, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver a CloudEvent (structured mode) to every configured sink; returns the event."""
        async with httpx.AsyncClient(timeout=settings.timeout) as client:
            for sink in settings.sinks:
                try:
                    response = await client.post(
                        rewrite(sink, settings.endpoints),
                        content=json.dumps(event).encode(),
                        headers={"Content-Type": "application/cloudevents+json"},
                    )
                except httpx.HTTPError as exc:
                    raise _communication_error(
                        503, "Service Unavailable", f"event sink {sink}: {exc}"
                    ) from None
                if not 200 <= response.status_code <= 299:
                    raise _communication_error(
                        response.status_code,
                        "Event not accepted",
                        f"event sink {sink} answered {response.status_code}",
                    )
        return event

    workflows.activity(http_call, name=HTTP_ACTIVITY)
    workflows.activity(fetch, name=FETCH_ACTIVITY)
    workflows.activity(emit, name=EMIT_ACTIVITY)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
