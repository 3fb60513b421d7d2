"""The Azure side of the adapter: credentials, the ARM client, the data-plane HTTP calls, error wrapping.

Two kinds of endpoint are involved. ARM (``baseUrl``) is called through the
real ``azure-mgmt-logic`` async client with a bearer token. The data plane
(the trigger's signed callback URL, a webhook action's callback URL and the
content links of inputs and outputs) carries its own ``sig`` signature and is
called with plain aiohttp, without the token, as Logic Apps expects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.mgmt.core.policies import AsyncARMChallengeAuthenticationPolicy
from azure.mgmt.logic.aio import LogicManagementClient

from turnout import EngineError

from ._metadata import LogicAppsMetadata

log = logging.getLogger("turnout.logicapps")

COMPONENT_TYPE = "workflow.azure.logicapps"
DATA_PLANE_TIMEOUT = 150.0
"""Seconds a data-plane call may take: a trigger with a Response action answers within 120 s."""


class PlainHttpBearerPolicy(AsyncARMChallengeAuthenticationPolicy):
    """ARM's bearer-token policy, allowed over plain http.

    azure-core refuses to send a bearer token over http. This policy is used
    only when the metadata says ``allowInsecureBaseUrl: true`` and ``baseUrl``
    is an http URL: the user has accepted, in writing, that the token travels
    unencrypted (a local double of ARM). Everything else (token caching, the
    ARM claims challenge) is azure-core's own.
    """

    async def on_request(self, request: PipelineRequest[Any]) -> None:
        """Mark the request as allowed over http, then authorize it as usual."""
        request.context["enforce_https"] = False
        await super().on_request(request)


def credential_scope(base_url: str) -> str:
    """The token scope of an ARM endpoint: ``https://management.azure.com/.default`` for the public cloud."""
    return base_url.rstrip("/") + "/.default"


def make_credential(metadata: LogicAppsMetadata, ca_file: Path | None) -> AsyncTokenCredential:
    """A service principal's ClientSecretCredential, or azure-identity's default chain.

    With ``azureClientSecret`` the three ids make a ClientSecretCredential.
    Without it, DefaultAzureCredential tries the environment, workload
    identity, managed identity (``azureClientId`` picks a user-assigned one)
    and the developer tools. The authority host follows azure-identity's
    ``AZURE_AUTHORITY_HOST`` (sovereign clouds).
    """
    from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

    options: dict[str, Any] = {}
    if ca_file is not None:
        options["connection_verify"] = str(ca_file)
    if metadata.azure_client_secret is not None:
        assert metadata.azure_tenant_id and metadata.azure_client_id  # the metadata model requires them
        return ClientSecretCredential(
            metadata.azure_tenant_id,
            metadata.azure_client_id,
            metadata.azure_client_secret.get_secret_value(),
            **options,
        )
    if metadata.azure_client_id:
        options["managed_identity_client_id"] = metadata.azure_client_id
        options["workload_identity_client_id"] = metadata.azure_client_id
    if metadata.azure_tenant_id:
        options["workload_identity_tenant_id"] = metadata.azure_tenant_id
    return DefaultAzureCredential(**options)


def make_client(
    metadata: LogicAppsMetadata,
    credential: AsyncTokenCredential,
    ca_file: Path | None,
    client_options: dict[str, Any],
) -> LogicManagementClient:
    """The real SDK client for ``baseUrl`` (API version 2019-05-01)."""
    options: dict[str, Any] = {"credential_scopes": [credential_scope(metadata.base_url)], **client_options}
    if ca_file is not None:
        options.setdefault("connection_verify", str(ca_file))
    if urlsplit(metadata.base_url).scheme == "http":
        # The metadata model refuses http unless allowInsecureBaseUrl is true.
        assert metadata.allow_insecure_base_url
        options["authentication_policy"] = PlainHttpBearerPolicy(credential, *options["credential_scopes"])
    return LogicManagementClient(credential, metadata.subscription_id, base_url=metadata.base_url, **options)


# -- errors ----------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """One line about an Azure or HTTP error: status, ARM error code and message."""
    if isinstance(exc, HttpResponseError):
        code = getattr(getattr(exc, "error", None), "code", None)
        message = (
            getattr(getattr(exc, "error", None), "message", None) or exc.message or exc.reason or str(exc)
        )
        message = str(message).strip().splitlines()[0] if str(message).strip() else str(exc.reason)
        status = f"HTTP {exc.status_code}" if exc.status_code else "HTTP error"
        return f"{status} {code}: {message}" if code else f"{status}: {message}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_code(exc: BaseException) -> str:
    """The ARM error code of an HttpResponseError (``ResourceNotFound``, ...), or ''."""
    return str(getattr(getattr(exc, "error", None), "code", None) or "")


