"""A loopback HTTP stub of the services the Serverless Workflow corpus calls.

Petstore (``/v2/pet/...``, ``/v2/swagger.json``), httpbin's basic auth
(``/basic-auth/{user}/{password}``), an event sink (``POST /events``) and an
echo for anything else. It records every request, and can be told to fail the
next requests to a path (``fail_next``) to drive retries. Tests start it on
127.0.0.1:0 and point ``Settings.endpoints`` at ``stub.url``.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PETS = [
    {"id": 1, "name": "Milou", "status": "available"},
    {"id": 2, "name": "Rantanplan", "status": "available"},
    {"id": 3, "name": "Idefix", "status": "sold"},
]

SWAGGER = {
    "swagger": "2.0",
    "info": {"title": "Petstore (stub)", "version": "1.0.0"},
    "host": "petstore.swagger.io",
    "basePath": "/v2",
    "schemes": ["https", "http"],
    "paths": {
        "/pet/findByStatus": {
            "get": {
                "operationId": "findPetsByStatus",
                "parameters": [{"name": "status", "in": "query", "required": True, "type": "string"}],
            }
        },
        "/pet/{petId}": {
            "get": {
                "operationId": "getPetById",
                "parameters": [{"name": "petId", "in": "path", "required": True, "type": "integer"}],
            }
        },
    },
}


@dataclass
class Recorded:
    """One request the stub received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class HttpStub:
    """The running stub: its ``url``, the ``requests`` it got, failure injection, served ``documents``."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)  # path -> the JSON a GET of it answers
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with these statuses, in order."""
        with self._lock:
            self.failures.setdefault(path, []).extend(statuses)

    def received(self, path: str) -> list[Recorded]:
        """The requests made to ``path``."""
        return [r for r in self.requests if r.path == path]

    def start(self) -> HttpStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                record = Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
                with stub._lock:
                    stub.requests.append(record)
                    queued = stub.failures.get(parts.path)
                    injected = queued.pop(0) if queued else None
                if injected is not None:
                    self._reply(injected, {"error": "injected failure"})
                    return
                if self.command == "GET" and parts.path in stub.documents:
                    self._reply(200, stub.documents[parts.path])
                    return
                status, payload = route(record)
                self._reply(status, payload)

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815 (http.server's names)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="http-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def route(request: Recorded) -> tuple[int, Any]:
    """The stub's answer to a request that no failure was injected for."""
    segments = [s for s in request.path.split("/") if s]
    if request.path == "/v2/swagger.json":
        return 200, SWAGGER
    if request.path == "/v2/pet/findByStatus":
        wanted = request.query.get("status", ["available"])
        return 200, [pet for pet in PETS if pet["status"] in wanted]
    if segments[:2] == ["v2", "pet"] and len(segments) == 3:
        if request.method == "PUT" and isinstance(request.body, dict):
            return 200, request.body
        pet = next((p for p in PETS if str(p["id"]) == segments[2]), None)
        return (200, pet) if pet else (404, {"code": 1, "type": "error", "message": "Pet not found"})
    if segments[:2] == ["v2", "pet"] and len(segments) > 3:
        return 404, {"code": 1, "type": "error", "message": "Pet not found"}
    if segments[:1] == ["basic-auth"] and len(segments) == 3:
        expected = "Basic " + base64.b64encode(f"{segments[1]}:{segments[2]}".encode()).decode()
        if request.headers.get("Authorization") == expected:
            return 200, {"authenticated": True, "user": segments[1]}
        return 401, {"authenticated": False}
    if request.path == "/api/people/1":
        return 200, {"name": "Luke Skywalker", "homeworld": "https://swapi.dev/api/planets/1/"}
    if request.path == "/api/planets/1/":
        return 200, {"name": "Tatooine", "climate": "arid"}
    if request.path == "/bearer":
        token = request.headers.get("Authorization", "")
        return (
            (200, {"authenticated": True, "token": token[7:]}) if token.startswith("Bearer ") else (401, {})
        )
    return 200, {"method": request.method, "path": request.path, "body": request.body}
