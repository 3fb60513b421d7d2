"""Metadata of ``workflow.azure.logicapps`` components: validation, documentation and JSON schema.

Authentication uses the names every Dapr Azure component uses
(``azureTenantId``, ``azureClientId``, ``azureClientSecret``); with none set,
the Azure SDK's default credential chain applies (environment, workload or
managed identity, Azure CLI).

Errors follow :mod:`turnout.metadata`'s conventions: each names what was
expected, and a rule between fields is reported on one field.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from turnout.metadata import invalid, missing

DEFAULT_BASE_URL = "https://management.azure.com"

_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_TENANT_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+[A-Za-z]{2,63}$")
_TRIGGER_FORBIDDEN = frozenset("<>%&\\?/*#:")


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


class LogicAppsMetadata(BaseModel):
    """``workflow.azure.logicapps``: workflows run as Azure Logic Apps (Consumption) runs.

    A Turnout workflow name is the name of a Logic App in ``resourceGroup``;
    starting it posts the input to its request trigger.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subscription_id: str = Field(
        alias="subscriptionId",
        description="Azure subscription (a GUID) that holds the resource group. Required.",
    )
    resource_group: str = Field(
        alias="resourceGroup",
        description="Resource group that holds the Logic Apps; each workflow name is a Logic App in it. "
        "Required.",
    )
    azure_tenant_id: str | None = Field(
        default=None,
        alias="azureTenantId",
        description="Microsoft Entra tenant (a GUID or a domain such as 'contoso.onmicrosoft.com') of the "
        "service principal; unset: the Azure SDK's default credential chain.",
    )
    azure_client_id: str | None = Field(
        default=None,
        alias="azureClientId",
        description="Application (client) id of the service principal, or of a user-assigned managed "
        "identity when azureClientSecret is not set.",
    )
    azure_client_secret: SecretStr | None = Field(
        default=None,
        alias="azureClientSecret",
        description="Client secret of the service principal (with azureTenantId and azureClientId); "
        "reference it with secretKeyRef.",
    )
    trigger_name: str = Field(
        default="manual",
        alias="triggerName",
        description="Name of the request trigger that starts a run; 'manual' is the designer's name for "
        "'When a HTTP request is received'.",
    )
    # allowInsecureBaseUrl comes before baseUrl so that baseUrl's validator can see it.
    allow_insecure_base_url: bool = Field(
        default=False,
        alias="allowInsecureBaseUrl",
        description="Allow a plain-http baseUrl, which sends the bearer token unencrypted; only for a "
        "local test double of the ARM API.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        alias="baseUrl",
        description="Azure Resource Manager endpoint; change it for sovereign clouds (e.g. "
        "'https://management.chinacloudapi.cn') or a local test double. Must be https unless "
        "allowInsecureBaseUrl is true.",
    )

    ca_certificate_file: str | None = Field(
        default=None,
        alias="caCertificateFile",
        description="PEM file of the certificate authorities to trust for TLS to baseUrl, the Logic Apps "
        "endpoints and the Microsoft Entra authority (Azure Stack Hub, a TLS-inspecting proxy, a local test "
        "double); relative to the working directory. Unset: the system's trust store.",
    )

    @model_validator(mode="before")
    @classmethod
    def _unset_empty(cls, data: Any) -> Any:
        # Dapr treats an empty metadata value as "not set": the default applies.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    @field_validator("subscription_id")
    @classmethod
    def _check_subscription(cls, value: str) -> str:
        if not _is_guid(value):
            raise invalid("guid", "a subscription id GUID such as '00000000-0000-0000-0000-000000000000'")
        return value

    @field_validator("azure_client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        if not _is_guid(value):
            raise invalid("guid", "an application (client) id GUID")
        return value

    @field_validator("azure_tenant_id")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        if not (_is_guid(value) or _TENANT_DOMAIN.match(value)):
            raise invalid("tenant", "a tenant id GUID or a domain such as 'contoso.onmicrosoft.com'")
        return value

    @field_validator("resource_group")
    @classmethod
    def _check_resource_group(cls, value: str) -> str:
        if not _RESOURCE_GROUP.match(value) or value.endswith("."):
            raise invalid(
                "resource_group",
                "a resource group name of 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
            )
        return value

    @field_validator("trigger_name")
    @classmethod
    def _check_trigger(cls, value: str) -> str:
        if set(value) & _TRIGGER_FORBIDDEN or len(value) > 80 or value != value.strip():
            raise invalid(
                "trigger_name",
                "a trigger name of at most 80 characters, without surrounding spaces and without "
                "< > % & \\ ? / * # :",
            )
        return value

    @field_validator("ca_certificate_file")
    @classmethod
    def _check_ca_file(cls, value: str) -> str:
        if value != value.strip() or "\x00" in value:
            raise invalid("ca_file", "a path to a PEM file of CA certificates, without surrounding spaces")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str, info: ValidationInfo) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise invalid("base_url", "an absolute https URL such as 'https://management.azure.com'")
        if parts.query or parts.fragment:
            raise invalid("base_url", "a base URL without a query or fragment")
        if parts.scheme == "http" and not info.data.get("allow_insecure_base_url", False):
            raise invalid(
                "insecure_base_url",
                "an https URL: plain http would send the Azure bearer token unencrypted "
                "(for a local test double, set allowInsecureBaseUrl to true)",
            )
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.azure_client_secret is not None:
            absent = [
                alias
                for alias, value in (
                    ("azureClientId", self.azure_client_id),
                    ("azureTenantId", self.azure_tenant_id),
                )
                if value is None
            ]
            if absent:
                raise missing(
                    type(self).__name__,
                    "a service principal's ids, which azureClientSecret belongs to",
                    *absent,
                )
        return self
