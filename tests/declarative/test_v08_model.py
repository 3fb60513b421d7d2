"""Serverless Workflow 0.8: parsing, validation messages, and the pure rules (merging, errors, events)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from turnout.declarative import DefinitionError, load_definition
from turnout.declarative._v08_actions import match_error
from turnout.declarative._v08_data import Expressions, merge, merge_into
from turnout.declarative._v08_events import as_cloud_event, source_matches
from turnout.declarative._v08_model import ErrorDef, parse_duration
from turnout.declarative._v08_openapi import OpenApiError, build_request, find_operation
from turnout.declarative._v08_parse import parse_workflow

from .conftest import corpus_dir


def _valid() -> dict[str, Any]:
    return {
        "id": "checks",
        "version": "1.0",
        "specVersion": "0.8",
        "start": "Decide",
        "functions": [{"name": "notify", "operation": "https://example.com/api.json#notify"}],
        "states": [
            {
                "name": "Decide",
                "type": "switch",
                "dataConditions": [{"condition": "${ .ok }", "transition": "Notify"}],
                "defaultCondition": {"transition": "Done"},
            },
            {"name": "Done", "type": "inject", "data": {"done": True}, "end": True},
            {"name": "Notify", "type": "operation", "actions": [{"functionRef": "notify"}], "end": True},
        ],
    }


def _load(tmp_path: Path, document: dict[str, Any]) -> Any:
    path = tmp_path / "checks.sw.json"
    path.write_text(json.dumps(document))
    return load_definition(path)


def _problem(tmp_path: Path, document: dict[str, Any]) -> str:
    with pytest.raises(DefinitionError) as info:
        _load(tmp_path, document)
    message = str(info.value)
    assert "checks.sw.json" in message  # every message names the file
    return message


def test_a_valid_definition_loads_as_the_08_dialect(tmp_path: Path) -> None:
    loaded = _load(tmp_path, _valid())
    assert (loaded.name, loaded.version, loaded.dialect) == ("checks", "1.0", "0.8")


def test_a_transition_to_no_state_names_the_pointer_and_the_states(tmp_path: Path) -> None:
    document = _valid()
    document["states"][0]["defaultCondition"] = {"transition": "Nowhere"}
    message = _problem(tmp_path, document)
    assert "/states/0/defaultCondition/transition: state 'Nowhere' is not defined" in message
    assert "expected one of 'Decide', 'Done', 'Notify'" in message


def test_a_function_ref_to_no_function(tmp_path: Path) -> None:
    document = _valid()
    document["states"][2]["actions"][0]["functionRef"] = {"refName": "notfy", "arguments": {}}
    message = _problem(tmp_path, document)
    assert (
        "/states/2/actions/0/functionRef: function 'notfy' is not defined; expected one of 'notify'"
        in message
    )


def test_no_states(tmp_path: Path) -> None:
    document = _valid()
    document["states"] = []
    assert "/states: expected a non-empty list of states" in _problem(tmp_path, document)


def test_bad_jq_names_the_expression_and_why(tmp_path: Path) -> None:
    document = _valid()
    document["states"][0]["dataConditions"][0]["condition"] = "${ .ok >= }"
    message = _problem(tmp_path, document)
    assert (
        "/states/0/dataConditions/0/condition: expected a jq expression; '${ .ok >= }' does not compile"
        in message
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    document = _valid()
    document["start"] = "Begin"
    document["states"][1]["type"] = "wait"
    document["states"][2]["actions"][0] = {"functionRef": "notify", "retryRef": "often"}
    message = _problem(tmp_path, document)
    assert "/states/1/type: expected one of inject, operation, switch" in message
    assert "/start: start state 'Begin' is not defined" in message
    assert "/states/2/actions/0/retryRef: retry strategy 'often' is not defined" in message


def test_shape_errors_name_the_field_and_the_expectation(tmp_path: Path) -> None:
    document = _valid()
    document["states"][1]["data"] = ["not", "an", "object"]
    document["states"][2]["actions"][0] = {"functionRef": "notify", "subFlowRef": "other"}
    message = _problem(tmp_path, document)
    assert "/states/1/data: Input should be a valid dictionary" in message
    assert (
        "/states/2/actions/0: an action needs exactly one of functionRef, eventRef or subFlowRef" in message
    )


def test_references_to_events_errors_and_compensation_are_checked(tmp_path: Path) -> None:
    document = _valid()
    document["states"][2] = {
        "name": "Notify",
        "type": "event",
        "onEvents": [{"eventRefs": ["Arrived"]}],
        "onErrors": [{"errorRef": "Boom", "end": True}],
        "compensatedBy": "Done",
        "end": True,
    }
    message = _problem(tmp_path, document)
    assert "/states/2/onEvents/0/eventRefs/0: consumed event 'Arrived' is not defined" in message
    assert "/states/2/onErrors/0/errorRef: error 'Boom' is not defined" in message
    assert "/states/2/compensatedBy: expected a state with usedForCompensation: true, got 'Done'" in message


def test_durations_and_iteration_params_are_checked(tmp_path: Path) -> None:
    document = _valid()
    document["states"][1] = {"name": "Done", "type": "sleep", "duration": "1 hour", "end": True}
    message = _problem(tmp_path, document)
    assert "/states/1/duration" in message and "not an ISO 8601 duration" in message
    document = _valid()
    document["states"][1] = {
        "name": "Done",
        "type": "foreach",
        "inputCollection": "${ .items }",
        "iterationParam": "${ .item }",
        "actions": [],
        "end": True,
    }
    assert "/states/1/iterationParam: expected a plain name such as 'item'" in _problem(tmp_path, document)


@pytest.mark.parametrize(
    ("file", "pointer"),
    [
        ("customerbankingtransactions.json", "/states/0/actions/1/functionRef"),
        ("customercreditcheck.json", "/states/0/action/functionRef"),
        ("patientonboarding.json", "/states/0/onEvents/0/eventRefs/0"),
    ],
)
def test_the_corpus_files_the_spec_got_wrong_are_refused_with_the_place(file: str, pointer: str) -> None:
    found = corpus_dir()
    if found is None:
        pytest.skip("the Serverless Workflow corpus is not here")
    with pytest.raises(DefinitionError) as info:
        load_definition(found / "slwf-0.8" / file)
    assert file in str(info.value) and f"{pointer}:" in str(info.value)


def test_every_corpus_08_file_but_the_three_broken_ones_validates() -> None:
    found = corpus_dir()
    if found is None:
        pytest.skip("the Serverless Workflow corpus is not here")
    broken = {"customerbankingtransactions.json", "customercreditcheck.json", "patientonboarding.json"}
    files = sorted(p for p in (found / "slwf-0.8").glob("*.json") if p.name != "cases.json")
    assert len(files) == 35
    for path in files:
        if path.name not in broken:
            assert load_definition(path).dialect == "0.8", path.name


# -- the pure rules ----------------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("PT15M") == timedelta(minutes=15)
    assert parse_duration("PT30D") == timedelta(days=30)  # the spec's own (non-ISO) spelling
    assert parse_duration("P1DT0.5S") == timedelta(days=1, seconds=0.5)
    with pytest.raises(ValueError):
        parse_duration("P1M")


def test_merging_rules() -> None:
    assert merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}, "b": 4}) == {"a": {"x": 1, "y": 3}, "b": 4}  # deep
    assert merge([1, 2], [2, 3]) == [1, 2, 3]  # concatenated, no duplicates
    assert merge(1, "one") == "one"  # scalars are overwritten
    assert merge({"a": 1}, None) == {"a": 1}  # no result changes nothing
    assert merge(None, [1]) == [1]
    assert merge({"a": 1}, [1]) == [1]  # types that do not merge: the new value replaces


def test_a_bare_result_goes_back_to_the_path_it_came_from() -> None:
    workflow = parse_workflow({"id": "w", "states": [{"name": "s", "type": "inject", "end": True}]})
    exprs = Expressions(workflow, secrets={}, instance_id="i")
    data = {"person": {"name": "Ann"}}
    merged = merge_into(exprs, data, "Hi Ann", to_state_data=None, selected_by="${ .greeting }", where="/")
    assert merged == {"person": {"name": "Ann"}, "greeting": "Hi Ann"}
    placed = merge_into(exprs, data, 7, to_state_data=".person.age", selected_by=None, where="/")
    assert placed == {"person": {"name": "Ann", "age": 7}}


def test_error_matching_convention() -> None:
    errors = [ErrorDef(name="Missing order id"), ErrorDef(name="ServiceNotAvailable", code="503")]
    assert match_error(errors, "ServiceNotAvailable", "boom") is errors[1]  # by the exception's type name
    assert match_error(errors, "ValueError", "Missing order id") is errors[0]  # by the message
    assert match_error(errors, "ValueError", "503") is errors[1]  # by the code
    fault = json.dumps(
        {"type": "https://serverlessworkflow.io/spec/1.0.0/errors/communication", "status": 503}
    )
    assert match_error(errors, "communication", fault) is errors[1]  # an HTTP status
    assert match_error(errors, "RuntimeError", "upstream said: Missing order id (try again)") is errors[0]
    assert match_error(errors, "ValueError", "Missing order identifier") is None  # whole words only


def test_source_patterns() -> None:
    assert source_matches(None, "anything")
    assert source_matches("newpatient/+", "newpatient/1")
    assert not source_matches("newpatient/+", "newpatient/1/2")
    assert source_matches("/orders/*", "/orders/new/3")
    assert not source_matches("/orders/new", "/orders/confirmed")


def test_compensation_states_are_kept_apart(tmp_path: Path) -> None:
    document = _valid()
    document["states"][1]["usedForCompensation"] = True
    message = _problem(tmp_path, document)
    assert "/states/0/defaultCondition/transition: expected a state not used for compensation" in message


def test_openapi_operations_become_requests() -> None:
    document = {
        "openapi": "3.0.0",
        "servers": [{"url": "/api/v1"}],
        "paths": {
            "/orders/{id}": {
                "parameters": [{"name": "id", "in": "path"}],
                "post": {
                    "operationId": "updateOrder",
                    "parameters": [{"name": "dryRun", "in": "query"}, {"name": "X-Key", "in": "header"}],
                    "requestBody": {},
                },
            },
            "/orders": {"get": {"operationId": "listOrders"}},
        },
    }
    method, path, operation, base = find_operation(
        document, "updateOrder", "https://shop.example.com/spec.json"
    )
    assert (method, path, base) == ("post", "/orders/{id}", "https://shop.example.com/api/v1")
    arguments = {"id": "A/1", "dryRun": True, "X-Key": "k", "status": "paid"}
    assert build_request(method, path, operation, base, arguments) == {
        "method": "post",
        "uri": "https://shop.example.com/api/v1/orders/A%2F1",
        "query": {"dryRun": True},
        "headers": {"X-Key": "k"},
        "body": {"status": "paid"},  # what no parameter takes is the body
    }
    method, path, operation, base = find_operation(
        document, "listOrders", "https://shop.example.com/spec.json"
    )
    assert build_request(method, path, operation, base, {"page": 2})["query"] == {"page": 2}  # no body: query
    with pytest.raises(OpenApiError, match="no operation with operationId 'nope'"):
        find_operation(document, "nope", "https://shop.example.com/spec.json")


def test_raised_data_that_is_not_a_cloud_event_is_wrapped() -> None:
    assert as_cloud_event("approved", {"by": "ann"}) == {
        "specversion": "1.0",
        "type": "approved",
        "data": {"by": "ann"},
    }
    event = {"specversion": "1.0", "type": "approved", "source": "hr", "id": "1", "data": None}
    assert as_cloud_event("approved", event) == event
