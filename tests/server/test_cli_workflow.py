"""``turnout workflow ...`` against a server over HTTP and in-process, with its documented exit statuses."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from turnout._cli import main
from turnout._server._config import ServerConfig
from turnout._server._runner import ServeOptions

from .conftest import FLOWS, TURNOUT, LiveServer, new_id, write_components
from .pki import Authority


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


@pytest.fixture
def remote(live: LiveServer) -> list[str]:
    """The options that point a command at the shared server's built-in component."""
    return ["--address", live.url, "-c", "dapr"]


def started(remote: list[str], name: str, *args: str) -> str:
    result = cli("workflow", "start", name, *args, *remote)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_start_get_wait_and_json_match_the_http_api(remote: list[str], http: httpx.Client) -> None:
    iid = started(remote, "echo", "--input", '{"a": [1, 2]}', "--instance-id", new_id("cli"))
    waited = cli("workflow", "wait", iid, "--timeout", "20", "--json", *remote)
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout) == http.get(f"/v1.0/workflows/dapr/{iid}").json()
    got = cli("workflow", "get", iid, *remote)
    assert got.exit_code == 0
    for text in (iid, "echo", "COMPLETED", '"a": [1, 2]'):
        assert text in got.stdout
    as_json = cli("workflow", "get", iid, "--json", *remote)
    assert json.loads(as_json.stdout) == http.get(f"/v1.0/workflows/dapr/{iid}").json()


def test_start_json_and_inputs(remote: list[str], http: httpx.Client) -> None:
    result = cli("workflow", "start", "echo", "--input", "plain words", "--json", *remote)
    iid = json.loads(result.stdout)["instanceID"]
    body = http.get(f"/v1.0/workflows/dapr/{iid}/wait", params={"timeout": 20}).json()
    assert json.loads(body["properties"]["dapr.workflow.output"]) == "plain words"
    piped = cli("workflow", "start", "echo", "--input-file", "-", *remote, stdin='{"from": "stdin"}')
    body = http.get(f"/v1.0/workflows/dapr/{piped.stdout.strip()}/wait", params={"timeout": 20}).json()
    assert json.loads(body["properties"]["dapr.workflow.input"]) == {"from": "stdin"}


def test_list_and_history(remote: list[str], http: httpx.Client) -> None:
    iid = started(remote, "echo", "--input", "1")
    assert cli("workflow", "wait", iid, *remote).exit_code == 0
    listed = cli(
        "workflow",
        "list",
        "--workflow-name",
        "echo",
        "--status",
        "COMPLETED",
        "--limit",
        "2",
        "--json",
        *remote,
    )
    expected = http.get(
        "/v1.0/workflows/dapr", params={"workflowName": "echo", "status": "COMPLETED", "limit": 2}
    ).json()
    assert json.loads(listed.stdout) == expected
    table = cli("workflow", "list", "--limit", "2", *remote)
    assert table.stdout.split()[:5] == ["INSTANCE", "WORKFLOW", "STATUS", "CREATED", "UPDATED"]
    assert "--page-token" in table.stdout
    events = cli("workflow", "history", iid, "--json", *remote)
    assert json.loads(events.stdout) == http.get(f"/v1.0/workflows/dapr/{iid}/history").json()
    assert "WorkflowCompleted" in cli("workflow", "history", iid, *remote).stdout


def test_commands_on_a_running_instance(remote: list[str]) -> None:
    iid = started(remote, "waiter", "--input", "7")
    assert cli("workflow", "wait", iid, "--until", "RUNNING", *remote).exit_code == 0
    assert cli("workflow", "pause", iid, "--reason", "lunch", *remote).stdout.strip() == f"paused {iid}"
    assert "SUSPENDED" in cli("workflow", "get", iid, *remote).stdout
    assert cli("workflow", "resume", iid, "--json", *remote).stdout.strip() == "{}"
    assert cli("workflow", "raise-event", iid, "go", "--data", '{"ok": true}', *remote).exit_code == 0
    done = cli("workflow", "wait", iid, "--json", *remote)
    assert done.exit_code == 0
    assert json.loads(json.loads(done.stdout)["properties"]["dapr.workflow.output"]) == {
        "input": 7,
        "got": {"ok": True},
    }
    assert cli("workflow", "purge", iid, *remote).stdout.strip() == f"purged {iid}"
    assert cli("workflow", "get", iid, *remote).exit_code == 3


@pytest.mark.parametrize(
    ("workflow", "ending", "status"),
    [("fail", None, 1), ("waiter", "terminate", 1), ("waiter", "cancel", 1)],
)
def test_wait_exits_1_when_the_instance_ends_badly(
    remote: list[str], workflow: str, ending: str | None, status: int
) -> None:
    iid = started(remote, workflow, "--input", '"x"')
    if ending:
        assert cli("workflow", "wait", iid, "--until", "RUNNING", *remote).exit_code == 0
        assert cli("workflow", ending, iid, *remote).exit_code == 0
    result = cli("workflow", "wait", iid, "--timeout", "20", *remote)
    assert result.exit_code == status, result.output
    assert cli("workflow", "wait", iid, "--until", "FAILED,TERMINATED,CANCELED", *remote).exit_code == 0


