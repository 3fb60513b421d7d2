"""Metadata of ``workflow.temporal`` components: validation, documentation and JSON schema in one model.

Names follow Temporal's own settings (``hostPort``, ``namespace``, ``taskQueue``,
``identity``, the ``TEMPORAL_TLS_*`` family) spelt in Dapr's camelCase, so a
Dapr or Temporal user recognises every field.

Errors follow :mod:`turnout.metadata`'s conventions: each names what was
expected, and a rule between fields is reported on one field.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from turnout.metadata import field_error, invalid, missing, parse_duration

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def _is_hostname(host: str) -> bool:
    if len(host) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in host.rstrip(".").split("."))


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def check_host_port(value: str) -> str:
    """``host:port`` with a DNS name, an IPv4 address or a bracketed IPv6 address, and a port 1-65535."""
    text = value.strip()
    if "://" in text:
        raise invalid("host_port", "host:port without a scheme, e.g. 'localhost:7233'")
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise invalid("host_port", "an IPv6 address between the brackets, e.g. '[::1]:7233'") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise invalid("host_port", "host:port, e.g. 'localhost:7233' or 'my-ns.a1b2c.tmprl.cloud:7233'")
        if ":" in host:
            raise invalid("host_port", "an IPv6 address in brackets, e.g. '[::1]:7233'")
        if not (_is_hostname(host) or _is_ipv4(host)):
            raise invalid("host_port", "host:port where the host is a DNS name or an IP address")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise invalid("host_port", "host:port with a port from 1 to 65535")
    return text


class TemporalMetadata(BaseModel):
    """``workflow.temporal``: workflows run by a Temporal cluster (self-hosted or Temporal Cloud)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host_port: str = Field(
        default="localhost:7233",
        alias="hostPort",
        description="Address of the Temporal frontend as host:port, e.g. 'localhost:7233' for "
        "'temporal server start-dev' or '<namespace>.<account>.tmprl.cloud:7233' for Temporal Cloud.",
    )
    namespace: str = Field(
        default="default",
        description="Temporal namespace that holds the workflows (Temporal Cloud: '<namespace>.<account>').",
    )
    task_queue: str = Field(
        default="turnout",
        alias="taskQueue",
        description="Task queue that new workflows are started on; the workers serving these workflows "
        "(this process when hostWorker is true) poll it.",
    )
    identity: str | None = Field(
        default=None,
        description="Client identity recorded in workflow histories; by default the SDK's '<pid>@<host>'.",
    )
    tls: bool | None = Field(
        default=None,
        description="Connect with TLS. Unset: on when an API key or any certificate field is given, "
        "off otherwise. Set true for a server with a public certificate and no client certificate.",
    )
    client_cert_path: Path | None = Field(
        default=None,
        alias="clientCertPath",
        description="File holding the PEM client certificate for mutual TLS (with clientKeyPath); "
        "relative paths start at the working directory.",
    )
    client_key_path: Path | None = Field(
        default=None,
        alias="clientKeyPath",
        description="File holding the PEM private key of the client certificate.",
    )
    client_cert: str | None = Field(
        default=None,
        alias="clientCert",
        description="The PEM client certificate itself, instead of clientCertPath.",
    )
    client_key: SecretStr | None = Field(
        default=None,
        alias="clientKey",
        description="The PEM private key itself, instead of clientKeyPath; keep it in a secret store "
        "and reference it with secretKeyRef.",
    )
    ca_cert_path: Path | None = Field(
        default=None,
        alias="caCertPath",
        description="File holding the PEM certificate authority that signed the server's certificate; "
        "by default the system's trusted roots.",
    )
    ca_cert: str | None = Field(
        default=None,
        alias="caCert",
        description="The PEM certificate authority itself, instead of caCertPath.",
    )
    server_name: str | None = Field(
        default=None,
        alias="serverName",
        description="Server name to verify the server's certificate against (and send as SNI) when it "
        "differs from the host in hostPort.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        alias="apiKey",
        description="Temporal Cloud API key, sent as a bearer token over TLS. A secret: reference it "
        "with secretKeyRef rather than writing it in the file.",
    )
    host_worker: bool = Field(
        default=False,
        alias="hostWorker",
        description="Also run a Temporal worker in this process that polls taskQueue and executes the "
        "workflows and activities registered with turnout.Workflows; false when workers run elsewhere.",
    )
    workflow_execution_timeout: timedelta | None = Field(
        default=None,
        alias="workflowExecutionTimeout",
        description="Longest time a started workflow may run, retries and continue-as-new included: "
        "'30s', '10m', '1h30m', '2d', ISO 8601 'PT24H' or a number of seconds; none by default.",
    )
    activity_timeout: timedelta = Field(
        default=timedelta(hours=1),
        alias="activityTimeout",
        description="Longest time one attempt of an activity may run before Temporal fails the attempt "
        "(and retries it if the call's retry policy allows): Temporal's start-to-close timeout, which "
        "Temporal requires on every activity. A duration such as '30s' or '2h'; 1h by default.",
    )
    purge_timeout: timedelta = Field(
        default=timedelta(seconds=60),
        alias="purgeTimeout",
        description="How long purge waits until Temporal has really deleted the instance "
        "(DeleteWorkflowExecution is asynchronous on the server and takes up to about a minute with "
        "default server settings): a duration, or 0 to return as soon as the server accepted the "
        "request; 60s by default.",
    )

    @model_validator(mode="before")
    @classmethod
    def _unset_empty(cls, data: Any) -> Any:
        # Dapr treats an empty metadata value as "not set": the default applies.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    @field_validator("host_port")
    @classmethod
    def _check_host_port(cls, value: str) -> str:
        return check_host_port(value)

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value):
            raise invalid(
                "namespace",
                "a namespace of letters, digits, '.', '_' and '-', starting with a letter or digit",
            )
        return value

    @field_validator("task_queue")
    @classmethod
    def _check_task_queue(cls, value: str) -> str:
        if value != value.strip() or len(value) > 1000:
            raise invalid(
                "task_queue", "a task queue name of at most 1000 characters, without surrounding spaces"
            )
        if value.startswith("/_sys/"):
            raise invalid("task_queue", "a task queue name outside '/_sys/', which Temporal reserves")
        return value

    @field_validator("client_cert", "ca_cert")
    @classmethod
    def _check_certificate(cls, value: str) -> str:
        if "-----BEGIN CERTIFICATE-----" not in value:
            raise invalid(
                "pem",
                "a PEM certificate ('-----BEGIN CERTIFICATE-----...'); to name a file, use the *Path field",
            )
        return value

    @field_validator("client_key")
    @classmethod
    def _check_private_key(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
            raise invalid(
                "pem",
                "a PEM private key ('-----BEGIN PRIVATE KEY-----...'); to name a file, use clientKeyPath",
            )
        return value

    @field_validator("workflow_execution_timeout", "activity_timeout", mode="before")
    @classmethod
    def _parse_timeout(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("purge_timeout", mode="before")
    @classmethod
    def _parse_wait(cls, value: Any) -> timedelta:
        return parse_duration(value, allow_zero=True)

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        for path_alias, pem_alias in (
            ("clientCertPath", "clientCert"),
            ("clientKeyPath", "clientKey"),
            ("caCertPath", "caCert"),
        ):
            if self._given(path_alias) and self._given(pem_alias):
                raise self._refuse(path_alias, f"either {path_alias} or {pem_alias}, not both")
        has_cert = self._given("clientCertPath") or self._given("clientCert")
        has_key = self._given("clientKeyPath") or self._given("clientKey")
        # Reported on the PEM field, the one a secretKeyRef is likely to fill (see _missing).
        model = type(self).__name__
        if has_cert and not has_key:
            raise missing(
                model, "clientKeyPath or clientKey: a client certificate needs its key", "clientKey"
            )
        if has_key and not has_cert:
            raise missing(
                model, "clientCertPath or clientCert: a private key needs its certificate", "clientCert"
            )
        if self.tls is False:
            needing = [alias for alias in (*_TLS_FIELDS, "apiKey") if self._given(alias)]
            if needing:
                verb = "needs" if len(needing) == 1 else "need"
                raise self._refuse("tls", f"true, or no tls entry: {', '.join(needing)} {verb} TLS")
        return self

    def _given(self, alias: str) -> bool:
        return getattr(self, _BY_ALIAS[alias]) is not None

    def _refuse(self, alias: str, message: str) -> ValidationError:
        return field_error(type(self).__name__, alias, getattr(self, _BY_ALIAS[alias]), "tls", message)

    @property
    def use_tls(self) -> bool:
        """Whether the connection uses TLS, once the ``tls`` default has been resolved."""
        if self.tls is not None:
            return self.tls
        return any(self._given(alias) for alias in (*_TLS_FIELDS, "apiKey"))


_BY_ALIAS = {info.alias or name: name for name, info in TemporalMetadata.model_fields.items()}
_TLS_FIELDS = (
    "clientCertPath",
    "clientKeyPath",
    "clientCert",
    "clientKey",
    "caCertPath",
    "caCert",
    "serverName",
)
