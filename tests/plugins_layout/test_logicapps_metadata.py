"""``workflow.azure.logicapps`` metadata, read from component files as Turnout reads them at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from turnout import ComponentError, ComponentRegistry
from turnout_logicapps import LogicAppsMetadata

from .conftest import build, component_yaml, expect_invalid, expect_valid, problems

TYPE = "workflow.azure.logicapps"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT = "22222222-2222-2222-2222-222222222222"
BASE = {"subscriptionId": SUBSCRIPTION, "resourceGroup": "approvals-rg"}


@pytest.fixture
def registry(adapter_registry: Any) -> ComponentRegistry:
    return adapter_registry("logicapps")


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(BASE, id="minimal"),
        pytest.param(
            {**BASE, "azureTenantId": "contoso.onmicrosoft.com", "azureClientId": CLIENT}, id="tenant-domain"
        ),
        pytest.param({**BASE, "azureClientId": CLIENT}, id="user-assigned-identity"),
        pytest.param({**BASE, "triggerName": "When_a_HTTP_request_is_received"}, id="trigger"),
        pytest.param({**BASE, "baseUrl": "https://management.chinacloudapi.cn/"}, id="sovereign-cloud"),
        pytest.param(
            {**BASE, "baseUrl": "http://127.0.0.1:8080", "allowInsecureBaseUrl": True}, id="local-double"
        ),
        pytest.param({**BASE, "resourceGroup": "rg_(prod).eu-1"}, id="resource-group-characters"),
    ],
)
def test_valid_metadata_reaches_the_factory(
    tmp_path: Path, registry: ComponentRegistry, metadata: dict[str, Any]
) -> None:
    assert isinstance(expect_valid(tmp_path, registry, TYPE, metadata), LogicAppsMetadata)


def test_defaults(tmp_path: Path, registry: ComponentRegistry) -> None:
    model = expect_valid(tmp_path, registry, TYPE, BASE)
    assert model.trigger_name == "manual"
    assert model.base_url == "https://management.azure.com"
    assert model.allow_insecure_base_url is False


def test_service_principal_secret_from_a_secret_store(tmp_path: Path, registry: ComponentRegistry) -> None:
    model = expect_valid(
        tmp_path,
        registry,
        TYPE,
        {**BASE, "azureTenantId": TENANT, "azureClientId": CLIENT},
        secrets={"azureClientSecret": "s3cr3t-value"},
    )
    assert model.azure_client_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(model)


@pytest.mark.parametrize(
    ("metadata", "field", "fragment"),
    [
        ({"resourceGroup": "rg"}, "subscriptionId", "required"),
        ({"subscriptionId": SUBSCRIPTION}, "resourceGroup", "required"),
        ({**BASE, "subscriptionId": "my-subscription"}, "subscriptionId", "a subscription id GUID"),
        ({**BASE, "resourceGroup": "rg."}, "resourceGroup", "not ending in '.'"),
        ({**BASE, "resourceGroup": "rg/prod"}, "resourceGroup", "a resource group name"),
        ({**BASE, "azureTenantId": "not a tenant"}, "azureTenantId", "a tenant id GUID or a domain"),
        ({**BASE, "azureClientId": "app"}, "azureClientId", "an application (client) id GUID"),
        ({**BASE, "azureClientId": CLIENT, "azureClientSecret": "shh"}, "azureTenantId", "required"),
        ({**BASE, "triggerName": "a/b"}, "triggerName", "a trigger name"),
        ({**BASE, "baseUrl": "http://127.0.0.1:8080"}, "baseUrl", "allowInsecureBaseUrl"),
        (
            {**BASE, "baseUrl": "http://127.0.0.1:8080", "allowInsecureBaseUrl": False},
            "baseUrl",
            "plain http",
        ),
        ({**BASE, "baseUrl": "management.azure.com"}, "baseUrl", "an absolute https URL"),
        ({**BASE, "baseUrl": "https://management.azure.com/?x=1"}, "baseUrl", "without a query"),
        ({**BASE, "allowInsecureBaseUrl": "maybe"}, "allowInsecureBaseUrl", "boolean"),
        ({**BASE, "location": "westeurope"}, "location", "unknown field for workflow.azure.logicapps"),
    ],
)
def test_invalid_metadata_is_refused_with_the_field(
    tmp_path: Path, registry: ComponentRegistry, metadata: dict[str, Any], field: str, fragment: str
) -> None:
    expect_invalid(tmp_path, registry, TYPE, metadata, field, fragment)


def test_a_client_secret_alone_names_both_missing_ids(tmp_path: Path, registry: ComponentRegistry) -> None:
    path = tmp_path / "component.yaml"
    path.write_text(component_yaml(TYPE, BASE, secrets={"azureClientSecret": "s3cr3t-value"}))
    with pytest.raises(ComponentError) as caught:
        build(path, registry)
    fields = sorted(error.field or "" for error in problems(caught.value))
    assert fields == ["spec.metadata.azureClientId", "spec.metadata.azureTenantId"]
    assert "s3cr3t-value" not in caught.value.message
