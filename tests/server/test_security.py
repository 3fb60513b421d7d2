"""The API token (Dapr's dapr-api-token header), TLS and mutual TLS, over real HTTPS."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from turnout._server._config import ServerConfig, token_from_env
from turnout._server._runner import ServeOptions

from .conftest import LiveServer, write_components
from .pki import Authority, Pair
from .test_dapr_routes import error

TOKEN = "tok-7f3a9c1e5b2d4f60"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("guarded")
    config = ServerConfig(api_token=TOKEN)
    with LiveServer(write_components(folder / "components"), folder, config=config) as server:
        yield server


def test_token_from_env_prefers_turnout_then_dapr() -> None:
    assert token_from_env({}) is None
    assert token_from_env({"DAPR_API_TOKEN": "d"}) == "d"
    assert token_from_env({"DAPR_API_TOKEN": "d", "TURNOUT_API_TOKEN": "t"}) == "t"
    assert token_from_env({"TURNOUT_API_TOKEN": ""}) is None


def test_the_config_never_shows_the_token() -> None:
    assert TOKEN not in repr(ServerConfig(api_token=TOKEN))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1.0/components"),
        ("GET", "/openapi.json"),
        ("POST", "/v1.0/workflows/dapr/echo/start"),
        ("POST", "/v1.0-beta1/workflows/dapr/echo/start"),
        ("POST", "/v1.0-alpha1/workflows/dapr/echo/start"),
        ("GET", "/v1.0/workflows/dapr/x"),
        ("GET", "/v1.0/workflows/dapr"),
        ("GET", "/v1.0/nothing"),
    ],
)
def test_every_route_needs_the_token(guarded: LiveServer, method: str, path: str) -> None:
    with guarded.client() as client:
        missing = error(client.request(method, path), 401, "ERR_UNAUTHORIZED")
        assert "no dapr-api-token header" in missing["message"]
        wrong = error(
            client.request(method, path, headers={"dapr-api-token": "nope"}), 401, "ERR_UNAUTHORIZED"
        )
        assert "does not match" in wrong["message"]
        answered = client.request(method, path, headers={"dapr-api-token": TOKEN})
        assert answered.status_code != 401


def test_health_is_open(guarded: LiveServer) -> None:
    with guarded.client() as client:
        assert client.get("/v1.0/healthz").status_code == 204


def test_the_token_never_reaches_the_logs(
    guarded: LiveServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("turnout", "uvicorn", "uvicorn.access", "uvicorn.error"):
        # uvicorn's logging config (applied by an earlier in-process `turnout serve`) stops propagation.
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    wrong = "wrong-" + TOKEN[::-1]
    with guarded.client(headers={"dapr-api-token": TOKEN}) as client:
        started = client.post("/v1.0/workflows/dapr/echo/start?instanceID=logged", json={"a": 1})
        assert started.status_code == 202
        assert client.get("/v1.0/workflows/dapr/logged").status_code == 200
        assert client.get("/v1.0/workflows/dapr/logged", headers={"dapr-api-token": wrong}).status_code == 401
    with guarded.client() as client:
        assert client.get("/v1.0/components").status_code == 401
    assert "refused GET /v1.0/components" in caplog.text  # the refusals are logged ...
    assert TOKEN not in caplog.text  # ... without the token,
    assert wrong not in caplog.text  # nor the wrong one offered


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = Authority(folder, "turnout-test-ca"), Authority(folder, "someone-else-ca")
    return {
        "ca": ca.pair,
        "server": ca.issue("server", server=True),
        "client": ca.issue("client", server=False),
        "stranger": other.issue("stranger", server=False),
    }


def _context(ca: Path, client: Pair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def _serve(tmp_path: Path, pki: dict[str, Pair], *, mutual: bool) -> LiveServer:
    options = ServeOptions(
        tls_cert=pki["server"].cert,
        tls_key=pki["server"].key,
        tls_client_ca=pki["ca"].cert if mutual else None,
    )
    return LiveServer(write_components(tmp_path / "components"), tmp_path, options=options)


REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


def test_tls_serves_https(tmp_path: Path, pki: dict[str, Pair]) -> None:
    with _serve(tmp_path, pki, mutual=False) as server:
        assert server.url.startswith("https://")
        with server.client(verify=_context(pki["ca"].cert)) as client:
            assert client.get("/v1.0/healthz").status_code == 204
            assert client.post("/v1.0/workflows/dapr/echo/start", json=1).status_code == 202
        with pytest.raises(httpx.ConnectError), server.client() as client:
            client.get("/v1.0/healthz")  # the system's CAs do not know the test CA
        plain = server.url.replace("https://", "http://")
        with pytest.raises(REFUSED), httpx.Client(base_url=plain, timeout=10) as client:
            client.get("/v1.0/healthz")


def test_mutual_tls_refuses_clients_without_a_certificate_from_the_ca(
    tmp_path: Path, pki: dict[str, Pair]
) -> None:
    with _serve(tmp_path, pki, mutual=True) as server:
        with server.client(verify=_context(pki["ca"].cert, pki["client"])) as client:
            assert client.get("/v1.0/healthz").status_code == 204
            assert client.get("/v1.0/components").status_code == 200
        with pytest.raises(REFUSED), server.client(verify=_context(pki["ca"].cert)) as client:
            client.get("/v1.0/components")
        with (
            pytest.raises(REFUSED),
            server.client(verify=_context(pki["ca"].cert, pki["stranger"])) as client,
        ):
            client.get("/v1.0/components")