def test_wait_timeout_exits_4(remote: list[str]) -> None:
    iid = started(remote, "waiter")
    result = cli("workflow", "wait", iid, "--timeout", "0.2", *remote)
    assert result.exit_code == 4
    assert "did not finish within 0.2s" in result.stderr
    cli("workflow", "terminate", iid, *remote)


def test_exit_statuses(live: LiveServer, remote: list[str]) -> None:
    iid = started(remote, "waiter", "--instance-id", new_id())
    cases = [
        (["workflow", "get", "nope-1", *remote], 3, "no workflow instance 'nope-1'"),
        (["workflow", "start", "waiter", "--instance-id", iid, *remote], 5, "already exists"),
        (["workflow", "start", "waiter", "--instance-id", "bad id", *remote], 2, "only letters, digits"),
        (["workflow", "start", "nosuch", *remote], 2, "no workflow named 'nosuch'"),
        (["workflow", "pause", "x", "--address", live.url, "-c", "example"], 6, "does not support 'pause'"),
        (["workflow", "get", "x", "--address", live.url, "-c", "broken"], 9, "error getting workflow 'x'"),
        (
            ["workflow", "get", "x", "--address", live.url, "-c", "orders"],
            2,
            "no workflow component named 'orders'",
        ),
        (["workflow", "get", "x", "--address", live.url], 2, "name one with --component"),
        (["workflow", "list", "--status", "DONE", *remote], 2, "invalid --status 'DONE'"),
        (["workflow", "get", "x", "--address", "http://127.0.0.1:9"], 7, "cannot reach the Turnout server"),
        (["workflow", "get", "x", "--resources-path", ".", "--address", live.url], 2, "choose one"),
    ]
    for args, status, fragment in cases:
        result = cli(*args)
        assert result.exit_code == status, (args, result.output)
        assert fragment in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    cli("workflow", "terminate", iid, *remote)


def test_token(tmp_path: Path) -> None:
    config = ServerConfig(api_token="cli-token")
    with LiveServer(write_components(tmp_path / "c"), tmp_path, config=config) as server:
        refused = cli("workflow", "list", "--address", server.url)
        assert refused.exit_code == 8
        assert "invalid api token" in refused.stderr
        assert cli("workflow", "list", "--address", server.url, "--token", "cli-token").exit_code == 0
        assert (
            cli("workflow", "list", "--address", server.url, env={"DAPR_API_TOKEN": "cli-token"}).exit_code
            == 0
        )


def test_mutual_tls(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "ca")
    server_pair, client_pair = ca.issue("server", server=True), ca.issue("client", server=False)
    options = ServeOptions(tls_cert=server_pair.cert, tls_key=server_pair.key, tls_client_ca=ca.pair.cert)
    with LiveServer(write_components(tmp_path / "c"), tmp_path, options=options) as server:
        tls = ["--address", server.url, "--tls-ca", str(ca.pair.cert)]
        assert cli("workflow", "list", *tls).exit_code == 7
        ok = cli(
            "workflow", "list", *tls, "--tls-cert", str(client_pair.cert), "--tls-key", str(client_pair.key)
        )
        assert ok.exit_code == 0, ok.output


def test_in_process(tmp_path: Path) -> None:
    resources = write_components(tmp_path / "components", builtin_name="local")
    local = ["--resources-path", str(resources), "--workflows", f"{FLOWS}:wf", "--working-dir", str(tmp_path)]
    iid = started(local, "echo", "--input", '"here"')
    waited = cli("workflow", "wait", iid, "--timeout", "20", "--json", *local)
    assert waited.exit_code == 0, waited.output
    assert json.loads(json.loads(waited.stdout)["properties"]["dapr.workflow.output"]) == "here"
    assert (tmp_path / ".turnout" / "local.db").exists()
    assert cli("workflow", "get", "nope", *local).exit_code == 3
    listed = cli("workflow", "list", "--json", *local)
    assert [item["instanceID"] for item in json.loads(listed.stdout)["items"]] == [iid]


def test_live_status_line_on_a_tty(live: LiveServer, http: httpx.Client) -> None:
    """On a terminal, wait redraws one status line (stderr) until the instance finishes."""
    iid = http.post("/v1.0/workflows/dapr/waiter/start", json=1).json()["instanceID"]
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    process = subprocess.Popen(
        [TURNOUT, "workflow", "wait", iid, "--timeout", "30", "--address", live.url, "-c", "dapr"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    screen = bytearray()
    changed = threading.Condition()

    def read_terminal() -> None:  # keeps reading so that the child never blocks on a full terminal
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed its side
                chunk = b""
            with changed:
                screen.extend(chunk)
                changed.notify_all()
            if not chunk:
                return

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    with changed:
        assert changed.wait_for(lambda: b"RUNNING" in screen, 30), bytes(screen)
    assert b"waiting" in screen  # the custom status is shown too
    http.post(f"/v1.0/workflows/dapr/{iid}/raiseEvent/go", json=2)
    out, _ = process.communicate(timeout=30)
    reader.join(30)
    os.close(leader)
    assert process.returncode == 0
    assert b"COMPLETED" in out
