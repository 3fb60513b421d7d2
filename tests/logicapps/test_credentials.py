"""Component files in a Turnout runtime: which credential signs in, what a wrong one or a bad file gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from turnout import AsyncRuntime, ComponentError, EngineError, RuntimeStatus

from . import definitions
from .arm_double import ArmDouble
from .support import CLIENT_ID, TENANT, component, component_document, deploy, new_group


def write(folder: Path, document: dict[str, Any], **changes: str | None) -> Path:
    """Write ``document`` with some metadata values changed (None removes the field)."""
    items = {m["name"]: m["value"] for m in document["spec"]["metadata"]}
    for name, value in changes.items():
        if value is None:
            items.pop(name, None)
        else:
            items[name] = value
    document["spec"]["metadata"] = [{"name": k, "value": v} for k, v in items.items()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logicapps.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return folder


@pytest.fixture
def deployed(arm_double: ArmDouble, monkeypatch: pytest.MonkeyPatch) -> str:
    """A resource group with an echo Logic App; azure-identity signs in at the double."""
    group = new_group()
    deploy(arm_double, group, {"echo": definitions.echo()})
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", arm_double.base_url)
    return group


async def run_echo(folder: Path) -> Any:
    async with AsyncRuntime(folder, working_dir=folder) as runtime:
        client = runtime.client("logicapps")
        return await client.wait(await client.start("echo", "signed in"), timeout=10)


async def test_a_service_principal_signs_in_with_its_secret(
    arm_double: ArmDouble, deployed: str, tmp_path: Path
) -> None:
    issued = len(arm_double.tokens)
    state = await run_echo(write(tmp_path / "c", component_document(arm_double, deployed)))
    assert (state.runtime_status, state.output) == (RuntimeStatus.COMPLETED, "signed in")
    assert len(arm_double.tokens) == issued + 1, "one token, cached by azure-core for every call"


async def test_without_a_secret_the_default_chain_signs_in_from_the_environment(
    arm_double: ArmDouble, deployed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No azure* fields: DefaultAzureCredential, whose first link reads AZURE_TENANT_ID and friends."""
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "double-secret-value")
    document = component_document(arm_double, deployed)
    folder = write(tmp_path / "c", document, azureTenantId=None, azureClientId=None, azureClientSecret=None)
    state = await run_echo(folder)
    assert state.output == "signed in"


async def test_a_wrong_secret_is_an_engine_error_that_says_so(
    arm_double: ArmDouble, deployed: str, tmp_path: Path
) -> None:
    folder = write(tmp_path / "c", component_document(arm_double, deployed), azureClientSecret="wrong")
    async with AsyncRuntime(folder, working_dir=folder) as runtime:
        with pytest.raises(EngineError, match=r"Azure refused the credentials.*azureClientSecret") as caught:
            await runtime.client("logicapps").get("any")
    assert caught.value.retryable is False
    assert "AADSTS7000215" in str(caught.value)


async def test_a_missing_ca_file_is_refused_at_start_up(arm_double: ArmDouble, tmp_path: Path) -> None:
    folder = write(tmp_path / "c", component_document(arm_double, "rg"), caCertificateFile="certs/none.pem")
    with pytest.raises(ComponentError) as caught:
        async with AsyncRuntime(folder, working_dir=tmp_path):
            pass
    assert caught.value.field == "spec.metadata.caCertificateFile"
    assert "invalid value 'certs/none.pem': expected a PEM file of CA certificates" in caught.value.message


async def test_a_file_that_is_not_pem_is_refused_at_start_up(arm_double: ArmDouble, tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    folder = write(tmp_path / "c", component_document(arm_double, "rg"), caCertificateFile="bad.pem")
    with pytest.raises(ComponentError, match="expected a PEM file of CA certificates"):
        async with AsyncRuntime(folder, working_dir=tmp_path):
            pass


async def test_without_the_ca_the_double_is_not_trusted(arm_double: ArmDouble, deployed: str) -> None:
    """TLS is verified: the double's certificate is refused unless caCertificateFile names its CA.

    (Built directly with retries off: through a runtime, the SDK's and azure-identity's
    retry policies would each retry the failed handshake, which takes some 20 s.)
    """
    made = component(arm_double, deployed, ca_file=None)
    await made.open()
    try:
        with pytest.raises(EngineError) as caught:
            await made.get("any")
    finally:
        await made.close()
    assert "TLS certificate is not trusted" in str(caught.value) and "caCertificateFile" in str(caught.value)
    assert caught.value.retryable is False
