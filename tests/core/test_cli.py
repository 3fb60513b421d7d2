"""The ``turnout`` command line: components list / describe / validate, version, and its error handling."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Literal

import click
import pytest
from click.testing import CliRunner, Result

from turnout import ComponentError, __version__
from turnout._cli import TurnoutGroup, main, type_label
from turnout_builtin import PostgresMetadata

pytestmark = pytest.mark.usefixtures("core_plugins")

ORDERS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders
spec:
  type: workflow.dapr
  version: v1
  metadata:
  - name: stateStore
    value: orders-store
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: orders-store
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: orders.db
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_main_is_a_group_with_room_for_more() -> None:
    assert isinstance(main, click.Group)
    assert set(main.commands) >= {"components", "version"}
    assert isinstance(main.commands["components"], click.Group)


def test_components_list() -> None:
    result = run("components", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "ALIASES", "KIND", "DISTRIBUTION", "DESCRIPTION"]
    builtin = next(line for line in lines if line.startswith("workflow.builtin"))
    assert builtin.split()[:4] == ["workflow.builtin", "workflow.dapr", "workflow", "turnout"]
    assert any(line.startswith("secretstores.local.file ") for line in lines)
    assert "Not installed (install the plugin to use them):" in lines
    assert any(line.split() == ["workflow.temporal", "pip", "install", "turnout-temporal"] for line in lines)


def test_components_list_json() -> None:
    result = run("components", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = {item["type"]: item for item in json.loads(result.stdout)}
    assert set(listed) == {
        "secretstores.local.env",
        "secretstores.local.file",
        "state.postgresql",
        "state.sqlite",
        "workflow.builtin",
    }
    assert listed["workflow.builtin"]["aliases"] == ["workflow.dapr"]
    assert listed["workflow.builtin"]["kind"] == "workflow"
    assert listed["workflow.builtin"]["distribution"] == "turnout"
    assert listed["workflow.builtin"]["versions"] == ["v1"]
    assert listed["secretstores.local.env"]["description"]


def test_components_describe() -> None:
    result = run("components", "describe", "state.postgresql")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "state.postgresql"
    assert "Kind: state" in lines
    assert "Versions: v1" in lines
    assert "  connectionString: string, required" in lines
    assert '  schema: string, default "turnout"' in lines
    assert "  maxConns: integer (>= 1), default 10" in lines
    assert "  timeout: duration, default 20s" in lines
    description = PostgresMetadata.model_fields["connection_string"].description
    assert f"      {description}" in lines


def test_components_describe_an_alias() -> None:
    result = run("components", "describe", "workflow.dapr")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "workflow.builtin (alias: workflow.dapr)"
    assert "  stateStore: string, optional" in result.stdout.splitlines()


def test_components_describe_json_is_the_models_schema() -> None:
    result = run("components", "describe", "state.postgresql", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == PostgresMetadata.model_json_schema(by_alias=True)
    assert "connectionString" in json.loads(result.stdout)["required"]


def test_components_describe_unknown_type() -> None:
    result = run("components", "describe", "workflow.temporal")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "Error: unknown component type 'workflow.temporal': install its plugin with "
        "'pip install turnout-temporal'; installed types are: secretstores.local.env,"
    )
    assert "Traceback" not in result.output


def test_components_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "components").mkdir()
    (tmp_path / "components/orders.yaml").write_text(ORDERS)
    (tmp_path / "components/sub.yaml").write_text(
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: orders-sub}\n"
    )
    result = run("components", "validate", "components")
    assert result.exit_code == 0, result.output
    assert result.stdout == textwrap.dedent(
        """\
        orders        workflow.builtin v1  components/orders.yaml
        orders-store  state.sqlite v1      components/orders.yaml
        skipped Subscription 'orders-sub' (components/sub.yaml, line 1): Turnout reads only kind Component
        2 components valid
        """
    )


def test_components_validate_lists_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = ORDERS.replace("workflow.dapr", "workflow.temporal").replace("value: orders.db", "valu: orders.db")
    Path("bad.yaml").write_text(bad)
    result = run("components", "validate", "bad.yaml")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: 3 problems in the component configuration:",
        "  - bad.yaml: component 'orders': field 'spec.type': unknown component type 'workflow.temporal': "
        "install its plugin with 'pip install turnout-temporal'; installed types are: "
        "secretstores.local.env, "
        "secretstores.local.file, state.postgresql, state.sqlite, workflow.builtin, workflow.dapr",
        "  - bad.yaml: component 'orders-store': field 'spec.metadata.connectionString.valu': unknown key "
        "(did you mean 'value'?): expected one of name, value, secretKeyRef, envRef",
        "  - bad.yaml: component 'orders-store': field 'spec.metadata.connectionString': has no value: give "
        "'value', 'secretKeyRef' or 'envRef' (write value: \"\" for empty)",
    ]


def test_components_validate_resolves_secrets_against_the_working_dir(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/secrets.json").write_text('{"db": "orders.db"}')
    components = tmp_path / "components.yaml"
    components.write_text(
        ORDERS.replace("    value: orders.db", "    secretKeyRef: {name: db}").replace(
            "  name: orders-store\n", "  name: orders-store\nauth: {secretStore: secrets}\n"
        )
        + "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: secrets}\n"
        "spec:\n  type: secretstores.local.file\n  version: v1\n"
        "  metadata: [{name: secretsFile, value: conf/secrets.json}]\n"
    )
    result = run("components", "validate", str(components), "--working-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "3 components valid"

    (tmp_path / "conf/secrets.json").write_text('{"other": "x"}')
    result = run("components", "validate", str(components), "-w", str(tmp_path))
    assert result.exit_code == 2
    assert "secret 'db' not found in secret store 'secrets'" in result.stderr


def test_components_validate_missing_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("components", "validate", "nowhere")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: no such file or folder: nowhere; pass a component YAML file or a folder of them\n",
    )


def test_version() -> None:
    result = run("version")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"turnout {__version__}"
    assert f"plugin builtin: turnout {__version__}" in lines
    assert f"plugin secretstores: turnout {__version__}" in lines


def test_a_plugin_that_fails_to_load_is_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ImportError("No module named 'grpc'")

    monkeypatch.setattr("turnout._cli.load_registry", broken)
    result = run("components", "list")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: a Turnout plugin failed to load: ImportError: No module named 'grpc'; reinstall it, or leave "
        "it out with TURNOUT_PLUGINS (a comma-separated list of the plugins to load)\n"
    )


def _group_with(error: Exception) -> click.Group:
    @click.group(cls=TurnoutGroup)
    @click.option("--debug", is_flag=True)
    def root(debug: bool) -> None:
        """A root group like main."""

    @root.command()
    def fail() -> None:
        raise error

    return root


def test_turnout_errors_exit_2_without_a_traceback() -> None:
    result = CliRunner().invoke(_group_with(ComponentError("bad", file="a.yaml")), ["fail"])
    assert (result.exit_code, result.stderr) == (2, "Error: a.yaml: bad\n")


def test_internal_errors_exit_1_and_say_how_to_see_more() -> None:
    result = CliRunner().invoke(_group_with(KeyError("x")), ["fail"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: internal error: KeyError: 'x'; this is a bug in Turnout or a plugin: run again with "
        "'turnout --debug ...' to see where, and report it\n"
    )
    result = CliRunner().invoke(_group_with(KeyError("x")), ["--debug", "fail"])
    assert isinstance(result.exception, KeyError)


@pytest.mark.parametrize(
    ("annotation", "label"),
    [
        (str, "string"),
        (int | None, "integer"),
        (bool, "boolean"),
        (float, "number"),
        (Path, "path"),
        (list[str], "list of string"),
        (dict[str, int], "mapping"),
        (Literal["a", "b"], "one of 'a', 'b'"),
        (str | int, "string or integer"),
    ],
)
def test_type_labels(annotation: object, label: str) -> None:
    assert type_label(annotation) == label


def test_describe_spells_durations_and_secrets_as_a_component_file_does() -> None:
    from datetime import timedelta

    from pydantic import SecretStr

    from turnout._cli import default_text, type_label

    assert [default_text(timedelta(seconds=s)) for s in (20, 60, 3600, 5400, 0.5, 90061)] == [
        "20s",
        "1m",
        "1h",
        "1h30m",
        "0.5s",
        "25h1m1s",
    ]
    assert default_text("turnout") == '"turnout"' and default_text(10) == "10"
    assert type_label(timedelta) == "duration" and type_label(timedelta | None) == "duration"
    assert type_label(SecretStr) == "string (secret)"
