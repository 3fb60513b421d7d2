"""What a process pays for at start-up: only what it uses.

``pip install turnout`` with no component files runs the built-in engine on
SQLite. Such a process never reads YAML, traces, or speaks to PostgreSQL or
over HTTP, so it must not import the libraries for them: each costs tens of
milliseconds of every start (the benchmark's start-up target is 0.5 s).
"""

from __future__ import annotations

import json
from pathlib import Path

from fresh_process import run_script

NO_FILES = """
import json
import sys

import turnout
from fresh_process import twice, wf

with turnout.Runtime(workflows=wf) as rt:
    assert rt.client().wait(rt.client().start(twice, 21), timeout=30).output == 42
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""

NOT_FOR_THE_DEFAULT = {"yaml", "opentelemetry", "psycopg", "psycopg_pool", "httpx", "fastapi", "jq", "grpc"}


def test_the_default_engine_imports_none_of_the_optional_libraries(tmp_path: Path) -> None:
    imported = set(json.loads(run_script(tmp_path, NO_FILES)))
    assert "turnout" in imported and "pydantic" in imported  # the script did run the engine
    assert imported & NOT_FOR_THE_DEFAULT == set()
