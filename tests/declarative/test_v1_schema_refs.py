"""1.0 schemas given by reference (``schema.resource.endpoint``): files beside the definition, and URLs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.declarative import DefinitionError, Settings, load_definition, register

from .conftest import Runner, fault_of
from .http_stub import HttpStub

S = turnout.RuntimeStatus
FETCH = "turnout.declarative.fetch"
ORDER = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string"}, "total": {"type": "number"}},
}


def definition(name: str, endpoint: str, *, task_endpoint: str | None = None) -> str:
    """An order workflow whose input (and, optionally, one task's output) are checked by reference."""
    task_schema = (
        "      output:\n        schema:\n          format: json\n"
        f"          resource: {{endpoint: '{task_endpoint}'}}\n"
        if task_endpoint
        else ""
    )
    return (
        f"document: {{dsl: '1.0.3', namespace: test, name: {name}, version: '1.0.0'}}\n"
        "input:\n"
        "  schema:\n"
        "    format: json\n"
        f"    resource:\n      endpoint: '{endpoint}'\n"
        "do:\n"
        "  - price:\n"
        "      set: {id: '${ .id }', total: '${ .quantity * 2 }'}\n" + task_schema
    )


def write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


async def test_a_schema_file_beside_the_definition(running: Runner, tmp_path: Path) -> None:
    write(tmp_path / "flows", "schemas/order.json", ORDER)
    source = write(
        tmp_path / "flows",
        "order.yaml",
        definition("order", "schemas/order.json", task_endpoint="file:schemas/order.json"),
    )
    async with running(source) as client:
        good = await client.wait(await client.start("order", {"id": "A-1", "quantity": 2}), timeout=30)
        bad = await client.wait(await client.start("order", {"quantity": 2}), timeout=30)
        history = await client.history(good.instance_id)
    assert good.output == {"id": "A-1", "total": 4}, good.failure
    assert [e.name for e in history if e.kind == "TaskScheduled"] == [FETCH]  # once per run and endpoint
    assert fault_of(bad) == {
        "type": "https://serverlessworkflow.io/spec/1.0.0/errors/validation",
        "status": 400,
        "title": "Schema validation failed",
        "detail": "/: 'id' is a required property",
        "instance": "/input/schema",
    }


async def test_a_schema_url_goes_through_the_endpoint_rewrites(
    running: Runner, stub: HttpStub, settings: Settings
) -> None:
    stub.documents["/schemas/order.json"] = ORDER
    rewritten = settings.model_copy(update={"endpoints": {"https://schemas.example.com": stub.url}})
    text = definition("order-url", "https://schemas.example.com/schemas/order.json")
    async with running(text, settings_=rewritten) as client:
        good = await client.wait(await client.start("order-url", {"id": "A-1", "quantity": 1}), timeout=30)
        bad = await client.wait(await client.start("order-url", {"id": 7, "quantity": 1}), timeout=30)
    assert good.output == {"id": "A-1", "total": 2}, good.failure
    assert fault_of(bad)["detail"] == "/id: 7 is not of type 'string'"
    assert len(stub.received("/schemas/order.json")) == 2  # one fetch per instance


async def test_a_replay_keeps_the_schema_the_instance_fetched(tmp_path: Path, settings: Settings) -> None:
    """The schema is in the history: editing the file does not change a running instance's checks."""
    schema = write(tmp_path / "flows", "order.json", ORDER)
    source = write(
        tmp_path / "flows",
        "order.yaml",
        "document: {dsl: '1.0.3', namespace: test, name: waiting, version: '1.0.0'}\n"
        "input:\n  schema: {format: json, resource: {endpoint: order.json}}\n"
        "output:\n  schema: {format: json, resource: {endpoint: order.json}}\n"
        "do:\n"
        "  - go:\n"
        "      listen: {to: {one: {with: {type: go}}}}\n"
        "      output: {as: $input}\n",
    )

    def registry() -> turnout.Workflows:
        workflows = turnout.Workflows()
        register(workflows, load_definition(source), settings=settings)
        return workflows

    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()
        iid = await client.start("waiting", {"id": "A-1"})
        for _ in range(1000):  # until the schema has been fetched and recorded
            if any(e.kind == "TaskCompleted" for e in await client.history(iid)):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the schema was never fetched")
    schema.write_text(json.dumps({"type": "string"}))  # an object no longer fits
    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()  # a new process, in effect: the instance replays from the store
        await client.raise_event(iid, "go", {"specversion": "1.0", "id": "1", "source": "t", "type": "go"})
        replayed = await client.wait(iid, timeout=30)
        fresh = await client.wait(await client.start("waiting", {"id": "A-2"}), timeout=30)
    assert (replayed.runtime_status, replayed.output) == (S.COMPLETED, {"id": "A-1"}), replayed.failure
    assert fault_of(fresh)["detail"] == "/: {'id': 'A-2'} is not of type 'string'"  # a new run reads it anew


def refused(source: Path) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        load_definition(source)
    return caught.value


def test_a_missing_schema_file_is_refused_at_load_time(tmp_path: Path) -> None:
    source = write(tmp_path, "order.yaml", definition("order", "schemas/missing.json"))
    error = refused(source)
    assert str(error) == (
        f"invalid workflow definition '{source}': 1 problem\n"
        "  /input/schema: endpoint 'schemas/missing.json': "
        f"no such file: {tmp_path.resolve()}/schemas/missing.json"
    )


def test_an_invalid_schema_file_is_refused_at_load_time(tmp_path: Path) -> None:
    write(tmp_path, "ok.json", ORDER)
    write(tmp_path, "bad.json", {"type": 12})
    write(tmp_path, "list.yaml", "- type: object\n")
    write(tmp_path, "broken.json", "{not: [json")
    source = write(tmp_path, "order.yaml", definition("order", "ok.json", task_endpoint="bad.json"))
    assert refused(source).problems == [
        (
            "/do/0/price/output/schema",
            "endpoint 'bad.json': not a valid JSON Schema: 12 is not valid under any of the given schemas",
        )
    ]
    for name, problem in (
        ("list.yaml", "expected a JSON Schema (an object or a boolean), not list"),
        (
            "broken.json",
            f"{tmp_path.resolve()}/broken.json is not JSON or YAML: "
            "expected ',' or ']', but got '<stream end>'",
        ),
    ):
        source = write(tmp_path, "order.yaml", definition("order", name))
        assert refused(source).problems == [("/input/schema", f"endpoint '{name}': {problem}")]


def test_schema_references_that_cannot_be_used() -> None:
    """Text with no file (an upload) may not name files; an endpoint is a URL or a path, not an expression."""
    for endpoint, problem in (
        (
            "order.json",
            "endpoint 'order.json': only a definition read from a file may name schema files "
            "(they are found relative to its folder); give an http(s) URL",
        ),
        (
            "file:///etc/order.json",
            "endpoint 'file:///etc/order.json': only a definition read from a file may "
            "name schema files (they are found relative to its folder); give an http(s) URL",
        ),
        (
            "${ .where }",
            "endpoint '${ .where }': a schema's endpoint is a URL or a file path, not an expression",
        ),
        (
            "ftp://example.com/order.json",
            "endpoint 'ftp://example.com/order.json': expected an http(s) URL or a file path",
        ),
    ):
        with pytest.raises(DefinitionError) as caught:
            load_definition(definition("order", endpoint))
        assert caught.value.problems == [("/input/schema", problem)]


async def test_an_unreachable_or_missing_schema_url_faults_the_instance(
    running: Runner, stub: HttpStub, settings: Settings
) -> None:
    stub.fail_next("/schemas/gone.json", 404)
    stub.documents["/schemas/invalid.json"] = {"type": 12}
    rewritten = settings.model_copy(
        update={
            "endpoints": {
                "https://schemas.example.com": stub.url,
                "https://down.example.com": "http://127.0.0.1:9",
            }
        }
    )
    gone = definition("gone", "https://schemas.example.com/schemas/gone.json")
    down = definition("down", "https://down.example.com/order.json")
    invalid = definition("invalid", "https://schemas.example.com/schemas/invalid.json")
    async with running(gone, down, invalid, settings_=rewritten) as client:
        states = [
            await client.wait(await client.start(name, {"id": "A-1"}), timeout=30)
            for name in ("gone", "down", "invalid")
        ]
    assert fault_of(states[0]) == {
        "type": "https://serverlessworkflow.io/spec/1.0.0/errors/communication",
        "status": 404,
        "title": "Schema not available",
        "detail": "the schema of 'gone' at 'https://schemas.example.com/schemas/gone.json' "
        "cannot be fetched: fetching https://schemas.example.com/schemas/gone.json answered 404",
        "instance": "/input/schema",
    }
    unreachable = fault_of(states[1])
    assert (unreachable["status"], unreachable["instance"]) == (503, "/input/schema")
    assert unreachable["detail"].startswith(
        "the schema of 'down' at 'https://down.example.com/order.json' cannot be fetched: "
        "GET https://down.example.com/order.json failed: ConnectError: "
    )
    assert fault_of(states[2]) == {
        "type": "https://serverlessworkflow.io/spec/1.0.0/errors/configuration",
        "status": 400,
        "title": "Unusable schema",
        "detail": "the schema of 'invalid' at 'https://schemas.example.com/schemas/invalid.json': "
        "not a valid JSON Schema: 12 is not valid under any of the given schemas",
        "instance": "/input/schema",
    }


async def test_an_openapi_document_url_cannot_read_the_disk(run: Runner, tmp_path: Path) -> None:
    """Only schema references of a definition read from a file are read from disk, never a call's URL."""
    secret = write(tmp_path, "secret.json", {"swagger": "2.0", "paths": {}, "secret": "s3cr3t"})
    text = (
        "document: {dsl: '1.0.3', namespace: test, name: peek, version: '1.0.0'}\n"
        "do:\n"
        "  - peek:\n"
        "      call: openapi\n"
        f"      with: {{document: {{endpoint: '{secret.as_uri()}'}}, operationId: anything}}\n"
    )
    state = await run(text)
    fault = fault_of(state)
    assert fault["type"] == "https://serverlessworkflow.io/spec/1.0.0/errors/communication"
    assert "s3cr3t" not in json.dumps(fault)
