"""Component YAML: every malformed file is refused with file, component, field and reason; good ones load."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from turnout import ComponentError, ComponentKind, ComponentRegistry
from turnout._build import build_components, validate_specs
from turnout._registry import ComponentContext
from turnout._secrets import EnvSecretStore, FileSecretStore
from turnout._specs import ComponentErrors, ComponentSpec, SkippedDocument, read_specs

Write = Callable[[str, str], Path]

INSTALLED = (
    "secretstores.local.env, secretstores.local.file, state.postgresql, state.sqlite, "
    "workflow.builtin, workflow.dapr"
)
HEAD = "apiVersion: dapr.io/v1alpha1\nkind: Component\n"


def component(
    name: str = "orders", type: str = "workflow.builtin", metadata: str = "", *, auth: str = ""
) -> str:
    """One component document; ``metadata`` is the YAML list under spec.metadata."""
    text = f"{HEAD}metadata:\n  name: {name}\n{auth}spec:\n  type: {type}\n  version: v1\n"
    if metadata:
        text += "  metadata:\n" + textwrap.indent(textwrap.dedent(metadata).strip("\n"), "  ") + "\n"
    return text


def sqlite(metadata: str, **kwargs: Any) -> str:
    return component("store", "state.sqlite", metadata, **kwargs)


FILE_STORE = component("secrets", "secretstores.local.file", "- {name: secretsFile, value: secrets.json}")

# (id, YAML text of c.yaml, the exact error message)
MALFORMED: list[tuple[str, str, str]] = [
    (
        "empty file",
        "",
        "c.yaml: the file is empty: expected one or more component documents "
        "(apiVersion: dapr.io/v1alpha1, kind: Component), separated by '---'",
    ),
    (
        "only comments and separators",
        "# nothing here\n---\n---\n",
        "c.yaml: the file is empty: expected one or more component documents "
        "(apiVersion: dapr.io/v1alpha1, kind: Component), separated by '---'",
    ),
    (
        "YAML syntax error",
        f"{HEAD}metadata:\n  name: orders\nspec:\n  type: workflow.builtin\n   version: v1\n",
        "c.yaml: not valid YAML at line 7, column 11: mapping values are not allowed here",
    ),
    (
        "unclosed flow mapping",
        f"{HEAD}metadata: {{name: orders\n",
        "c.yaml: not valid YAML at line 4, column 1: expected ',' or '}', but got '<stream end>' "
        "(while parsing a flow mapping)",
    ),
    (
        "duplicate YAML key",
        f"{HEAD}metadata:\n  name: orders\nspec:\n  type: workflow.builtin\n  type: state.sqlite\n  "
        "version: v1\n",
        "c.yaml: not valid YAML at line 7, column 3: duplicate key 'type' (first at line 6)",
    ),
    (
        "document is a list",
        "- apiVersion: dapr.io/v1alpha1\n- kind: Component\n",
        "c.yaml: expected a mapping with apiVersion, kind, metadata and spec, got a list "
        "(in the document at line 1)",
    ),
    (
        "document is a string",
        "---\njust some words\n",
        "c.yaml: expected a mapping with apiVersion, kind, metadata and spec, "
        "got a string ('just some words') (in the document at line 2)",
    ),
    (
        "missing kind",
        component().replace("kind: Component\n", ""),
        "c.yaml: component 'orders': field 'kind': missing: expected 'kind: Component'",
    ),
    (
        "kind of another system",
        component().replace("kind: Component", "kind: Deployment"),
        "c.yaml: component 'orders': field 'kind': unsupported kind 'Deployment': Turnout reads only "
        "'kind: Component' documents (and skips Dapr's Configuration, HTTPEndpoint, Resiliency, "
        "Subscription)",
    ),
    (
        "kind in the wrong case",
        component().replace("kind: Component", "kind: component"),
        "c.yaml: component 'orders': field 'kind': unsupported kind 'component' (did you mean 'Component'?): "
        "Turnout reads only 'kind: Component' documents "
        "(and skips Dapr's Configuration, HTTPEndpoint, Resiliency, Subscription)",
    ),
    (
        "Dapr kind under a foreign apiVersion",
        component().replace("kind: Component", "kind: Subscription").replace("dapr.io", "example.com"),
        "c.yaml: component 'orders': field 'kind': unsupported kind 'Subscription': Turnout reads only "
        "'kind: Component' documents (and skips Dapr's Configuration, HTTPEndpoint, Resiliency, "
        "Subscription)",
    ),
    (
        "missing apiVersion",
        component().replace("apiVersion: dapr.io/v1alpha1\n", ""),
        "c.yaml: component 'orders': field 'apiVersion': missing: expected 'apiVersion: dapr.io/v1alpha1'",
    ),
    (
        "wrong apiVersion",
        component().replace("dapr.io/v1alpha1", "dapr.io/v1"),
        "c.yaml: component 'orders': field 'apiVersion': unsupported apiVersion 'dapr.io/v1': "
        "expected dapr.io/v1alpha1",
    ),
    (
        "unknown top-level key",
        component() + "spce: {}\n",
        "c.yaml: component 'orders': field 'spce': unknown key (did you mean 'spec'?): "
        "expected one of apiVersion, kind, metadata, spec, auth, scopes",
    ),
    (
        "missing metadata",
        f"{HEAD}spec:\n  type: workflow.builtin\n  version: v1\n",
        "c.yaml: field 'metadata': missing: every component needs 'metadata: {name: NAME}' "
        "(in the document at line 1)",
    ),
    (
        "metadata is a list",
        f"{HEAD}metadata:\n- name: orders\nspec:\n  type: workflow.builtin\n  version: v1\n",
        "c.yaml: field 'metadata': expected a mapping with 'name', got a list (in the document at line 1)",
    ),
    (
        "missing name",
        f"{HEAD}metadata:\n  namespace: default\nspec:\n  type: workflow.builtin\n  version: v1\n",
        "c.yaml: field 'metadata.name': missing: every component needs a name, the one used in every API "
        "call "
        "(in the document at line 1)",
    ),
    (
        "empty name",
        component(name='""'),
        "c.yaml: field 'metadata.name': missing: every component needs a name, the one used in every API "
        "call "
        "(in the document at line 1)",
    ),
    (
        "name is a number",
        component(name="42"),
        "c.yaml: field 'metadata.name': expected a string, got a number (42): quote it (in the document at "
        "line 1)",
    ),
    (
        "name is a dot",
        component(name="'.'"),
        "c.yaml: component '.': field 'metadata.name': invalid name '.': a name may not be '.'",
    ),
    (
        "name is two dots",
        component(name="'..'"),
        "c.yaml: component '..': field 'metadata.name': invalid name '..': a name may not be '..'",
    ),
    (
        "name with a slash",
        component(name="orders/eu"),
        "c.yaml: component 'orders/eu': field 'metadata.name': invalid name 'orders/eu': "
        "a name may not contain '/' (it is used in URL paths)",
    ),
    (
        "name with a percent sign",
        component(name="orders%20eu"),
        "c.yaml: component 'orders%20eu': field 'metadata.name': invalid name 'orders%20eu': "
        "a name may not contain '%' (it is used in URL paths)",
    ),
    (
        "namespace is not a string",
        component().replace("  name: orders\n", "  name: orders\n  namespace: [a]\n"),
        "c.yaml: component 'orders': field 'metadata.namespace': expected a string, got a list",
    ),
    (
        "missing spec",
        f"{HEAD}metadata:\n  name: orders\n",
        "c.yaml: component 'orders': field 'spec': missing: a component needs spec.type, spec.version "
        "and usually spec.metadata",
    ),
    (
        "spec is a string",
        f"{HEAD}metadata:\n  name: orders\nspec: workflow.builtin\n",
        "c.yaml: component 'orders': field 'spec': expected a mapping with type, version and metadata, "
        "got a string ('workflow.builtin')",
    ),
    (
        "unknown spec key",
        component() + "  metdata: []\n",
        "c.yaml: component 'orders': field 'spec.metdata': unknown key (did you mean 'metadata'?): "
        "expected one of type, version, metadata, initTimeout, ignoreErrors",
    ),
    (
        "key given twice in two cases",
        component() + "  Type: workflow.builtin\n",
        "c.yaml: component 'orders': field 'spec.Type': given twice (as 'type' and 'Type'; "
        "keys are case-insensitive)",
    ),
    (
        "missing type",
        component().replace("  type: workflow.builtin\n", ""),
        "c.yaml: component 'orders': field 'spec.type': missing: give the component type, "
        f"e.g. 'type: workflow.builtin' (installed types: {INSTALLED})",
    ),
    (
        "type is a list",
        component(type="[workflow.builtin]"),
        "c.yaml: component 'orders': field 'spec.type': expected a type name such as workflow.builtin, "
        "got a list",
    ),
    (
        "type of an unknown category",
        component(type="queue.sqs"),
        "c.yaml: component 'orders': field 'spec.type': unknown category 'queue' in type 'queue.sqs': "
        f"a type starts with workflow., state. or secretstores. (installed types: {INSTALLED})",
    ),
    (
        "Dapr category Turnout does not serve",
        component(type="pubsub.redis"),
        "c.yaml: component 'orders': field 'spec.type': 'pubsub.redis' is a Dapr pubsub component, which "
        "Turnout does not serve: Turnout reads workflow, state and secretstores components; keep this file "
        "in Dapr's own resources folder",
    ),
    (
        "type whose plugin is not installed",
        component(type="workflow.temporal"),
        "c.yaml: component 'orders': field 'spec.type': unknown component type 'workflow.temporal': "
        f"install its plugin with 'pip install turnout-temporal'; installed types are: {INSTALLED}",
    ),
    (
        "misspelt type",
        component(type="workflow.bultin"),
        "c.yaml: component 'orders': field 'spec.type': unknown component type 'workflow.bultin': check the "
        "spelling (did you mean 'workflow.builtin'?) or install the plugin that provides it; "
        f"installed types are: {INSTALLED}",
    ),
    (
        "missing version",
        component().replace("  version: v1\n", ""),
        "c.yaml: component 'orders': field 'spec.version': missing: add 'version: v1' (supported versions: "
        "v1)",
    ),
    (
        "unsupported version",
        component().replace("version: v1", "version: v2"),
        "c.yaml: component 'orders': field 'spec.version': unsupported version 'v2' of workflow.builtin: "
        "supported versions are v1",
    ),
    (
        "version is a number",
        component().replace("version: v1", "version: 1"),
        "c.yaml: component 'orders': field 'spec.version': expected a version string such as 'v1', "
        "got a number (1)",
    ),
    (
        "initTimeout is not a duration",
        component() + "  initTimeout: 5 seconds\n",
        "c.yaml: component 'orders': field 'spec.initTimeout': expected a duration such as '5s' or '1m30s', "
        "got a string ('5 seconds')",
    ),
    (
        "ignoreErrors is not a boolean",
        component() + "  ignoreErrors: sometimes\n",
        "c.yaml: component 'orders': field 'spec.ignoreErrors': expected true or false, "
        "got a string ('sometimes')",
    ),
    (
        "scopes is not a list",
        component() + "scopes: checkout\n",
        "c.yaml: component 'orders': field 'scopes': expected a list of app ids (strings), "
        "got a string ('checkout')",
    ),
    (
        "metadata is a mapping",
        component() + "  metadata:\n    connectionString: orders.db\n",
        "c.yaml: component 'orders': field 'spec.metadata': expected a list of entries such as "
        "'- name: connectionString' with 'value: ...', got a mapping",
    ),
    (
        "metadata entry is a string",
        sqlite("- connectionString=orders.db"),
        "c.yaml: component 'store': field 'spec.metadata[0]': expected a mapping with 'name' and 'value', "
        "got a string ('connectionString=orders.db')",
    ),
    (
        "metadata entry without a name",
        sqlite("- {name: busyTimeout, value: 10}\n- {value: orders.db}"),
        "c.yaml: component 'store': field 'spec.metadata[1]': missing 'name': each metadata entry needs "
        "a name and a value, secretKeyRef or envRef",
    ),
    (
        "metadata name is a number",
        sqlite("- {name: 7, value: orders.db}"),
        "c.yaml: component 'store': field 'spec.metadata[0]': expected 'name' to be a string, got a number "
        "(7)",
    ),
    (
        "duplicate metadata names",
        sqlite("- {name: connectionString, value: a.db}\n- {name: connectionstring, value: b.db}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionstring': given twice "
        "(also as spec.metadata[0]; metadata names are case-insensitive)",
    ),
    (
        "value and secretKeyRef",
        sqlite(
            "- name: connectionString\n  value: a.db\n  secretKeyRef: {name: db}",
            auth="auth: {secretStore: secrets}\n",
        )
        + "---\n"
        + FILE_STORE,
        "c.yaml: component 'store': field 'spec.metadata.connectionString': gives both value and "
        "secretKeyRef: "
        "use exactly one of value, secretKeyRef and envRef",
    ),
    (
        "value and envRef",
        sqlite("- {name: connectionString, value: a.db, envRef: DB}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString': gives both value and envRef: "
        "use exactly one of value, secretKeyRef and envRef",
    ),
    (
        "entry without a value",
        sqlite("- name: connectionString"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString': has no value: give 'value', "
        "'secretKeyRef' or 'envRef' (write value: \"\" for empty)",
    ),
    (
        "misspelt key in an entry",
        sqlite("- {name: connectionString, valeu: a.db, value: b.db}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString.valeu': unknown key "
        "(did you mean 'value'?): expected one of name, value, secretKeyRef, envRef",
    ),
    (
        "secretKeyRef is a string",
        sqlite("- {name: connectionString, secretKeyRef: db}", auth="auth: {secretStore: secrets}\n")
        + "---\n"
        + FILE_STORE,
        "c.yaml: component 'store': field 'spec.metadata.connectionString.secretKeyRef': expected a mapping "
        "such as '{name: SECRET, key: KEY}', got a string ('db')",
    ),
    (
        "secretKeyRef without a name",
        sqlite("- {name: connectionString, secretKeyRef: {key: db}}", auth="auth: {secretStore: secrets}\n")
        + "---\n"
        + FILE_STORE,
        "c.yaml: component 'store': field 'spec.metadata.connectionString.secretKeyRef.name': expected the "
        "secret's name (a non-empty string), got nothing",
    ),
    (
        "secretKeyRef with an unknown key",
        sqlite(
            "- {name: connectionString, secretKeyRef: {name: db, field: x}}",
            auth="auth: {secretStore: secrets}\n",
        )
        + "---\n"
        + FILE_STORE,
        "c.yaml: component 'store': field 'spec.metadata.connectionString.secretKeyRef.field': unknown key: "
        "expected one of name, key",
    ),
    (
        "envRef to a Dapr variable",
        sqlite("- {name: connectionString, envRef: DAPR_HTTP_PORT}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString.envRef': environment variable "
        "'DAPR_HTTP_PORT' may not be read by envRef: Dapr reserves DAPR_* and APP_API_TOKEN",
    ),
    (
        "envRef to APP_API_TOKEN",
        sqlite("- {name: connectionString, envRef: APP_API_TOKEN}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString.envRef': environment variable "
        "'APP_API_TOKEN' may not be read by envRef: Dapr reserves DAPR_* and APP_API_TOKEN",
    ),
    (
        "envRef with a space",
        sqlite("- {name: connectionString, envRef: DB PATH}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString.envRef': invalid environment "
        "variable name 'DB PATH': names may not contain spaces",
    ),
    (
        "envRef to an unset variable",
        sqlite("- {name: connectionString, envRef: ORDERS_DB}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString': environment variable "
        "'ORDERS_DB' (envRef) is not set: set it, or use 'value'",
    ),
    (
        "unknown metadata field",
        sqlite("- {name: conectionString, value: a.db}"),
        "c.yaml: component 'store': field 'spec.metadata.conectionString': unknown field for state.sqlite "
        "(did you mean 'connectionString'?); accepted fields: busyTimeout, connectionString, disableWAL",
    ),
    (
        "missing required metadata",
        component("pg", "state.postgresql", "- {name: schema, value: wf}"),
        "c.yaml: component 'pg': field 'spec.metadata.connectionString': required: add an entry "
        "'- name: connectionString' with a value, secretKeyRef or envRef",
    ),
    (
        "not an integer",
        sqlite("- {name: busyTimeout, value: soon}"),
        "c.yaml: component 'store': field 'spec.metadata.busyTimeout': invalid value 'soon': expected a "
        "valid "
        "integer, unable to parse string as an integer",
    ),
    (
        "integer below its minimum",
        component(metadata="- {name: maxConcurrentActivityInvocations, value: 0}"),
        "c.yaml: component 'orders': field 'spec.metadata.maxConcurrentActivityInvocations': invalid value "
        "0: "
        "expected a value greater than or equal to 1",
    ),
    (
        "not a boolean",
        sqlite("- {name: disableWAL, value: maybe}"),
        "c.yaml: component 'store': field 'spec.metadata.disableWAL': invalid value 'maybe': expected a "
        "valid "
        "boolean, unable to interpret input",
    ),
    (
        "a list for a string",
        sqlite("- {name: connectionString, value: [a.db, b.db]}"),
        "c.yaml: component 'store': field 'spec.metadata.connectionString': invalid value ['a.db', 'b.db']: "
        "expected a valid string",
    ),
    (
        "secretKeyRef without a secret store",
        sqlite("- {name: connectionString, secretKeyRef: {name: db}}"),
        "c.yaml: component 'store': field 'auth.secretStore': missing: spec.metadata.connectionString uses "
        "secretKeyRef, which is resolved through a secret store; add 'auth: {secretStore: NAME}' naming a "
        "secretstores.local.env or secretstores.local.file component",
    ),
    (
        "secret store that is not declared",
        sqlite("- {name: connectionString, secretKeyRef: {name: db}}", auth="auth: {secretStore: vault}\n")
        + "---\n"
        + FILE_STORE,
        "c.yaml: component 'store': field 'auth.secretStore': no component named 'vault' is declared (secret "
        "stores declared: secrets); declare a secretstores.local.env or secretstores.local.file component "
        "with that name",
    ),
    (
        "secret store that is a workflow component",
        sqlite("- {name: connectionString, secretKeyRef: {name: db}}", auth="auth: {secretStore: orders}\n")
        + "---\n"
        + component(),
        "c.yaml: component 'store': field 'auth.secretStore': 'orders' is a workflow.builtin component, "
        "not a "
        "secret store: name a secretstores.* component",
    ),
    (
        "auth is a string",
        component(auth="auth: secrets\n"),
        "c.yaml: component 'orders': field 'auth': expected a mapping such as '{secretStore: NAME}', "
        "got a string ('secrets')",
    ),
    (
        "auth with an unknown key",
        component(auth="auth: {store: secrets}\n"),
        "c.yaml: component 'orders': field 'auth.store': unknown key: expected 'secretStore'",
    ),
    (
        "secret store reading a secret store",
        component(
            "secrets",
            "secretstores.local.file",
            "- {name: secretsFile, secretKeyRef: {name: path}}",
            auth="auth: {secretStore: env}\n",
        )
        + "---\n"
        + component("env", "secretstores.local.env"),
        "c.yaml: component 'secrets': field 'spec.metadata.secretsFile': a secret store cannot read its own "
        "metadata from a secret store: give it with 'value' or 'envRef'",
    ),
    (
        "duplicate names in one file",
        component() + "---\n" + component("orders", "state.sqlite"),
        "c.yaml: component 'orders': field 'metadata.name': duplicate component name 'orders': also defined "
        "at line 1 of this file; names must be unique",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_file_is_refused_with_the_exact_message(
    write: Write, component_registry: ComponentRegistry, text: str, expected: str
) -> None:
    write("c.yaml", text)
    with pytest.raises(ComponentErrors) as raised:
        read_specs("c.yaml", component_registry, environ={})
    assert str(raised.value) == expected
    assert len(raised.value.errors) == 1
    assert raised.value.errors[0].message == expected


def test_the_table_covers_enough_cases() -> None:
    assert len(MALFORMED) >= 35
    assert len({c[0] for c in MALFORMED}) == len(MALFORMED)


def test_error_keeps_file_component_and_field(write: Write, component_registry: ComponentRegistry) -> None:
    write("c.yaml", sqlite("- {name: busyTimeout, value: soon}"))
    with pytest.raises(ComponentError) as raised:
        read_specs("c.yaml", component_registry)
    error = raised.value
    assert (error.file, error.component, error.field) == ("c.yaml", "store", "spec.metadata.busyTimeout")
    assert error.reason.startswith("invalid value 'soon'")


def test_every_problem_in_every_file_is_reported_at_once(
    write: Write, component_registry: ComponentRegistry
) -> None:
    write(
        "components/a.yaml",
        component(type="workflow.temporal") + "---\n" + sqlite("- {name: nope, value: 1}"),
    )
    write("components/b.yaml", component("store", "state.sqlite").replace("version: v1", "version: v9"))
    write("components/c.yml", "kind: [\n")
    with pytest.raises(ComponentErrors) as raised:
        read_specs("components", component_registry)
    error = raised.value
    found = [(e.file, e.component, e.field) for e in error.errors]
    assert found == [
        ("components/a.yaml", "orders", "spec.type"),
        ("components/a.yaml", "store", "spec.metadata.nope"),
        ("components/b.yaml", "store", "spec.version"),
        ("components/b.yaml", "store", "metadata.name"),
        ("components/c.yml", None, None),
    ]
    lines = str(error).splitlines()
    assert lines[0] == "5 problems in the component configuration:"
    assert lines[1:] == [f"  - {e.message}" for e in error.errors]
    assert "also defined in components/a.yaml" in lines[4]
    assert isinstance(error, ComponentError)


def test_a_document_with_several_problems_reports_each(
    write: Write, component_registry: ComponentRegistry
) -> None:
    write(
        "c.yaml",
        "apiVersion: v1\nkind: Component\nmetadata: {name: a/b}\n"
        "spec:\n  type: state.sqlite\n  metadata:\n  - {name: busyTimeout, value: x}\n  - name: disableWAL\n",
    )
    with pytest.raises(ComponentErrors) as raised:
        read_specs("c.yaml", component_registry)
    assert [e.field for e in raised.value.errors] == [
        "apiVersion",
        "metadata.name",
        "spec.version",
        "spec.metadata.disableWAL",
        "spec.metadata.busyTimeout",
    ]


def test_duplicate_names_across_files_name_both_files(
    write: Write, component_registry: ComponentRegistry
) -> None:
    write("components/a.yaml", component())
    write("components/b.yaml", component("orders", "state.sqlite"))
    with pytest.raises(ComponentErrors) as raised:
        read_specs("components", component_registry)
    assert str(raised.value) == (
        "components/b.yaml: component 'orders': field 'metadata.name': duplicate component name 'orders': "
        "also defined in components/a.yaml; names must be unique"
    )


@pytest.mark.parametrize(
    ("setup", "path", "expected"),
    [
        (
            lambda w: Path("empty").mkdir(),
            "empty",
            "empty: no component files in folder empty: expected files ending in .yaml or .yml",
        ),
        (
            lambda w: w("notes/readme.txt", "hello"),
            "notes",
            "notes: no component files in folder notes: expected files ending in .yaml or .yml",
        ),
        (
            lambda w: None,
            "missing.yaml",
            "no such file or folder: missing.yaml; pass a component YAML file or a folder of them",
        ),
        (
            lambda w: w(
                "sub.yaml",
                "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\nspec: {topic: t}\n",
            ),
            "sub.yaml",
            "no components found in sub.yaml (only Subscription, which Turnout skips): "
            "expected documents with kind: Component",
        ),
    ],
    ids=["empty folder", "folder without yaml", "missing path", "only other Dapr kinds"],
)
def test_paths_without_components_are_refused(
    write: Write,
    component_registry: ComponentRegistry,
    setup: Callable[[Write], Any],
    path: str,
    expected: str,
) -> None:
    setup(write)
    with pytest.raises(ComponentErrors) as raised:
        read_specs(path, component_registry)
    assert str(raised.value) == expected


def test_file_that_is_not_utf8(write: Write, component_registry: ComponentRegistry) -> None:
    Path("c.yaml").write_bytes(b"kind: Component\nname: \xff\n")
    with pytest.raises(
        ComponentErrors, match=r"^c.yaml: not UTF-8 text \(byte 22\): save the file as UTF-8$"
    ):
        read_specs("c.yaml", component_registry)


# ---------------------------------------------------------------------------
# Files that load


def test_several_documents_per_file(write: Write, component_registry: ComponentRegistry) -> None:
    write(
        "c.yaml",
        "---\n" + component() + "---\n" + sqlite("- {name: connectionString, value: a.db}") + "...\n",
    )
    specs = read_specs("c.yaml", component_registry)
    assert [(s.name, s.type, s.file, s.line) for s in specs] == [
        ("orders", "workflow.builtin", "c.yaml", 2),
        ("store", "state.sqlite", "c.yaml", 10),
    ]
    assert specs[1].metadata[0].name == "connectionString"
    assert specs[1].metadata[0].value == "a.db"


def test_a_folder_reads_yaml_and_yml_files_in_name_order(
    write: Write, component_registry: ComponentRegistry
) -> None:
    write("components/b.yml", component("b", "state.sqlite"))
    write("components/a.yaml", component("a"))
    write("components/notes.txt", "not yaml: [")
    write("components/.hidden.yaml", "not yaml: [")
    write("components/nested/c.yaml", "not yaml: [")
    specs = read_specs("components", component_registry)
    assert [(s.name, s.file) for s in specs] == [("a", "components/a.yaml"), ("b", "components/b.yml")]


def test_other_dapr_kinds_are_skipped_and_reported(
    write: Write, component_registry: ComponentRegistry
) -> None:
    write(
        "c.yaml",
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: orders-sub}\n"
        "spec: {topic: orders}\n---\n"
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: tracing}\nspec: {}\n---\n"
        + component(),
    )
    skipped: list[SkippedDocument] = []
    specs = read_specs("c.yaml", component_registry, skipped=skipped)
    assert [s.name for s in specs] == ["orders"]
    assert skipped == [
        SkippedDocument("c.yaml", 1, "Subscription", "orders-sub"),
        SkippedDocument("c.yaml", 6, "Configuration", "tracing"),
    ]


def test_alias_type_and_case_insensitive_names(write: Write, component_registry: ComponentRegistry) -> None:
    write(
        "c.yaml",
        component(type="Workflow.Dapr", metadata="- {name: maxconcurrentactivityinvocations, value: '8'}")
        + "---\n"
        + component("env", "secretstores.local.env"),
    )
    specs = read_specs("c.yaml", component_registry)
    assert specs[0].component_type.type == "workflow.builtin"
    assert specs[0].type == "Workflow.Dapr"
    metadata = validate_specs(specs, working_dir=".")
    assert metadata["orders"].max_concurrent_activities == 8


@pytest.mark.parametrize("version", ["v1", "v0", '""'])
def test_initial_versions_are_accepted(
    write: Write, component_registry: ComponentRegistry, version: str
) -> None:
    write("c.yaml", component().replace("version: v1", f"version: {version}"))
    assert read_specs("c.yaml", component_registry)[0].version == version.strip('"')


def test_dapr_fields_that_turnout_does_not_use_are_kept(
    write: Write, component_registry: ComponentRegistry
) -> None:
    text = component().replace("  name: orders\n", "  name: orders\n  namespace: prod\n  labels: {team: a}\n")
    write("c.yaml", text + "  initTimeout: 1m30s\n  ignoreErrors: 'true'\nscopes: [checkout]\n")
    spec = read_specs("c.yaml", component_registry)[0]
    assert spec.extra == {
        "namespace": "prod",
        "initTimeout": "1m30s",
        "ignoreErrors": True,
        "scopes": ["checkout"],
    }


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("- {name: busyTimeout, value: '250'}", {"busy_timeout_ms": 250}),
        ("- {name: busyTimeout, value: 250}", {"busy_timeout_ms": 250}),
        ("- {name: disableWAL, value: 'true'}", {"disable_wal": True}),
        ("- {name: disableWAL, value: 'True'}", {"disable_wal": True}),
        ("- {name: disableWAL, value: yes}", {"disable_wal": True}),
        ("- {name: disableWAL, value: '0'}", {"disable_wal": False}),
        ("- {name: connectionString, value: 2024}", {"connection_string": "2024"}),
        ("- {name: connectionString, value: 1.5}", {"connection_string": "1.5"}),
        ("- {name: connectionString, value: true}", {"connection_string": "true"}),
        ("- {name: connectionString, value: ''}", {"connection_string": ""}),
        ("- {name: connectionString, value: 2024-01-31}", {"connection_string": "2024-01-31"}),
    ],
)
def test_values_are_coerced_like_dapr_strings(
    write: Write, component_registry: ComponentRegistry, metadata: str, expected: dict[str, Any]
) -> None:
    write("c.yaml", sqlite(metadata))
    values = validate_specs(read_specs("c.yaml", component_registry), working_dir=".")["store"].model_dump()
    assert {key: values[key] for key in expected} == expected


def test_env_ref(
    write: Write, component_registry: ComponentRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_DB", "orders.db")
    monkeypatch.setenv("ORDERS_BUSY", "1200")
    write(
        "c.yaml",
        sqlite("- {name: connectionString, envRef: ORDERS_DB}\n- {name: busyTimeout, envRef: ORDERS_BUSY}"),
    )
    specs = read_specs("c.yaml", component_registry)
    assert specs[0].metadata[0].env_ref == "ORDERS_DB"
    metadata = validate_specs(specs, working_dir=".")["store"]
    assert (metadata.connection_string, metadata.busy_timeout_ms) == ("orders.db", 1200)


def test_env_ref_uses_the_given_environment(write: Write, component_registry: ComponentRegistry) -> None:
    write("c.yaml", sqlite("- {name: connectionString, envRef: ORDERS_DB}"))
    specs = read_specs("c.yaml", component_registry, environ={"ORDERS_DB": "x.db"})
    metadata = validate_specs(specs, working_dir=".", environ={"ORDERS_DB": "x.db"})
    assert metadata["store"].connection_string == "x.db"


def test_invalid_env_value_is_named_by_its_variable(
    write: Write, component_registry: ComponentRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_BUSY", "soon")
    write("c.yaml", sqlite("- {name: busyTimeout, envRef: ORDERS_BUSY}"))
    with pytest.raises(ComponentErrors) as raised:
        read_specs("c.yaml", component_registry)
    assert str(raised.value) == (
        "c.yaml: component 'store': field 'spec.metadata.busyTimeout': invalid value from environment "
        "variable 'ORDERS_BUSY': expected a valid integer, unable to parse string as an integer"
    )


# ---------------------------------------------------------------------------
# Secrets


def test_secret_key_ref_through_the_file_store(write: Write, component_registry: ComponentRegistry) -> None:
    write("secrets.json", json.dumps({"db": {"path": "orders.db", "timeout": 900}}))
    write(
        "c.yaml",
        sqlite(
            "- name: connectionString\n  secretKeyRef: {name: 'db:path', key: 'db:path'}\n"
            "- name: busyTimeout\n  secretKeyRef: {name: 'db:timeout'}",
            auth="auth: {secretStore: secrets}\n",
        )
        + "---\n"
        + FILE_STORE,
    )
    specs = read_specs("c.yaml", component_registry)
    assert specs[0].secret_store == "secrets"
    assert (specs[0].metadata[1].secret_name, specs[0].metadata[1].secret_key) == ("db:timeout", "db:timeout")
    metadata = validate_specs(specs, working_dir=".")
    assert (metadata["store"].connection_string, metadata["store"].busy_timeout_ms) == ("orders.db", 900)


def test_secret_key_ref_through_a_multi_valued_file_store(
    write: Write, component_registry: ComponentRegistry, tmp_path: Path
) -> None:
    write("conf/secrets.json", json.dumps({"db": {"path": "orders.db", "opts": {"timeout": 5}}}))
    write(
        "c.yaml",
        sqlite(
            "- {name: connectionString, secretKeyRef: {name: db, key: path}}\n"
            "- {name: busyTimeout, secretKeyRef: {name: db, key: 'opts/timeout'}}",
            auth="auth:\n  secretstore: secrets\n",  # Dapr's docs spell it so
        )
        + "---\n"
        + component(
            "secrets",
            "secretstores.local.file",
            "- {name: secretsFile, value: conf/secrets.json}\n"
            "- {name: multiValued, value: 'true'}\n- {name: nestedSeparator, value: /}",
        ),
    )
    metadata = validate_specs(read_specs("c.yaml", component_registry), working_dir=tmp_path)
    assert (metadata["store"].connection_string, metadata["store"].busy_timeout_ms) == ("orders.db", 5)


def test_secret_key_ref_through_the_env_store(
    write: Write, component_registry: ComponentRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYAPP_DB", "orders.db")
    write(
        "c.yaml",
        sqlite("- {name: connectionString, secretKeyRef: {name: DB}}", auth="auth: {secretStore: env}\n")
        + "---\n"
        + component("env", "secretstores.local.env", "- {name: prefix, value: MYAPP_}"),
    )
    metadata = validate_specs(read_specs("c.yaml", component_registry), working_dir=".")
    assert metadata["store"].connection_string == "orders.db"


SECRET_PROBLEMS = [
    (
        "missing secret",
        {"other": "x"},
        "- {name: connectionString, secretKeyRef: {name: db}}",
        "c.yaml: component 'store': field 'spec.metadata.connectionString': secret 'db' not found in secret "
        "store 'secrets' (file {dir}/secrets.json; its secrets: other)",
    ),
    (
        "missing key",
        {"db": "x"},
        "- {name: connectionString, secretKeyRef: {name: db, key: password}}",
        "c.yaml: component 'store': field 'spec.metadata.connectionString': secret 'db' in secret store "
        "'secrets' has no key 'password' (its keys: db); fix secretKeyRef.key",
    ),
    (
        "secret value of the wrong type",
        {"timeout": "soon"},
        "- {name: busyTimeout, secretKeyRef: {name: timeout}}",
        "c.yaml: component 'store': field 'spec.metadata.busyTimeout': invalid value from secret 'timeout' "
        "key "
        "'timeout' (value not shown): expected a valid integer, unable to parse string as an integer",
    ),
]


@pytest.mark.parametrize(
    ("secrets", "metadata", "expected"), [c[1:] for c in SECRET_PROBLEMS], ids=[c[0] for c in SECRET_PROBLEMS]
)
def test_secret_problems_are_refused(
    write: Write,
    component_registry: ComponentRegistry,
    tmp_path: Path,
    secrets: dict[str, Any],
    metadata: str,
    expected: str,
) -> None:
    write("secrets.json", json.dumps(secrets))
    write("c.yaml", sqlite(metadata, auth="auth: {secretStore: secrets}\n") + "---\n" + FILE_STORE)
    specs = read_specs("c.yaml", component_registry)
    with pytest.raises(ComponentErrors) as raised:
        validate_specs(specs, working_dir=tmp_path)
    assert str(raised.value) == expected.format(dir=tmp_path)
    assert "soon" not in str(raised.value)  # secret values are never shown


def test_missing_env_secret(write: Write, component_registry: ComponentRegistry) -> None:
    write(
        "c.yaml",
        sqlite("- {name: connectionString, secretKeyRef: {name: DB}}", auth="auth: {secretStore: env}\n")
        + "---\n"
        + component("env", "secretstores.local.env", "- {name: prefix, value: TURNOUT_TEST_UNSET_}"),
    )
    with pytest.raises(ComponentErrors) as raised:
        validate_specs(read_specs("c.yaml", component_registry), working_dir=".")
    assert str(raised.value) == (
        "c.yaml: component 'store': field 'spec.metadata.connectionString': secret 'DB' not found in secret "
        "store 'env': environment variable 'TURNOUT_TEST_UNSET_DB' is not set"
    )


def test_missing_secrets_file_names_the_store(
    write: Write, component_registry: ComponentRegistry, tmp_path: Path
) -> None:
    write("c.yaml", FILE_STORE)
    with pytest.raises(ComponentErrors) as raised:
        validate_specs(read_specs("c.yaml", component_registry), working_dir=tmp_path)
    assert str(raised.value) == (
        f"c.yaml: component 'secrets': field 'spec.metadata.secretsFile': secrets file not found: "
        f"{tmp_path}/secrets.json (a relative secretsFile is resolved against the working directory)"
    )


def test_every_secret_problem_is_reported(write: Write, component_registry: ComponentRegistry) -> None:
    write("secrets.json", "{}")
    write(
        "c.yaml",
        sqlite("- {name: connectionString, secretKeyRef: {name: a}}", auth="auth: {secretStore: secrets}\n")
        + "---\n"
        + component("pg", "state.postgresql", "- {name: connectionString, secretKeyRef: {name: b}}").replace(
            "spec:", "auth: {secretStore: secrets}\nspec:"
        )
        + "---\n"
        + FILE_STORE,
    )
    with pytest.raises(ComponentErrors) as raised:
        validate_specs(read_specs("c.yaml", component_registry), working_dir=".")
    assert [(e.component, e.field) for e in raised.value.errors] == [
        ("store", "spec.metadata.connectionString"),
        ("pg", "spec.metadata.connectionString"),
    ]


# ---------------------------------------------------------------------------
# Building


def test_build_order_context_and_resolve(
    write: Write, recording_registry: ComponentRegistry, built_log: list[str], tmp_path: Path
) -> None:
    write(
        "c.yaml",
        component(metadata="- {name: stateStore, value: store}")
        + "---\n"
        + sqlite("- {name: connectionString, value: a.db}")
        + "---\n"
        + component("env", "secretstores.local.env"),
    )
    specs = read_specs("c.yaml", recording_registry)
    built = build_components(specs, working_dir=tmp_path, workflows="the workflows")
    assert list(built) == ["env", "store", "orders"]
    assert built_log == ["store", "orders"]
    assert isinstance(built["env"][1], EnvSecretStore)
    spec, orders = built["orders"]
    assert isinstance(spec, ComponentSpec)
    assert type(orders).__name__ == "Built"
    context = orders.context
    assert (context.name, context.component_type, context.file) == ("orders", "workflow.builtin", "c.yaml")
    assert (context.working_dir, context.workflows) == (tmp_path, "the workflows")
    assert context.resolve("store", ComponentKind.STATE) is built["store"][1]
    with pytest.raises(ComponentError, match=r"'store' is a state\.sqlite component, not a workflow one"):
        context.resolve("store", ComponentKind.WORKFLOW)
    with pytest.raises(ComponentError, match=r"no state component named 'nope' \(declared: store\)"):
        context.resolve("nope", ComponentKind.STATE)


def test_file_store_is_built_with_a_relative_path(
    write: Write, component_registry: ComponentRegistry, tmp_path: Path
) -> None:
    write("conf/secrets.json", '{"a": "b"}')
    write(
        "c.yaml",
        component("secrets", "secretstores.local.file", "- {name: secretsFile, value: conf/secrets.json}"),
    )
    built = build_components(read_specs("c.yaml", component_registry), working_dir=tmp_path, workflows=None)
    store = built["secrets"][1]
    assert isinstance(store, FileSecretStore)
    assert store.path == tmp_path / "conf/secrets.json"
    assert store.get_secret("a") == {"a": "b"}


def test_nothing_is_created_when_any_spec_is_invalid(
    write: Write, recording_registry: ComponentRegistry, built_log: list[str]
) -> None:
    write("c.yaml", sqlite("- {name: busyTimeout, envRef: TURNOUT_BUSY}") + "---\n" + component())
    specs = read_specs("c.yaml", recording_registry, environ={"TURNOUT_BUSY": "5"})
    with pytest.raises(ComponentErrors, match="'TURNOUT_BUSY' \\(envRef\\) is not set"):
        build_components(specs, working_dir=Path("."), workflows=None, environ={})
    assert built_log == []


def _failing_registry(registry: ComponentRegistry, failing: str, error: Exception) -> ComponentRegistry:
    def fail(metadata: BaseModel, context: ComponentContext) -> Any:
        raise error

    result = ComponentRegistry()
    for component_type in registry:
        if component_type.type == failing:
            component_type = dataclasses.replace(component_type, factory=fail)
        result.register(component_type)
    return result


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ComponentError("cannot reach the server", field="spec.metadata.connectionString"),
            "c.yaml: component 'orders': field 'spec.metadata.connectionString': cannot reach the server",
        ),
        (
            RuntimeError("boom"),
            "c.yaml: component 'orders': could not be created: RuntimeError: boom",
        ),
    ],
)
def test_a_failing_factory_drops_what_was_built(
    write: Write,
    recording_registry: ComponentRegistry,
    built_log: list[str],
    error: Exception,
    expected: str,
) -> None:
    registry = _failing_registry(recording_registry, "workflow.builtin", error)
    write("c.yaml", sqlite("- {name: connectionString, value: a.db}") + "---\n" + component())
    with pytest.raises(ComponentErrors) as raised:
        build_components(read_specs("c.yaml", registry), working_dir=Path("."), workflows=None)
    assert str(raised.value) == expected
    assert built_log == ["store"]  # built, then dropped: build_components returned nothing


def test_build_checks_specs_made_in_code(recording_registry: ComponentRegistry) -> None:
    store_type = recording_registry.lookup("state.sqlite")
    specs = [
        ComponentSpec(name="a", type="state.sqlite", component_type=store_type),
        ComponentSpec(name="a", type="state.sqlite", component_type=store_type),
    ]
    with pytest.raises(ComponentErrors, match="duplicate component name 'a'"):
        build_components(specs, working_dir=Path("."), workflows=None)


def test_component_errors_needs_an_error() -> None:
    with pytest.raises(ValueError, match="at least one error"):
        ComponentErrors([])
