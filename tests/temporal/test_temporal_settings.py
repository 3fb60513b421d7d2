"""The adapter's own settings, TLS options and public names (no server needed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import TLSConfig

import turnout
import turnout_temporal
from turnout import Feature
from turnout_temporal import TemporalMetadata, TemporalWorkflowComponent

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def test_public_names() -> None:
    """The package's public surface (STYLE: a snapshot of the exports)."""
    assert sorted(turnout_temporal.__all__) == ["STATUS_MAP", "TemporalMetadata", "TemporalWorkflowComponent"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, (timedelta(hours=1), timedelta(seconds=60))),
        ({"activityTimeout": "5m", "purgeTimeout": "0"}, (timedelta(minutes=5), timedelta(0))),
    ],
)
def test_timeouts(given: dict[str, Any], expected: tuple[timedelta, timedelta]) -> None:
    model = TemporalMetadata.model_validate(given)
    assert (model.activity_timeout, model.purge_timeout) == expected


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("activityTimeout", "0s", "a positive duration"),
        ("activityTimeout", "soon", "a duration such as"),
        ("purgeTimeout", "-1", "a duration such as"),
        ("purgeTimeout", "later", "a duration such as"),
    ],
)
def test_bad_timeouts_name_the_field(field: str, value: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TemporalMetadata.model_validate({field: value})
    error = caught.value.errors()[0]
    assert error["loc"] == (field,)
    assert fragment in error["msg"]


def _component(**metadata: Any) -> TemporalWorkflowComponent:
    return TemporalWorkflowComponent(TemporalMetadata.model_validate(metadata), None)


def test_tls_options(tmp_path: Path) -> None:
    assert _component()._tls() is False
    assert _component(apiKey="key")._tls() is True, "TLS with the system's roots"
    (tmp_path / "ca.pem").write_text(CERT)
    config = _component(caCertPath=str(tmp_path / "ca.pem"), serverName="temporal.internal")._tls()
    assert config == TLSConfig(server_root_ca_cert=CERT.encode(), domain="temporal.internal")
    mutual = _component(clientCert=CERT, clientKey=KEY)._tls()
    assert isinstance(mutual, TLSConfig)
    assert (mutual.client_cert, mutual.client_private_key) == (CERT.encode(), KEY.encode())
    with pytest.raises(turnout.ComponentError) as caught:
        _component(caCertPath=str(tmp_path / "missing.pem"))._tls()
    assert "missing.pem" in str(caught.value)


def test_features_follow_host_worker() -> None:
    without = _component()
    assert Feature.WORKFLOW_CODE not in without.features
    assert Feature.PAUSE in without.features
    assert "hostWorker" in without.unsupported(Feature.WORKFLOW_CODE).message
    with_worker = TemporalWorkflowComponent(
        TemporalMetadata.model_validate({"hostWorker": True}), turnout.Workflows()
    )
    assert Feature.WORKFLOW_CODE in with_worker.features
    assert Feature.WORKFLOW_CODE not in TemporalWorkflowComponent.features, "per component, not per class"
