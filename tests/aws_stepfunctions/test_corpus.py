"""Public ASL examples from the shared corpus (read at run time, never copied), run through the adapter.

Each state machine of ``../shared/corpus/asl`` is deployed through the
component's ``definitions`` straight from its file, run on each recorded
input, and compared with the expected result recorded in the corpus (status,
output, error and cause). The corpus lives outside this repository: without
it these tests skip, saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnout import RuntimeStatus

from .conftest import CORPUS, ROLE, MotoServer, finish, open_client

STATUS = {"SUCCEEDED": RuntimeStatus.COMPLETED, "FAILED": RuntimeStatus.FAILED}

SKIPPED = {
    "jsonata-pass": "JSONata state machines fail on moto (its JSONata evaluator is a stub)",
}
SPEC_DEVIATIONS = {
    # The corpus notes that moto returns [1] for the definite path "$[0].a"; AWS and the spec give 1.
    "paths-inputpath-parameters-resultselector-resultpath-outputpath": {"onlyA": 1},
}


def _cases() -> list[Any]:
    results = CORPUS / "moto_results.json"
    if not results.is_file():
        return [pytest.param(None, None, None, id="corpus-absent")]
    recorded = json.loads(results.read_text(encoding="utf-8"))
    cases = []
    for name, entries in sorted(recorded.items()):
        # An entry without an input is a check of the run before it (the table a put-item left).
        runs = []
        for entry in entries if isinstance(entries, list) else []:
            if "input" in entry:
                runs.append(dict(entry))
            elif runs:
                runs[-1].update(entry)
        for index, run in enumerate(runs):
            marks = []
            if name in SKIPPED:
                marks.append(pytest.mark.skip(reason=SKIPPED[name]))
            elif name in SPEC_DEVIATIONS:
                marks.append(
                    pytest.mark.xfail(
                        strict=True, reason="moto deviates from the ASL spec here (see corpus INDEX)"
                    )
                )
            cases.append(pytest.param(name, index, run, id=f"{name}-{index}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "index", "run"), _cases())
async def test_corpus_case(
    moto_server: MotoServer, tmp_path: Path, name: str | None, index: int | None, run: dict[str, Any] | None
) -> None:
    if name is None or run is None:
        pytest.skip(
            f"the ASL corpus is not at {CORPUS} (it lives in ../shared/corpus, beside the repository)"
        )
    definition = CORPUS / f"{name}.asl.json"
    if name == "dynamodb-put-item":
        dynamodb = moto_server.client("dynamodb")
        if "corpus-table" not in dynamodb.list_tables()["TableNames"]:
            dynamodb.create_table(
                TableName="corpus-table",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
    metadata = moto_server.metadata(roleArn=ROLE, definitions=[str(definition)])
    async with open_client(tmp_path, metadata) as client:
        instance_id = await client.start(name, run["input"])
        state = await finish(client, instance_id, STATUS[run["status"]])
        if run["status"] == "SUCCEEDED":
            assert state.output == SPEC_DEVIATIONS.get(name, run["output"])
        else:
            assert state.failure is not None
            assert state.failure.error_type == run["error"]
            assert run.get("cause", "") in state.failure.message
        if "scan_after" in run:
            items = moto_server.client("dynamodb").scan(TableName=run["input"]["TableName"])["Items"]
            assert items == run["scan_after"]
        if run.get("history_types"):
            assert [event.kind for event in await client.history(instance_id)] == run["history_types"]
