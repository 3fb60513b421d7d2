"""What the Logic Apps tests share: credentials for the double, deployment through the SDK, targets.

Everything reaches the double through the real ``azure-mgmt-logic`` client:
the Logic Apps are created with ``workflows.create_or_update``, the component
under test calls the same SDK. Only the credential is a test's own: a static
bearer token that the double issued (any object with ``get_token`` will do).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.mgmt.logic import LogicManagementClient
from azure.mgmt.logic.models import Workflow

from turnout import AsyncWorkflowClient
from turnout.testing import ConformanceTarget
from turnout_logicapps import LogicAppsComponent, LogicAppsMetadata

from . import definitions
from .arm_double import ArmDouble, make_certificates

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT_ID = "22222222-2222-2222-2222-222222222222"
CLIENT_SECRET = "double-secret-value"
LOCATION = "westeurope"

ROLES = {
    "echo": "conformance-echo",
    "waiter": "conformance-waiter",
    "sleeper": "conformance-sleeper",
    "failing": "conformance-failing",
}
REASONS = {
    "activity": "Logic Apps runs its own definitions, not Turnout workflow code",
    "custom_status": "Logic Apps runs have no custom status",
    "parent": "child workflows are Logic Apps calling Logic Apps, outside what the suite drives",
}
"""Why the conformance roles that Logic Apps cannot play are left out."""


class StaticTokenCredential:
    """An async Azure credential that always gives the same token (the double issued it)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The token, valid for an hour from now."""
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class SyncStaticTokenCredential:
    """The same for the synchronous SDK client that deploys the test Logic Apps."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The token, valid for an hour from now."""
        return AccessToken(self.token, int(time.time()) + 3600)


def start_double(folder: Path, *, tls: bool = True) -> ArmDouble:
    """A started double (HTTPS with a fresh CA under ``folder``, or plain HTTP)."""
    double = ArmDouble(make_certificates(folder) if tls else None).start()
    double.register_app(TENANT, CLIENT_ID, CLIENT_SECRET)
    return double


def new_group() -> str:
    """A resource group name of its own for one test (the double keeps everything in memory)."""
    return f"rg-{uuid.uuid4().hex[:10]}"


def arm_client(double: ArmDouble, subscription: str = SUBSCRIPTION) -> LogicManagementClient:
    """The synchronous SDK client, for deploying and inspecting Logic Apps in the double."""
    options: dict[str, Any] = {"retry_total": 0, "credential_scopes": [f"{double.base_url}/.default"]}
    if double.ca_file is not None:
        options["connection_verify"] = str(double.ca_file)
    return LogicManagementClient(
        SyncStaticTokenCredential(double.issue_token()), subscription, base_url=double.base_url, **options
    )


def deploy(
    double: ArmDouble, group: str, logic_apps: dict[str, dict[str, Any]], *, subscription: str = SUBSCRIPTION
) -> None:
    """Create (or update) Logic Apps in ``group`` through ``workflows.create_or_update``."""
    client = arm_client(double, subscription)
    try:
        for name, definition in logic_apps.items():
            # Over plain http the sync SDK sends a token only when the call says enforce_https=False.
            kwargs: dict[str, Any] = {} if double.ca_file is not None else {"enforce_https": False}
            client.workflows.create_or_update(
                group, name, Workflow(location=LOCATION, definition=definition), **kwargs
            )
    finally:
        client.close()


def metadata(double: ArmDouble, group: str, **fields: Any) -> LogicAppsMetadata:
    """Component metadata pointing at the double."""
    values: dict[str, Any] = {
        "subscriptionId": SUBSCRIPTION,
        "resourceGroup": group,
        "baseUrl": double.base_url,
    }
    if double.ca_file is None:
        values["allowInsecureBaseUrl"] = True
    values.update(fields)
    return LogicAppsMetadata.model_validate(values)


