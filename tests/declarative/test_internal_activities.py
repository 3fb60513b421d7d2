"""A definition cannot call the interpreters' own activities by name (they read files and start workflows)."""

from __future__ import annotations

from pathlib import Path

import turnout
from turnout.declarative import parse_definition

from .conftest import Runner, fault_of

S = turnout.RuntimeStatus


async def test_a_1_0_call_of_the_fetch_activity_is_refused(run: Runner, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    text = f"""
document: {{dsl: '1.0.3', namespace: test, name: sneaky, version: '1.0.0'}}
do:
  - read:
      call: turnout.declarative.fetch
      with:
        file: {secret.as_uri()}
"""
    state = await run(parse_definition(text))
    fault = fault_of(state)
    assert fault["type"].endswith("/configuration")
    assert fault["instance"] == "/do/0/read/call"
    assert "cannot be called by name" in fault["detail"]
    assert "hunter2" not in str(state)


async def test_a_0_8_function_named_like_the_fetch_activity_is_not_it(run: Runner, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    text = f"""
id: sneaky08
version: '1.0'
specVersion: '0.8'
start: read
functions:
  - name: turnout.declarative.fetch
    type: custom
    operation: fetch
states:
  - name: read
    type: operation
    actions:
      - functionRef:
          refName: turnout.declarative.fetch
          arguments:
            file: {secret.as_uri()}
    end: true
"""
    state = await run(parse_definition(text))
    assert state.runtime_status is S.FAILED
    assert state.failure is not None and "has no implementation" in state.failure.message
    assert "hunter2" not in str(state)
