"""Stored declarative definitions over HTTP and the CLI: store a version, list, read, start by name."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import LiveServer
from .test_cli_workflow import cli
from .test_dapr_routes import error, start, wait_for

pytest.importorskip("jq", reason="declarative workflows need the 'declarative' extra (jq)")

BASE = "/v1.0/workflow-definitions"


def document(name: str, version: str, greeting: str) -> str:
    return (
        f"document: {{dsl: '1.0.0', namespace: tests, name: {name}, version: '{version}'}}\n"
        "do:\n"
        "  - greet:\n"
        "      set:\n"
        f'        message: ${{ "{greeting}, " + .who }}\n'
    )


def fresh_name() -> str:
    return f"greeter-{uuid.uuid4().hex[:8]}"


def put(http: httpx.Client, text: str, *, component: str = "dapr") -> httpx.Response:
    return http.post(
        f"{BASE}/{component}", content=text.encode(), headers={"content-type": "application/yaml"}
    )


def test_store_list_read_and_start_by_name(http: httpx.Client) -> None:
    name = fresh_name()
    stored = put(http, document(name, "1.0.0", "Hello"))
    assert stored.status_code == 201, stored.text
    body = stored.json()
    assert body == {
        "name": name,
        "version": "1.0.0",
        "dialect": "1.0",
        "workflowName": f"{name}@1.0.0",
        "createdAt": body["createdAt"],
    }
    assert stored.headers["location"] == f"{BASE}/dapr/{name}?version=1.0.0"
    iid = start(http, name, {"who": "Ada"})
    done = wait_for(http, iid, "COMPLETED", "FAILED")
    assert done["workflowName"] == f"{name}@1.0.0"
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {"message": "Hello, Ada"}

    assert put(http, document(name, "1.1.0", "Hi")).status_code == 201
    listed = [d for d in http.get(f"{BASE}/dapr").json()["definitions"] if d["name"] == name]
    assert [(d["version"], "document" in d) for d in listed] == [("1.0.0", False), ("1.1.0", False)]
    latest = http.get(f"{BASE}/dapr/{name}").json()
    assert (latest["version"], latest["document"]) == ("1.1.0", document(name, "1.1.0", "Hi"))
    first = http.get(f"{BASE}/dapr/{name}", params={"version": "1.0.0"}).json()
    assert first["document"] == document(name, "1.0.0", "Hello")
    iid = start(http, name, {"who": "Bob"})
    assert json.loads(wait_for(http, iid, "COMPLETED")["properties"]["dapr.workflow.output"]) == {
        "message": "Hi, Bob"
    }


def test_versions_never_change(http: httpx.Client) -> None:
    name = fresh_name()
    assert put(http, document(name, "1.0.0", "Hello")).status_code == 201
    assert put(http, document(name, "1.0.0", "Hello")).status_code == 201  # the same again: a no-op
    body = error(put(http, document(name, "1.0.0", "Howdy")), 409, "ERR_DEFINITION_EXISTS")
    assert f"'{name}' version '1.0.0' is stored already" in body["message"]


def test_bad_definitions_are_refused_with_where_and_what(http: httpx.Client) -> None:
    name = fresh_name()
    broken = document(name, "1.0.0", "Hello").replace("set:", "sett:")
    body = error(put(http, broken), 400, "ERR_INVALID_ARGUMENT")
    assert "/do/0/greet" in body["message"]
    assert not [d for d in http.get(f"{BASE}/dapr").json()["definitions"] if d["name"] == name]
    error(put(http, "just: a mapping\n"), 400, "ERR_INVALID_ARGUMENT")
    error(http.post(f"{BASE}/dapr", content=b"\xff\xfe"), 400, "ERR_INVALID_ARGUMENT")


def test_an_uploaded_file_name_is_text_not_a_file(http: httpx.Client, tmp_path: Path) -> None:
    """The server never reads a file named by a request: the body is the definition itself."""
    secret = tmp_path / "definition.yaml"
    secret.write_text(document(fresh_name(), "1.0.0", "Hello"))
    body = error(put(http, str(secret)), 400, "ERR_INVALID_ARGUMENT")
    assert "expected a mapping" in body["message"]  # the path, read as YAML: a plain string


def test_unknown_definitions_and_components(http: httpx.Client) -> None:
    error(http.get(f"{BASE}/dapr/nobody-{uuid.uuid4().hex[:6]}"), 404, "ERR_DEFINITION_NOT_FOUND")
    error(http.get(f"{BASE}/nowhere"), 400, "ERR_WORKFLOW_COMPONENT_NOT_FOUND")
    body = error(http.get(f"{BASE}/example"), 501, "ERR_NOT_SUPPORTED")
    assert "'definitions'" in body["message"]


def test_the_cli_stores_lists_and_reads(live: LiveServer, tmp_path: Path) -> None:
    remote = ["--address", live.url, "-c", "dapr"]
    name = fresh_name()
    file = tmp_path / f"{name}.yaml"
    file.write_text(document(name, "2.0.0", "Salut"))
    stored = cli("workflow", "definition", "put", str(file), *remote)
    assert stored.exit_code == 0, stored.output
    assert stored.stdout.strip() == f"stored {name} version 2.0.0: start it with 'workflow start {name}'"
    again = cli("workflow", "definition", "put", str(file), "--json", *remote)
    assert json.loads(again.stdout)["workflowName"] == f"{name}@2.0.0"
    listed = cli("workflow", "definition", "list", *remote)
    assert listed.exit_code == 0 and f"{name}@2.0.0" in listed.stdout
    shown = cli("workflow", "definition", "get", name, *remote)
    assert shown.stdout == document(name, "2.0.0", "Salut")
    missing = cli("workflow", "definition", "get", name, "--version", "9", *remote)
    assert missing.exit_code == 3 and "no workflow definition" in missing.stderr
    file.write_text(document(name, "2.0.0", "Changed"))
    conflict = cli("workflow", "definition", "put", str(file), *remote)
    assert conflict.exit_code == 5, conflict.output
    iid = cli("workflow", "start", name, "--input", '{"who": "Zoé"}', *remote).stdout.strip()
    waited = cli("workflow", "wait", iid, "--timeout", "20", "--json", *remote)
    assert json.loads(json.loads(waited.stdout)["properties"]["dapr.workflow.output"]) == {
        "message": "Salut, Zoé"
    }
