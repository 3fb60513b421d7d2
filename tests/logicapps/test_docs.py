"""docs/engines/azure-logicapps.md stays true: its tables match the code and its example runs.

The page's component file is read as Turnout reads it; then it runs, through
a Turnout runtime, against a fresh ARM double with only the endpoint fields
changed (``baseUrl``, ``caCertificateFile``, and the webhook's subscribe
endpoints, which point at the double's sink). The service principal of the
file signs in with azure-identity's ClientSecretCredential at the double's
token endpoint (``AZURE_AUTHORITY_HOST``).
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout import Feature
from turnout._build import validate_specs
from turnout._plugins import load_registry
from turnout._specs import read_specs
from turnout_logicapps import STATUS_TABLE, LogicAppsComponent, LogicAppsMetadata

from .support import deploy, start_double

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "engines" / "azure-logicapps.md"
README = ROOT / "plugins" / "logicapps" / "README.md"
SECRET = "docs-example-secret"


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def named_blocks() -> dict[str, str]:
    """The fenced blocks right after a ``<!-- file: NAME -->`` marker, by NAME."""
    return {
        name: body
        for name, body in re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)\n```", _text(), flags=re.DOTALL)
    }


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", _text(), flags=re.DOTALL)


def table(heading: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule dropped) of the first table under ``heading``."""
    section = _text().split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def test_the_status_table_is_the_code_table() -> None:
    rows = table("### Status mapping")
    assert [(r[0].strip("`"), r[1].strip("`"), r[2]) for r in rows] == [
        (name, status.value, why) for name, (status, why) in STATUS_TABLE.items()
    ]


@pytest.mark.parametrize("page", [DOC, README], ids=["engine-page", "readme"])
def test_every_metadata_field_is_documented(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for info in LogicAppsMetadata.model_fields.values():
        assert f"| `{info.alias}` |" in text, f"{page.name} does not document {info.alias}"


def test_the_unsupported_table_names_what_is_not_declared() -> None:
    rows = {r[0] for r in table("## Not supported, and why")}
    assert {"`pause`, `resume`", "`cancel` (cooperative)", "`purge`", "`start_at`", "`replace`"} <= rows
    declared = LogicAppsComponent.features
    for feature in (Feature.PAUSE, Feature.CANCEL, Feature.PURGE, Feature.START_AT, Feature.REPLACE):
        assert feature not in declared


def test_the_component_file_is_valid_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "approvals.yaml"
    path.write_text(named_blocks()["components/approvals.yaml"], encoding="utf-8")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)  # read by the secretstores.local.env component
    metadata = validate_specs(read_specs(path, load_registry()), working_dir=tmp_path)["approvals"]
    assert isinstance(metadata, LogicAppsMetadata)
    assert (
        metadata.azure_client_secret is not None and metadata.azure_client_secret.get_secret_value() == SECRET
    )


def _pointed_at(document: dict[str, Any], double_url: str, ca_file: Path) -> dict[str, Any]:
    if document["spec"]["type"] == "workflow.azure.logicapps":
        items = document["spec"]["metadata"]
        items += [
            {"name": "baseUrl", "value": double_url},
            {"name": "caCertificateFile", "value": str(ca_file)},
        ]
    return document


def _subscribing_to(value: Any, sink: str) -> Any:
    if isinstance(value, dict):
        return {k: (sink if k == "uri" else _subscribing_to(v, sink)) for k, v in value.items()}
    return value


def test_the_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    double = start_double(tmp_path / "tls")
    try:
        blocks = named_blocks()
        documents = list(yaml.safe_load_all(blocks["components/approvals.yaml"]))
        workflow_doc = next(d for d in documents if d["spec"]["type"] == "workflow.azure.logicapps")
        values = {m["name"]: m.get("value") for m in workflow_doc["spec"]["metadata"]}
        double.register_app(values["azureTenantId"], values["azureClientId"], SECRET)
        folder = tmp_path / "components"
        folder.mkdir()
        (folder / "approvals.yaml").write_text(
            yaml.safe_dump_all([_pointed_at(d, double.base_url, double.ca_file) for d in documents]),
            encoding="utf-8",
        )
        definition = json.loads(blocks["approve-order.json"])
        definition["actions"] = _subscribing_to(definition["actions"], f"{double.base_url}/_double/sink")
        deploy(
            double,
            values["resourceGroup"],
            {"approve-order": definition},
            subscription=values["subscriptionId"],
        )

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", double.base_url)
        issued = len(double.tokens)
        [script] = python_blocks()
        module = types.ModuleType("azure_logicapps_doc")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        exec(compile(script, str(DOC), "exec"), module.__dict__)
        printed = capsys.readouterr().out
        assert "COMPLETED {'order': 42, 'approved': True}" in printed
        assert "no per-run pause" in printed
        assert len(double.tokens) > issued, "the service principal did not sign in at the token endpoint"
    finally:
        double.stop()
