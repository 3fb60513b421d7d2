"""``workflow.aws.stepfunctions`` metadata, read from component files as Turnout reads them at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnout import ComponentError, ComponentRegistry
from turnout_aws_stepfunctions import StepFunctionsMetadata

from .conftest import build, component_yaml, expect_invalid, expect_valid, problems

TYPE = "workflow.aws.stepfunctions"
ORDERS = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
ROLE = "arn:aws:iam::123456789012:role/step-functions-orders"


@pytest.fixture
def registry(adapter_registry: Any) -> ComponentRegistry:
    return adapter_registry("aws_stepfunctions")


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"region": "us-east-1"}, id="region-only"),
        pytest.param({"region": "us-gov-west-1"}, id="govcloud"),
        pytest.param(
            {
                "region": "cn-north-1",
                "stateMachines": {"x": "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:x"},
            },
            id="china-partition",
        ),
        pytest.param(
            {
                "region": "us-east-1",
                "endpoint": "http://127.0.0.1:5000",
                "accessKey": "testing",
                "secretKey": "testing",
            },
            id="moto",
        ),
        pytest.param({"region": "us-east-1", "stateMachines": {"orders": ORDERS}}, id="state-machines-yaml"),
        pytest.param({"region": "us-east-1", "stateMachines": {"orders": f"{ORDERS}:prod"}}, id="alias-arn"),
        pytest.param(
            {"region": "us-east-1", "definitions": "workflows/*.asl.json", "roleArn": ROLE},
            id="definitions-glob",
        ),
        pytest.param(
            {"region": "us-east-1", "assumeRoleArn": ROLE, "sessionName": "orders-app"}, id="assume-role"
        ),
    ],
)
def test_valid_metadata_reaches_the_factory(
    tmp_path: Path, registry: ComponentRegistry, metadata: dict[str, Any]
) -> None:
    assert isinstance(expect_valid(tmp_path, registry, TYPE, metadata), StepFunctionsMetadata)


def test_state_machines_as_a_mapping_or_a_json_string(tmp_path: Path, registry: ComponentRegistry) -> None:
    as_yaml = expect_valid(
        tmp_path, registry, TYPE, {"region": "us-east-1", "stateMachines": {"orders": ORDERS}}
    )
    as_json = expect_valid(
        tmp_path, registry, TYPE, {"region": "us-east-1", "stateMachines": json.dumps({"orders": ORDERS})}
    )
    assert as_yaml.state_machines == as_json.state_machines == {"orders": ORDERS}


def test_definitions_as_a_glob_a_list_or_a_json_list(tmp_path: Path, registry: ComponentRegistry) -> None:
    base = {"region": "us-east-1", "roleArn": ROLE}
    glob = expect_valid(tmp_path, registry, TYPE, {**base, "definitions": "workflows/*.asl.json"})
    assert glob.definitions == ["workflows/*.asl.json"]
    listed = expect_valid(tmp_path, registry, TYPE, {**base, "definitions": ["a.asl.json", "b/*.json"]})
    assert listed.definitions == ["a.asl.json", "b/*.json"]
    encoded = expect_valid(tmp_path, registry, TYPE, {**base, "definitions": '["a.asl.json"]'})
    assert encoded.definitions == ["a.asl.json"]


def test_endpoint_without_scheme_is_https(tmp_path: Path, registry: ComponentRegistry) -> None:
    model = expect_valid(
        tmp_path, registry, TYPE, {"region": "us-west-2", "endpoint": "states.us-west-2.amazonaws.com"}
    )
    assert model.endpoint == "https://states.us-west-2.amazonaws.com"


def test_credentials_from_secrets(tmp_path: Path, registry: ComponentRegistry) -> None:
    """accessKey written in the file, secretKey and sessionToken through secretKeyRef (Dapr's usual split)."""
    model = expect_valid(
        tmp_path,
        registry,
        TYPE,
        {"region": "eu-west-1", "accessKey": "AKIAIOSFODNN7EXAMPLE"},
        secrets={"secretKey": "wJalrXUtnFEMI", "sessionToken": "token-1"},
    )
    assert model.secret_key.get_secret_value() == "wJalrXUtnFEMI"
    assert model.session_token.get_secret_value() == "token-1"
    assert "wJalrXUtnFEMI" not in repr(model)


@pytest.mark.parametrize(
    ("metadata", "field", "fragment"),
    [
        ({}, "region", "required"),
        ({"region": "US-EAST-1"}, "region", "in lower case"),
        ({"region": "useast1"}, "region", "an AWS region such as 'us-east-1'"),
        ({"region": "us-east"}, "region", "an AWS region"),
        ({"region": "us-east-1", "endpoint": "ftp://127.0.0.1:21"}, "endpoint", "http(s) URL"),
        ({"region": "us-east-1", "endpoint": "http://127.0.0.1:99999"}, "endpoint", "http(s) URL"),
        (
            {"region": "us-east-1", "stateMachines": {"orders": "orders"}},
            "stateMachines.orders",
            "state machine ARN",
        ),
        (
            {
                "region": "us-east-1",
                "stateMachines": {"orders": "arn:aws:states:us-east-1:123456789012:execution:o:1"},
            },
            "stateMachines.orders",
            "not of an execution",
        ),
        (
            {"region": "us-east-1", "stateMachines": {"orders": ORDERS.replace("us-east-1", "eu-west-1")}},
            "stateMachines.orders",
            "the component's region us-east-1 (this one is in eu-west-1)",
        ),
        ({"region": "us-east-1", "stateMachines": "{not json"}, "stateMachines", "in YAML or JSON"),
        (
            {"region": "us-east-1", "stateMachines": ["orders"]},
            "stateMachines",
            "a mapping from workflow name",
        ),
        ({"region": "us-east-1", "definitions": "workflows/*.json"}, "roleArn", "required"),
        ({"region": "us-east-1", "definitions": "[oops"}, "definitions", "a JSON list of paths"),
        ({"region": "us-east-1", "roleArn": "step-functions"}, "roleArn", "an IAM role ARN"),
        ({"region": "us-east-1", "assumeRoleArn": ORDERS}, "assumeRoleArn", "an IAM role ARN"),
        ({"region": "us-east-1", "accessKey": "AKIA"}, "secretKey", "required"),
        ({"region": "us-east-1", "secretKey": "shh"}, "accessKey", "required"),
        ({"region": "us-east-1", "sessionName": "app"}, "assumeRoleArn", "required"),
        ({"region": "us-east-1", "assumeRoleArn": ROLE, "sessionName": "a b"}, "sessionName", "2-64 letters"),
        (
            {"region": "us-east-1", "stateMachine": {"orders": ORDERS}},
            "stateMachine",
            "did you mean 'stateMachines'",
        ),
    ],
)
def test_invalid_metadata_is_refused_with_the_field(
    tmp_path: Path, registry: ComponentRegistry, metadata: dict[str, Any], field: str, fragment: str
) -> None:
    expect_invalid(tmp_path, registry, TYPE, metadata, field, fragment)


def test_session_token_needs_both_keys(tmp_path: Path, registry: ComponentRegistry) -> None:
    path = tmp_path / "component.yaml"
    path.write_text(component_yaml(TYPE, {"region": "us-east-1"}, secrets={"sessionToken": "token-value-1"}))
    with pytest.raises(ComponentError) as caught:
        build(path, registry)
    fields = sorted(error.field or "" for error in problems(caught.value))
    assert fields == ["spec.metadata.accessKey", "spec.metadata.secretKey"]
    assert "token-value-1" not in caught.value.message
