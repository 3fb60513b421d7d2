"""Bad definitions are refused at load time, with the file, the JSON pointer and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

import turnout
from turnout.declarative import Definition, DefinitionError, Settings, load_definition, register

HEADER = "document: {dsl: '1.0.0', namespace: test, name: bad, version: '1.0.0'}\n"


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    return caught.value.problems


def test_unknown_task_type_names_the_path() -> None:
    found = problems(
        HEADER + "do:\n  - first: {set: {a: 1}}\n  - second: {set: {b: 2}}\n  - callPet: {cal: http}\n"
    )
    assert found == [
        (
            "/do/2/callPet",
            "unknown task type (keys: cal): expected one of call, do, emit, for, fork, listen, raise, run, "
            "set, switch, try, wait",
        )
    ]


def test_missing_document_name() -> None:
    text = "document: {dsl: '1.0.0', namespace: test, version: '1.0.0'}\ndo:\n  - a: {set: {x: 1}}\n"
    assert problems(text) == [("/document/name", "required: the workflow's name (a non-empty string)")]


def test_then_naming_no_task() -> None:
    found = problems(HEADER + "do:\n  - a: {set: {x: 1}, then: nowhere}\n  - b: {set: {y: 1}}\n")
    assert found == [
        (
            "/do/0/a/then",
            "'then: nowhere' names no task in this list: expected continue, exit, end or one of the tasks "
            "declared at the same level ('a', 'b')",
        )
    ]


def test_then_cannot_jump_to_another_depth() -> None:
    text = (
        HEADER
        + "do:\n  - outer:\n      do:\n        - inner: {set: {x: 1}, then: after}\n"
        + "  - after: {set: {y: 1}}\n"
    )
    assert [path for path, _ in problems(text)] == ["/do/0/outer/do/0/inner/then"]


def test_run_shell_is_refused() -> None:
    found = problems(HEADER + "do:\n  - list:\n      run:\n        shell:\n          command: ls -la\n")
    assert found == [
        (
            "/do/0/list/run/shell",
            "run.shell is refused: a declarative workflow may not run processes on the host; "
            "call an activity (call: <activity name>) or run.workflow instead",
        )
    ]


@pytest.mark.parametrize("process", ["container", "script"])
def test_other_processes_are_refused(process: str) -> None:
    found = problems(HEADER + f"do:\n  - p:\n      run:\n        {process}: {{image: x}}\n")
    assert found[0][0] == f"/do/0/p/run/{process}"
    assert found[0][1].startswith(f"run.{process} is refused")


def test_bad_jq_is_reported_where_it_is() -> None:
    found = problems(HEADER + "do:\n  - setColor:\n      set:\n        color: ${ .colors | | first }\n")
    assert len(found) == 1
    path, message = found[0]
    assert path == "/do/0/setColor/set/color"
    assert message.startswith("invalid jq expression '${ .colors | | first }': jq: error: syntax error")


def test_bare_expression_fields_are_checked_too() -> None:
    found = problems(HEADER + "do:\n  - a:\n      if: .x ==\n      set: {y: 1}\n")
    assert [path for path, _ in found] == ["/do/0/a/if"]


def test_every_problem_is_reported_at_once_with_the_file(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(
        "document: {dsl: '1.0.0', namespace: test, version: '1.0.0'}\n"
        "do:\n"
        "  - a: {set: {x: '${ .[ }'}, then: b}\n"
        "  - c: {wait: PT1Y}\n"
        "  - d: {raise: {error: missing}}\n"
        "  - e: {call: grpc, with: {}}\n"
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition(file)
    error = caught.value
    assert isinstance(error, turnout.InvalidArgument)
    assert error.source == str(file)
    assert [path for path, _ in error.problems] == [
        "/document/name",
        "/do/0/a/set/x",
        "/do/0/a/then",
        "/do/1/c/wait",
        "/do/2/d/raise/error",
        "/do/3/e/call",
    ]
    text = str(error)
    assert text.startswith(f"invalid workflow definition '{file}': 6 problems\n")
    assert "  /do/2/d/raise/error: no error named 'missing' in use.errors (none declared)" in text
    assert "  /do/3/e/call: call: grpc is not supported by Turnout; use http, openapi or an activity" in text


def test_unsupported_authentication_and_listen_foreach() -> None:
    text = (
        HEADER + "do:\n"
        "  - a:\n      call: http\n      with:\n        method: get\n"
        "        endpoint: {uri: 'https://x', authentication: {oauth2: {authority: 'https://id'}}}\n"
        "  - b:\n      listen: {to: {one: {with: {type: t}}}}\n      foreach: {item: e}\n"
    )
    assert [path for path, _ in problems(text)] == [
        "/do/0/a/with/endpoint/authentication/oauth2",
        "/do/1/b/foreach",
    ]


def test_not_yaml_and_unknown_dialect() -> None:
    assert problems("do: [unclosed")[0][1].startswith("not valid YAML or JSON (line 1")
    assert problems("name: x\n")[0][1].startswith("cannot tell the dialect")
    assert problems("document: {dsl: '2.0', name: x}\n") == [
        ("/document/dsl", "DSL version '2.0' is not supported: expected 1.x (or a 0.8 definition)")
    ]


def test_json_is_accepted() -> None:
    definition = load_definition(
        '{"document": {"dsl": "1.0.0", "namespace": "t", "name": "j", "version": "1.0.2"},'
        ' "do": [{"a": {"set": {"x": 1}}}]}'
    )
    assert (definition.name, definition.version, definition.dialect, definition.source) == (
        "j",
        "1.0.2",
        "1.0",
        None,
    )


def test_registering_a_name_twice() -> None:
    wf = turnout.Workflows()
    first = load_definition(HEADER + "do:\n  - a: {set: {x: 1}}\n")
    assert register(wf, first) == "bad"
    assert register(wf, first) == "bad"  # the same document again: nothing to do
    other = load_definition(HEADER + "do:\n  - a: {set: {x: 2}}\n")
    with pytest.raises(ValueError, match="a different definition named 'bad' is already registered"):
        register(wf, other)
    with pytest.raises(ValueError, match="other settings"):
        register(
            wf,
            load_definition(HEADER.replace("bad", "good") + "do:\n  - a: {set: {x: 1}}\n"),
            settings=Settings(timeout=1),
        )
    assert "turnout.declarative.http" in wf.activity_names


def test_a_code_workflow_of_the_same_name_is_not_replaced() -> None:
    wf = turnout.Workflows()

    @wf.workflow(name="bad")
    def bad(ctx: turnout.WorkflowContext):  # type: ignore[no-untyped-def]
        return 1
        yield

    with pytest.raises(ValueError, match="already registered \\(as code\\)"):
        register(wf, load_definition(HEADER + "do:\n  - a: {set: {x: 1}}\n"))


def test_definition_is_frozen() -> None:
    definition = load_definition(HEADER + "do:\n  - a: {set: {x: 1}}\n")
    assert isinstance(definition, Definition)
    with pytest.raises(AttributeError):
        definition.name = "other"  # type: ignore[misc]


def test_schemas_must_be_usable_json_schemas() -> None:
    text = (
        HEADER + "input:\n  schema: {resource: {endpoint: 'schema.json'}}\n"
        "do:\n  - a:\n      set: {x: 1}\n"
        "      output:\n        schema: {format: json, document: {type: 12}}\n"
    )
    found = problems(text)
    assert [path for path, _ in found] == ["/input/schema", "/do/0/a/output/schema"]
    assert found[0][1].startswith(
        "endpoint 'schema.json': only a definition read from a file may name schema files"
    )
    assert found[1][1].startswith("not a valid JSON Schema: 12 is not valid under any of the given schemas")


def test_unknown_top_level_keys_extensions_and_languages() -> None:
    text = (
        HEADER + "evaluate: {language: javascript}\n"
        "use:\n  extensions:\n    - log: {extend: all}\n  helpers: {}\n"
        "Do:\n  - a: {set: {x: 1}}\n"
    )
    found = dict(problems(text))
    expected = "do, document, evaluate, input, output, schedule, timeout, use"
    assert found[""] == f"unexpected top-level key Do: expected {expected}"
    assert found["/do"] == "required: the list of tasks to run"
    assert found["/evaluate/language"] == "only jq expressions are supported, not 'javascript'"
    assert found["/use"].startswith("unexpected section helpers: expected authentications, catalogs")
    assert found["/use/extensions"].startswith("extensions are not supported by Turnout")