def _certificate_problem(exc: BaseException) -> bool:
    """Whether TLS verification failed somewhere in the exception's chain (retrying will not help)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = getattr(current, "inner_exception", None) or current.__cause__ or current.__context__
    return False


def engine_error(operation: str, exc: BaseException) -> EngineError:
    """Turnout's EngineError for an Azure SDK, identity or transport error, with ``retryable`` set."""
    if _certificate_problem(exc):
        return EngineError(
            COMPONENT_TYPE,
            operation,
            f"the endpoint's TLS certificate is not trusted ({describe(exc)}); if it is signed by a CA of "
            "your own, name that CA's PEM file in caCertificateFile",
            retryable=False,
        )
    if isinstance(exc, ClientAuthenticationError):
        return EngineError(
            COMPONENT_TYPE,
            operation,
            f"Azure refused the credentials ({describe(exc)}); check azureTenantId, azureClientId and "
            "azureClientSecret, or the environment of azure-identity's default chain",
            retryable=False,
        )
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = exc.status_code
        if status == 403:
            return EngineError(
                COMPONENT_TYPE,
                operation,
                f"{describe(exc)}; the identity needs the 'Logic App Operator' role (or 'Logic App "
                "Contributor' to resubmit) on the resource group",
                retryable=False,
            )
        retryable = status in (408, 429) or status >= 500
        return EngineError(COMPONENT_TYPE, operation, describe(exc), retryable=retryable)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return EngineError(
            COMPONENT_TYPE,
            operation,
            f"could not reach Azure Resource Manager: {describe(exc)}",
            retryable=True,
        )
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return EngineError(
            COMPONENT_TYPE,
            operation,
            f"could not reach the Logic Apps endpoint: {describe(exc)}",
            retryable=True,
        )
    if isinstance(exc, AzureError):
        return EngineError(COMPONENT_TYPE, operation, describe(exc), retryable=False)
    return EngineError(COMPONENT_TYPE, operation, describe(exc), retryable=False)


# -- the data plane --------------------------------------------------------------------------


class DataPlaneResponse:
    """Status, headers (lower-case names) and body of a data-plane answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    def error(self) -> str:
        """ARM-style ``code: message`` of an error answer, or the start of the body."""
        try:
            data = self.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return f"{data['error'].get('code')}: {data['error'].get('message')}"
        return self.body[:200].decode("utf-8", "replace") or "(no body)"


class DataPlane:
    """Calls to signed Logic Apps URLs (no bearer token: the URL's ``sig`` authorizes them)."""

    def __init__(self, ca_file: Path | None, allow_http: bool) -> None:
        self._ssl: ssl.SSLContext | bool = True
        if ca_file is not None:
            self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._allow_http = allow_http
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the HTTP session (inside the running event loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DATA_PLANE_TIMEOUT))

    async def close(self) -> None:
        """Close the HTTP session."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _check(self, url: str, operation: str) -> None:
        scheme = urlsplit(url).scheme
        if scheme == "https" or (scheme == "http" and self._allow_http):
            return
        raise EngineError(
            COMPONENT_TYPE,
            operation,
            f"Logic Apps gave a {scheme or 'relative'} URL ({urlsplit(url).netloc or url[:40]}); its "
            "signature would travel unencrypted, which only allowInsecureBaseUrl permits",
            retryable=False,
        )

    async def request(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        body: Any = None,
        has_body: bool = False,
        headers: dict[str, str] | None = None,
    ) -> DataPlaneResponse:
        """Send one request; a JSON body when ``has_body`` (so that ``None`` is sent as ``null``)."""
        self._check(url, operation)
        if self._session is None:
            raise EngineError(COMPONENT_TYPE, operation, "the component is not open", retryable=False)
        sent = dict(headers or {})
        data = None
        if has_body:
            data = json.dumps(body, ensure_ascii=False).encode()
            sent["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self._session.request(method, url, data=data, headers=sent, ssl=self._ssl) as answer:
                raw = await answer.read()
                return DataPlaneResponse(
                    answer.status, {k.lower(): v for k, v in answer.headers.items()}, raw
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise engine_error(operation, exc) from exc
