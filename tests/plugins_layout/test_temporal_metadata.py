"""``workflow.temporal`` metadata, read from component files as Turnout reads them at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from turnout import ComponentRegistry
from turnout_temporal import TemporalMetadata

from .conftest import expect_invalid, expect_valid

TYPE = "workflow.temporal"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def registry(adapter_registry: Any) -> ComponentRegistry:
    return adapter_registry("temporal")


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"hostPort": "temporal.internal:7233", "namespace": "orders", "taskQueue": "orders-q"},
            id="self-hosted",
        ),
        pytest.param({"hostPort": "[::1]:7233", "identity": "worker-1@host"}, id="ipv6"),
        pytest.param({"hostPort": "10.0.0.5:7233", "hostWorker": True}, id="ipv4-worker"),
        pytest.param({"hostport": "localhost:7233"}, id="names-are-case-insensitive"),
        pytest.param({"workflowExecutionTimeout": "PT24H"}, id="iso-duration"),
        pytest.param({"tls": True, "serverName": "temporal.example.com"}, id="server-tls"),
        pytest.param(
            {
                "clientCertPath": "certs/client.pem",
                "clientKeyPath": "certs/client.key",
                "caCertPath": "ca.pem",
            },
            id="mtls-files",
        ),
        pytest.param({"clientCert": CERT, "clientKey": KEY, "caCert": CERT}, id="mtls-pem"),
    ],
)
def test_valid_metadata_reaches_the_factory(
    tmp_path: Path, registry: ComponentRegistry, metadata: dict[str, Any]
) -> None:
    model = expect_valid(tmp_path, registry, TYPE, metadata)
    assert isinstance(model, TemporalMetadata)


def test_defaults_and_types(tmp_path: Path, registry: ComponentRegistry) -> None:
    model = expect_valid(tmp_path, registry, TYPE, {})
    assert (model.host_port, model.namespace, model.task_queue) == ("localhost:7233", "default", "turnout")
    assert model.host_worker is False and model.workflow_execution_timeout is None
    assert model.use_tls is False

    model = expect_valid(tmp_path, registry, TYPE, {"hostWorker": True, "workflowExecutionTimeout": "1h30m"})
    assert model.host_worker is True  # YAML true reaches the model as "true", as in Dapr
    assert model.workflow_execution_timeout == timedelta(hours=1, minutes=30)

    model = expect_valid(tmp_path, registry, TYPE, {"workflowExecutionTimeout": 90})
    assert model.workflow_execution_timeout == timedelta(seconds=90)

    model = expect_valid(tmp_path, registry, TYPE, {"identity": ""})
    assert model.identity is None  # an empty value is "not set", as in Dapr


def test_api_key_comes_from_a_secret_and_is_never_shown(tmp_path: Path, registry: ComponentRegistry) -> None:
    model = expect_valid(
        tmp_path, registry, TYPE, {"hostPort": "ns.acct.tmprl.cloud:7233"}, secrets={"apiKey": "key-123"}
    )
    assert model.api_key.get_secret_value() == "key-123"
    assert model.use_tls is True  # an API key turns TLS on
    assert "key-123" not in repr(model) and "key-123" not in str(model)

    error = expect_invalid(
        tmp_path, registry, TYPE, {"tls": False}, "tls", "apiKey needs TLS", secrets={"apiKey": "key-123"}
    )
    assert "key-123" not in error.message


@pytest.mark.parametrize(
    ("metadata", "field", "fragment"),
    [
        ({"hostPort": "http://localhost:7233"}, "hostPort", "without a scheme"),
        ({"hostPort": "localhost"}, "hostPort", "host:port"),
        ({"hostPort": "localhost:0"}, "hostPort", "port from 1 to 65535"),
        ({"hostPort": "localhost:http"}, "hostPort", "port from 1 to 65535"),
        ({"hostPort": "::1:7233"}, "hostPort", "in brackets"),
        ({"hostPort": "[nope]:7233"}, "hostPort", "IPv6 address"),
        ({"hostPort": "bad_host!:7233"}, "hostPort", "DNS name"),
        ({"namespace": "-orders"}, "namespace", "starting with a letter or digit"),
        ({"taskQueue": "/_sys/internal"}, "taskQueue", "reserves"),
        ({"taskQueue": " padded "}, "taskQueue", "surrounding spaces"),
        ({"workflowExecutionTimeout": "soon"}, "workflowExecutionTimeout", "a duration such as '30s'"),
        ({"workflowExecutionTimeout": "0s"}, "workflowExecutionTimeout", "positive"),
        ({"hostWorker": "maybe"}, "hostWorker", "boolean"),
        ({"clientCertPath": "client.pem"}, "clientKey", "required"),
        ({"clientKeyPath": "client.key"}, "clientCert", "required"),
        (
            {"clientCertPath": "client.pem", "clientCert": CERT, "clientKeyPath": "client.key"},
            "clientCertPath",
            "either clientCertPath or clientCert, not both",
        ),
        ({"clientCert": "client.pem", "clientKey": KEY}, "clientCert", "PEM certificate"),
        ({"caCert": "MIIB"}, "caCert", "PEM certificate"),
        ({"tls": False, "serverName": "temporal.example.com"}, "tls", "serverName needs TLS"),
        ({"tlsEnabled": True}, "tlsEnabled", "unknown field for workflow.temporal"),
        ({"taskqueu": "x"}, "taskqueu", "did you mean 'taskQueue'"),
    ],
)
def test_invalid_metadata_is_refused_with_the_field(
    tmp_path: Path, registry: ComponentRegistry, metadata: dict[str, Any], field: str, fragment: str
) -> None:
    expect_invalid(tmp_path, registry, TYPE, metadata, field, fragment)


def test_a_key_from_a_secret_completes_a_certificate_file(
    tmp_path: Path, registry: ComponentRegistry
) -> None:
    """The pair rule waits for secrets: clientKey is absent until the secret store is read."""
    model = expect_valid(
        tmp_path, registry, TYPE, {"clientCertPath": "client.pem"}, secrets={"clientKey": KEY}
    )
    assert model.client_key.get_secret_value() == KEY
    assert model.use_tls is True


def test_a_bad_private_key_from_a_secret_is_not_echoed(tmp_path: Path, registry: ComponentRegistry) -> None:
    error = expect_invalid(
        tmp_path,
        registry,
        TYPE,
        {"clientCert": CERT},
        "clientKey",
        "PEM private key",
        secrets={"clientKey": "hunter2-not-a-key"},
    )
    assert "hunter2" not in error.message
