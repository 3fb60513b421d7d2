"""``turnout serve`` as users run it: a process that refuses bad configuration and drains on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from turnout._cli import main

from .conftest import FLOWS, ROOT, ServeProcess, new_id, write_components

EXAMPLES = ROOT / "examples"


def test_refuses_a_bad_component_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "components"
    bad.mkdir()
    (bad / "orders.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: orders}\n"
        "spec:\n  type: workflow.builtin\n  version: v1\n  metadata:\n"
        "  - {name: maxConcurrentActivityInvocations, value: lots}\n"
    )
    process = ServeProcess("--resources-path", str(bad), cwd=tmp_path)
    assert process.run_to_exit() == 2
    assert "orders.yaml" in process.output
    assert "maxConcurrentActivityInvocations" in process.output
    assert "did not start" in process.output
    assert "Traceback" not in process.output


def serve_in_process(tmp_path: Path, *args: str) -> Result:
    """``turnout serve`` through click in this process: for refusals, which exit before listening."""
    return CliRunner().invoke(main, ["serve", "--http-port", "0", "--working-dir", str(tmp_path), *args])


def test_refuses_an_unknown_type_naming_the_distribution(tmp_path: Path) -> None:
    folder = tmp_path / "components"
    folder.mkdir()
    (folder / "t.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: t}\n"
        "spec: {type: workflow.nosuch, version: v1}\n"
    )
    result = serve_in_process(tmp_path, "--resources-path", str(folder))
    assert result.exit_code == 2
    assert "workflow.nosuch" in result.stderr


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("no_colon", "MODULE:OBJ"),
        ("no_such_module_xyz:wf", "importable module"),
        (f"{FLOWS}:nothing", "no attribute 'nothing'"),
        (f"{FLOWS}:identity", "turnout.Workflows object"),
    ],
)
def test_refuses_bad_workflows(tmp_path: Path, reference: str, fragment: str) -> None:
    result = serve_in_process(tmp_path, "--workflows", reference)
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.output


def test_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    result = serve_in_process(tmp_path, "--tls-cert", str(cert))
    assert result.exit_code == 2
    assert "--tls-key" in result.stderr
    result = serve_in_process(tmp_path, "--tls-cert", str(cert), "--tls-key", str(cert))
    assert result.exit_code == 2
    assert "TLS files" in result.stderr
    result = serve_in_process(tmp_path, "--max-body-size", "lots")
    assert result.exit_code == 2
    assert "not a size" in result.stderr


def test_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_in_process(tmp_path, "--http-port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serves_the_examples_and_drains_on_sigterm(tmp_path: Path) -> None:
    """The README's example: the order workflow with examples/components, then a long poll cut by SIGTERM."""
    args = (
        "--resources-path",
        str(EXAMPLES / "components"),
        "--workflows",
        str(EXAMPLES / "order_workflow.py") + ":wf",
    )
    order = {"order_id": "A1", "customer": "ada", "items": [{"sku": "CUP", "quantity": 2, "unit_price": 3}]}
    with (
        ServeProcess(*args, "--log-level", "debug", cwd=tmp_path) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        assert "components: orders (workflow.builtin)" in server.output
        started = http.post("/v1.0/workflows/orders/process_order/start?instanceID=order-A1", json=order)
        assert started.status_code == 202, started.text
        answers: list[httpx.Response] = []

        def long_poll() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as poller:
                answers.append(poller.get("/v1.0/workflows/orders/order-A1/wait", params={"timeout": 60}))

        poller = threading.Thread(target=long_poll)
        poller.start()
        server.wait_for(r"long-poll wait on orders/order-A1")
        server.signal(signal.SIGTERM)
        poller.join(30)
        assert not poller.is_alive()
        assert server.wait() == 0, server.output
    assert answers[0].status_code == 503
    assert answers[0].json()["errorCode"] == "ERR_SHUTTING_DOWN"
    assert "Traceback" not in server.output

    # The engine stopped cleanly: a new server on the same files carries on with the same instance.
    with ServeProcess(*args, cwd=tmp_path) as again, httpx.Client(base_url=again.url, timeout=30) as http:
        state = http.get(
            "/v1.0/workflows/orders/order-A1/wait",
            params={"until": "RUNNING,COMPLETED,FAILED", "timeout": 20},
        )
        assert state.status_code == 200
        assert state.json()["runtimeStatus"] in ("RUNNING", "COMPLETED")
        http.post("/v1.0/workflows/orders/order-A1/raiseEvent/approved", json="ada")
        done = http.get("/v1.0/workflows/orders/order-A1/wait", params={"timeout": 20}).json()
        assert done["runtimeStatus"] == "COMPLETED", done
        assert json.loads(done["properties"]["dapr.workflow.output"])["status"] == "shipped"


def test_sigint_also_drains_to_exit_0(tmp_path: Path) -> None:
    with ServeProcess("--workflows", f"{FLOWS}:wf", cwd=tmp_path) as server:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/v1.0/healthz").status_code == 204
        server.signal(signal.SIGINT)
        assert server.wait() == 0, server.output


def test_api_token_from_the_environment_stays_out_of_the_output(tmp_path: Path) -> None:
    token = "env-token-" + new_id()
    resources = write_components(tmp_path / "components")
    env = {"DAPR_API_TOKEN": token, "TURNOUT_API_TOKEN": ""}
    with ServeProcess(
        "--resources-path",
        str(resources),
        "--workflows",
        f"{FLOWS}:wf",
        "--log-level",
        "debug",
        cwd=tmp_path,
        env=env,
    ) as server:
        assert "API token required" in server.output
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/v1.0/healthz").status_code == 204
            assert http.get("/v1.0/components").status_code == 401
            assert http.get("/v1.0/components", headers={"dapr-api-token": "bad"}).status_code == 401
            good = http.post("/v1.0/workflows/dapr/echo/start", json=1, headers={"dapr-api-token": token})
            assert good.status_code == 202
        server.signal()
        assert server.wait() == 0
    assert "refused GET /v1.0/components" in server.output
    assert token not in server.output


def test_the_core_imports_without_the_server_extras() -> None:
    blocked = (
        "import sys\nfor name in ('fastapi', 'uvicorn', 'starlette', 'httpx', 'rich'):\n"
        "    sys.modules[name] = None\n"
    )
    code = blocked + "import turnout, turnout._cli\nprint(sorted(turnout._cli.main.commands))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "workflow" in result.stdout

    code = blocked + "from turnout._cli import main\nmain(['serve'])\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "pip install 'turnout[server]'" in result.stderr
    assert "Traceback" not in result.stderr
