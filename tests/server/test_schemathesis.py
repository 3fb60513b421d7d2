"""A bounded schemathesis run over /openapi.json: generated requests to every operation, no 500.

Deterministic (a fixed seed, no example database) and small (two dozen
cases per operation, one worker), so it finishes in well under a minute on
two cores. The operations under /v1.0-beta1 and /v1.0-alpha1 are left out:
they call the same handlers as /v1.0 (test_dapr_routes checks that). The
server has the built-in engine with the test workflows, the adapter template,
an API token and short long-poll waits.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from turnout import ComponentRegistry
from turnout._server._config import ServerConfig

from .conftest import LiveServer, write_components

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))

# 501 is the documented answer of a component that lacks an operation (the template has
# no pause, cancel, history or events): not a server error. Every other 5xx is.
ALLOW_501 = """\
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "501"]
"""


def test_no_operation_answers_500(tmp_path: Path, registry_with_template: ComponentRegistry) -> None:
    config = ServerConfig(max_wait_seconds=0.5, api_token="fuzz-token")
    resources = write_components(tmp_path / "components", example=True)
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(ALLOW_501)
    with LiveServer(resources, tmp_path, registry=registry_with_template, config=config) as server:
        result = subprocess.run(
            [
                SCHEMATHESIS,
                "--config-file",
                str(settings),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--include-path-regex",
                r"^/(v1\.0/|openapi)",
                "--max-examples",
                "25",
                "--seed",
                "20261126",
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--request-timeout",
                "10",
                "--header",
                "dapr-api-token:fuzz-token",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"schemathesis found failures (exit {result.returncode}):\n{output[-6000:]}")
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None, output[-3000:]
    assert int(counts.group(1)) == int(counts.group(2)) > 200, counts.group(0)