def component(
    double: ArmDouble, group: str, *, name: str = "logicapps", **options: Any
) -> LogicAppsComponent:
    """A component for ``group`` with a static token credential (not yet open)."""
    fields = options.pop("fields", {})
    options.setdefault("credential", StaticTokenCredential(double.issue_token()))
    options.setdefault("client_options", {"retry_total": 0})
    options.setdefault("ca_file", double.ca_file)
    return LogicAppsComponent(metadata(double, group, **fields), name=name, **options)


def conformance_apps(double: ArmDouble) -> dict[str, dict[str, Any]]:
    """The four Logic Apps that play the conformance roles."""
    sink = f"{double.base_url}/_double/sink"
    return {
        ROLES["echo"]: definitions.echo(),
        ROLES["waiter"]: definitions.waiter(sink, "go"),
        ROLES["sleeper"]: definitions.sleeper(),
        ROLES["failing"]: definitions.failing(),
    }


@asynccontextmanager
async def logicapps_target(double: ArmDouble) -> AsyncIterator[ConformanceTarget]:
    """A conformance target: the role Logic Apps deployed in a fresh resource group, the component open.

    ``restart`` closes the component and opens a new one on the same resource
    group, which must find its instances again from the runs' tracking ids.
    """
    group = new_group()
    deploy(double, group, conformance_apps(double))
    current = component(double, group)
    await current.open()

    async def restart() -> AsyncWorkflowClient:
        nonlocal current
        await current.close()
        current = component(double, group)
        await current.open()
        return AsyncWorkflowClient(current)

    try:
        yield ConformanceTarget(
            AsyncWorkflowClient(current),
            **ROLES,
            event_name="go",
            failure_message=definitions.FAILURE_MESSAGE,
            failure_error_type=definitions.FAILURE_CODE,
            restart=restart,
            reasons=REASONS,
        )
    finally:
        await current.close()


def component_document(double: ArmDouble, group: str, name: str = "logicapps") -> dict[str, Any]:
    """A component file's document for ``group``, signing in as the double's service principal."""
    values = {
        "subscriptionId": SUBSCRIPTION,
        "resourceGroup": group,
        "azureTenantId": TENANT,
        "azureClientId": CLIENT_ID,
        "azureClientSecret": CLIENT_SECRET,
        "baseUrl": double.base_url,
    }
    if double.ca_file is not None:
        values["caCertificateFile"] = str(double.ca_file)
    else:
        values["allowInsecureBaseUrl"] = "true"
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {
            "type": "workflow.azure.logicapps",
            "version": "v1",
            "metadata": [{"name": k, "value": v} for k, v in values.items()],
        },
    }


@asynccontextmanager
async def runtime_target(double: ArmDouble, folder: Path) -> AsyncIterator[ConformanceTarget]:
    """A conformance target built the way users build one: a component file read by a Turnout runtime.

    The component signs in with azure-identity's ClientSecretCredential at the
    double's token endpoint; the caller must point ``AZURE_AUTHORITY_HOST`` at
    ``double.base_url`` (azure-identity reads it when the credential is made).
    """
    import yaml

    from turnout import AsyncRuntime

    group = new_group()
    deploy(double, group, conformance_apps(double))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logicapps.yaml").write_text(
        yaml.safe_dump(component_document(double, group)), encoding="utf-8"
    )
    runtime = AsyncRuntime(folder, working_dir=folder)
    await runtime.start()

    async def restart() -> AsyncWorkflowClient:
        nonlocal runtime
        await runtime.aclose()
        runtime = AsyncRuntime(folder, working_dir=folder)
        await runtime.start()
        return runtime.client("logicapps")

    try:
        yield ConformanceTarget(
            runtime.client("logicapps"),
            **ROLES,
            event_name="go",
            failure_message=definitions.FAILURE_MESSAGE,
            failure_error_type=definitions.FAILURE_CODE,
            restart=restart,
            reasons=REASONS,
        )
    finally:
        await runtime.aclose()
