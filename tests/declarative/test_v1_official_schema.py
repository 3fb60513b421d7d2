"""Our 1.0 model against the official JSON schema: it accepts and refuses what the schema does.

The official schema ships inside the official TypeScript SDK (npm
``@serverlessworkflow/sdk``), whose ``validate`` checks a document against it
with ajv. The test fetches that package from the npm registry into a
temporary folder (nothing of it enters the repository) and asks it about the
corpus, our own examples, and definitions that are wrong in one place each;
our ``parse_definition`` must agree on every one, except where we are
stricter on purpose (``STRICTER``).

The SDK also refuses a ``document.dsl`` other than its own version (1.0.0);
that is the SDK's rule, not the schema's (the 1.0.x schemas accept the same
documents), so the documents it is shown say 1.0.0.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout.declarative import DefinitionError, parse_definition
from turnout.testing import missing_server

SDK = "@serverlessworkflow/sdk@1.0.1"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "definitions"

SDK_DSL = "1.0.0"

VALIDATE = """
const sdk = require(process.argv[2]);
const documents = JSON.parse(require("fs").readFileSync(0, "utf8"));
const answers = documents.map((document) => {
  try { sdk.validate("Workflow", document); return null; }
  catch (error) { return String(error.message).split("\\n").slice(0, 3).join(" "); }
});
process.stdout.write(JSON.stringify(answers));
"""

Official = Callable[[list[Any]], list[str | None]]


@pytest.fixture(scope="session")
def official(tmp_path_factory: pytest.TempPathFactory) -> Official:
    """``official(documents)``: for each, None if the official schema accepts it, else why not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing_server("node and npm are needed to run the official Serverless Workflow SDK's validator")
    folder = tmp_path_factory.mktemp("slwf-sdk")
    packed = subprocess.run(
        [npm, "pack", SDK, "--silent", "--pack-destination", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if packed.returncode != 0:
        missing_server(f"npm could not fetch {SDK}: {packed.stderr.strip()[-500:]}")
    with tarfile.open(folder / packed.stdout.strip().splitlines()[-1]) as tar:
        tar.extractall(folder, filter="data")
    bundle = folder / "package" / "umd" / "index.umd.min.js"
    script = folder / "validate.cjs"
    script.write_text(VALIDATE)

    def validate(documents: list[Any]) -> list[str | None]:
        shown = [
            {**d, "document": {**d["document"], "dsl": SDK_DSL}}
            if isinstance(d, dict) and isinstance(d.get("document"), dict)
            else d
            for d in documents
        ]
        done = subprocess.run(
            [node, str(script), str(bundle)],
            input=json.dumps(shown),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        answers: list[str | None] = json.loads(done.stdout)
        return answers

    return validate


def ours(document: Any) -> str | None:
    """None if our model accepts the document, else what it says."""
    try:
        parse_definition(json.dumps(document), source="test")
    except DefinitionError as exc:
        return str(exc)
    return None


def test_the_corpus_and_our_examples_are_valid_for_both(official: Official, slwf10: Path) -> None:
    files = sorted(slwf10.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))
    loaded = [(path, yaml.safe_load(path.read_text())) for path in files]
    files = [path for path, d in loaded if isinstance(d, dict) and "document" in d]
    documents = [d for _, d in loaded if isinstance(d, dict) and "document" in d]
    theirs = official(documents)
    verdicts = [
        (path.name, their, ours(document))
        for path, document, their in zip(files, documents, theirs, strict=True)
    ]
    assert [v for v in verdicts if (v[1] is None) != (v[2] is None)] == []
    assert sum(1 for _, their, _ in verdicts if their is None) >= 40  # nearly all are valid


BASE: dict[str, Any] = {
    "document": {"dsl": "1.0.0", "namespace": "test", "name": "wrong", "version": "1.0.0"},
    "do": [{"greet": {"set": {"hello": "world"}}}],
}


def changed(**parts: Any) -> dict[str, Any]:
    return {**BASE, **parts}


def with_document(**fields: Any) -> dict[str, Any]:
    return {**BASE, "document": {**BASE["document"], **fields}}


WRONG: dict[str, Any] = {
    "no version": {**BASE, "document": {"dsl": "1.0.0", "namespace": "test", "name": "wrong"}},
    "no do": {"document": BASE["document"]},
    "do is not a list": changed(do={"greet": {"set": {"a": 1}}}),
    "a task of no known kind": changed(do=[{"greet": {"sing": {"a": 1}}}]),
    "two tasks in one item": changed(do=[{"a": {"set": {"x": 1}}, "b": {"set": {"y": 2}}}]),
    "http without an endpoint": changed(do=[{"get": {"call": "http", "with": {"method": "get"}}}]),
    "wait that is not a duration": changed(do=[{"pause": {"wait": {"lightyears": 3}}}]),
    "raise without an error": changed(do=[{"fail": {"raise": {}}}]),
    "for without in": changed(do=[{"loop": {"for": {"each": "x"}, "do": [{"a": {"set": {"x": 1}}}]}}]),
    "switch that is not a list": changed(do=[{"pick": {"switch": {"a": {"then": "end"}}}}]),
    "fork without branches": changed(do=[{"both": {"fork": {"compete": True}}}]),
    "listen without to": changed(do=[{"hear": {"listen": {}}}]),
    "a name with a space": with_document(name="not valid"),
    "a namespace ending in a dash": with_document(namespace="test-"),
    "a name of 64 characters": with_document(name="n" * 64),
    "a version that is not semantic": with_document(version="1.0"),
    "an unknown key in document": with_document(author="me"),
}

STRICTER: dict[str, Any] = {
    # The schema lets any other key stand beside document and do; we refuse it, because
    # a misspelt section (``outputs:``, ``inputs:``) would otherwise be ignored without a word.
    "an unknown top-level key": {**BASE, "steps": []},
}


def test_definitions_wrong_in_one_place_are_refused_by_both(official: Official) -> None:
    names = list(WRONG)
    theirs = official([WRONG[name] for name in names])
    accepted = {
        name: {"official": their, "ours": ours(WRONG[name])}
        for name, their in zip(names, theirs, strict=True)
        if their is None or ours(WRONG[name]) is None
    }
    assert accepted == {}


def test_where_we_are_stricter_on_purpose(official: Official) -> None:
    names = list(STRICTER)
    theirs = official([STRICTER[name] for name in names])
    assert theirs == [None] * len(names)  # the schema accepts them...
    assert all(ours(STRICTER[name]) is not None for name in names)  # ...and we refuse them
