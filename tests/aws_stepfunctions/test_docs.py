"""docs/engines/aws-stepfunctions.md stays true: its example runs on moto, its tables match the code.

Files in the page are marked ``<!-- file: PATH -->`` before their code
block (``(local)`` adds the block's metadata items to that file, pointed at
the test server); the Python block marked ``<!-- run -->`` runs in a folder
holding those files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout import Feature
from turnout_aws_stepfunctions import StepFunctionsMetadata
from turnout_aws_stepfunctions._component import TERMINATE_ERROR, StepFunctionsComponent
from turnout_aws_stepfunctions._mapping import STATUS

from .conftest import ROOT, MotoServer

PAGE = ROOT / "docs" / "engines" / "aws-stepfunctions.md"
BLOCK = re.compile(r"<!-- (?P<marker>[^>]*?) -->\n```(?P<lang>\w*)\n(?P<body>.*?)\n```", re.S)


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def blocks() -> list[tuple[str, str]]:
    """(marker, body) of every marked code block, in order."""
    return [(m.group("marker"), m.group("body")) for m in BLOCK.finditer(page())]


def section(title: str) -> str:
    text = page()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def table_rows(title: str) -> list[list[str]]:
    rows = []
    for line in section(title).splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def test_the_example_runs(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files: dict[str, Any] = {}
    local: list[dict[str, Any]] = []
    code = None
    for marker, body in blocks():
        if marker == "run":
            code = body
        elif marker.startswith("file: ") and marker.endswith("(local)"):
            local.extend(yaml.safe_load(body))
        elif marker.startswith("file: "):
            files[marker.removeprefix("file: ")] = body
    assert code is not None and "components/approvals.yaml" in files and local
    for item in local:
        if item["name"] == "endpoint":
            assert item["value"] == "http://127.0.0.1:5000"
            item["value"] = moto_server.endpoint
    component = yaml.safe_load(files["components/approvals.yaml"])
    component["spec"]["metadata"].extend(local)
    files["components/approvals.yaml"] = yaml.safe_dump(component, sort_keys=False)
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    moto_server.client("sqs").create_queue(QueueName="approvals")  # the queue the example's task sends to
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{PAGE}:run", "exec"), {"__name__": "docs_example"})


def test_status_table_is_the_code() -> None:
    rows = {row[0].strip("`"): row[1].strip("`") for row in table_rows("Status mapping")}
    assert rows == {aws: status.value for aws, status in STATUS.items()}


def test_metadata_table_lists_every_field() -> None:
    documented = {row[0].strip("`") for row in table_rows("Metadata")}
    fields = {field.alias or name for name, field in StepFunctionsMetadata.model_fields.items()}
    assert documented == fields


def test_unsupported_table_matches_the_features() -> None:
    operations = {
        Feature.PAUSE: "`pause`, `resume`",
        Feature.CANCEL: "`cancel`",
        Feature.PURGE: "`purge`",
        Feature.START_AT: "`start_at` (scheduled start)",
        Feature.REPLACE: "`replace=True`",
        Feature.WORKFLOW_CODE: "Turnout workflow code",
        Feature.DEFINITIONS: "Stored declarative definitions",
    }
    assert set(StepFunctionsComponent.unsupported_reasons) == set(operations)
    assert set(operations) == set(Feature) - StepFunctionsComponent.features
    assert {row[0] for row in table_rows("What is not supported, and why")} == set(operations.values())


def test_the_terminate_error_is_documented() -> None:
    assert f'error="{TERMINATE_ERROR}"' in page()
