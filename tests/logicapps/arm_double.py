"""A local HTTP double of the Microsoft.Logic ARM REST API (2019-05-01), for the real Azure SDK.

No Logic Apps engine runs offline, so the adapter's tests point the real
``azure-mgmt-logic`` client at this server on a loopback port. It serves:

- the ARM resources under ``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Logic``:
  workflows (PUT, GET, DELETE, list, enable, disable, versions), triggers
  (get, list, ``listCallbackUrl``, ``run``), trigger histories (list, get,
  ``resubmit``), runs (list with ``$filter`` and ``$top`` and ``nextLink`` paging,
  get, ``cancel``) and run actions (list, get), in the 2019-05-01 JSON shapes;
  each call needs a bearer token the double issued;
- the data plane Logic Apps puts on other hosts: the signed trigger callback
  URL (POST the input; 202, or the Response action's answer), the HTTP Webhook
  callback URLs and the content links (trigger outputs, action inputs and outputs);
- a Microsoft Entra ID token endpoint (``/{tenant}/oauth2/v2.0/token``, client
  credentials), so azure-identity's ClientSecretCredential can get a token here;
- ``/_double/sink``: an endpoint that accepts the webhooks' subscribe calls.

It serves HTTPS with a certificate signed by a CA it makes with ``cryptography``
(``ca_file`` is the PEM to trust), or plain HTTP when asked. Runs execute in
:mod:`double_engine`. Error codes the real service's documentation does not
pin down are the double's choice, marked "double's choice" below.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from .arm_shapes import (
    API_VERSION,
    HttpError,
    action_json,
    history_json,
    page_of,
    run_filter,
    run_json,
    trigger_json,
    workflow_json,
)
from .double_engine import Content, Engine, Run, TriggerHistory, Workflow, check_definition
from .double_expressions import DefinitionError, iso, now_ticks
from .tls import make_certificates

__all__ = ["ArmDouble", "make_certificates"]

RESPONSE_TIMEOUT = 120.0
"""Seconds the trigger callback waits for a Response action (Logic Apps' limit)."""

_PROVIDER = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Logic"
_WF = _PROVIDER + r"/workflows/(?P<wf>[^/]+)"


# -- the double ------------------------------------------------------------------------------


class ArmDouble:
    """The server: start it, create Logic Apps through the SDK, point the adapter at ``base_url``."""

    def __init__(self, certificates: tuple[Path, Path, Path] | None = None) -> None:
        self.certificates = certificates
        self.ca_file: Path | None = certificates[0] if certificates else None
        self.workflows: dict[tuple[str, str, str], Workflow] = {}
        self.contents: dict[str, Content] = {}
        self.tokens: set[str] = set()
        self.apps: dict[tuple[str, str], str] = {}
        self.sink: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        client_context = None
        if self.ca_file is not None:
            client_context = ssl.create_default_context(cafile=str(self.ca_file))
        self.engine = Engine(lambda: self.base_url, self._store, client_context)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life ------------------------------------------------------------------------------

    def start(self) -> ArmDouble:
        """Listen on a free loopback port and serve in a background thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        if self.certificates is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.certificates[1]), str(self.certificates[2]))
            # The handshake happens in the request thread, so a slow client never blocks accept().
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="arm-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end the run threads."""
        self.engine.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ArmDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT`` (or http): the ARM endpoint, the data plane and the authority."""
        assert self._server is not None, "the double is not started"
        scheme = "https" if self.certificates else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    # -- credentials -----------------------------------------------------------------------

    def issue_token(self) -> str:
        """A bearer token the ARM routes accept (for a static test credential)."""
        token = "double." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    def register_app(self, tenant: str, client_id: str, secret: str) -> None:
        """A service principal whose client-credentials requests get a token."""
        self.apps[(tenant.lower(), client_id.lower())] = secret

    # -- helpers used by the engine and the handler ----------------------------------------

    def _store(self, value: Any) -> Content:
        content = Content(id=uuid.uuid4().hex, sig=secrets.token_urlsafe(16), value=value)
        with self.engine.cond:
            self.contents[content.id] = content
        return content

    def content_link(self, content: Content | None) -> dict[str, Any] | None:
        if content is None:
            return None
        data = json.dumps(content.value).encode()
        return {
            "uri": f"{self.base_url}/contents/{content.id}?api-version=2016-06-01&sv=1.0&sig={content.sig}",
            "contentVersion": hashlib.md5(data).hexdigest()[:16],
            "contentSize": len(data),
            "contentHash": {
                "algorithm": "md5",
                "value": base64.b64encode(hashlib.md5(data).digest()).decode(),
            },
        }

    def find_workflow(self, sub: str, rg: str, name: str) -> Workflow:
        workflow = self.workflows.get((sub.lower(), rg.lower(), name.lower()))
        if workflow is None:
            raise HttpError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Logic/workflows/{name}' under resource group '{rg}' was not found.",
            )
        return workflow

    def by_system_id(self, system_id: str) -> Workflow:
        for workflow in self.workflows.values():
            if workflow.system_id == system_id:
                return workflow
        raise HttpError(404, "WorkflowNotFound", f"The workflow '{system_id}' could not be found.")


# -- the request handler ---------------------------------------------------------------------

Route = tuple[str, re.Pattern[str], str]
ROUTES: list[Route] = [
    ("GET", re.compile(_PROVIDER + r"/workflows$", re.I), "list_workflows"),
    ("PUT", re.compile(_WF + "$", re.I), "put_workflow"),
    ("GET", re.compile(_WF + "$", re.I), "get_workflow"),
    ("DELETE", re.compile(_WF + "$", re.I), "delete_workflow"),
    ("POST", re.compile(_WF + r"/(?P<verb>enable|disable)$", re.I), "set_state"),
    ("GET", re.compile(_WF + r"/versions/(?P<version>[^/]+)$", re.I), "get_version"),
    ("GET", re.compile(_WF + r"/triggers$", re.I), "list_triggers"),
    ("GET", re.compile(_WF + r"/triggers/(?P<trigger>[^/]+)$", re.I), "get_trigger"),
    ("POST", re.compile(_WF + r"/triggers/(?P<trigger>[^/]+)/listCallbackUrl$", re.I), "callback_url"),
    ("POST", re.compile(_WF + r"/triggers/(?P<trigger>[^/]+)/run$", re.I), "run_trigger"),
    ("GET", re.compile(_WF + r"/triggers/(?P<trigger>[^/]+)/histories$", re.I), "list_histories"),
    (
        "GET",
        re.compile(_WF + r"/triggers/(?P<trigger>[^/]+)/histories/(?P<history>[^/]+)$", re.I),
        "get_history",
    ),
    (
        "POST",
        re.compile(_WF + r"/triggers/(?P<trigger>[^/]+)/histories/(?P<history>[^/]+)/resubmit$", re.I),
        "resubmit",
    ),
    ("GET", re.compile(_WF + r"/runs$", re.I), "list_runs"),
    ("GET", re.compile(_WF + r"/runs/(?P<run>[^/]+)$", re.I), "get_run"),
    ("POST", re.compile(_WF + r"/runs/(?P<run>[^/]+)/cancel$", re.I), "cancel_run"),
    ("GET", re.compile(_WF + r"/runs/(?P<run>[^/]+)/actions$", re.I), "list_actions"),
    ("GET", re.compile(_WF + r"/runs/(?P<run>[^/]+)/actions/(?P<action>[^/]+)$", re.I), "get_action"),
]
DATA_ROUTES: list[Route] = [
    ("POST", re.compile(r"/workflows/(?P<sysid>[^/]+)/triggers/(?P<trigger>[^/]+)/paths/invoke$"), "invoke"),
    (
        "POST",
        re.compile(r"/workflows/(?P<sysid>[^/]+)/runs/(?P<run>[^/]+)/actions/(?P<action>[^/]+)/run$"),
        "webhook",
    ),
    ("GET", re.compile(r"/contents/(?P<content>[0-9a-f]+)$"), "content"),
    ("POST", re.compile(r"/_double/sink(?:/.*)?$"), "sink"),
    ("POST", re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token$"), "token"),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TurnoutArmDouble/1.0"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    @property
    def double(self) -> ArmDouble:
        return self.server.double  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the record instead
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing --------------------------------------------------------------------------

    def _body(self) -> bytes:
        # Read once per request: an error answered before a handler read the body must still
        # consume it, or the next request on this keep-alive connection would start inside it.
        if self._raw is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._raw = self.rfile.read(length) if length else b""
        return self._raw

    def _json_body(self) -> Any:
        raw = self._body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise HttpError(400, "InvalidRequestContent", "The request content is not valid JSON.") from None

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self._raw: bytes | None = None
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.double.requests.append((method, parts.path))
        try:
            for routes, arm in ((ROUTES, True), (DATA_ROUTES, False)):
                for verb, pattern, handler in routes:
                    match = pattern.fullmatch(parts.path)
                    if match and verb == method:
                        if arm:
                            self._check_arm()
                        getattr(self, "h_" + handler)(**match.groupdict())
                        return
            raise HttpError(404, "NotFound", f"No route for {method} {parts.path} in the ARM double.")
        except HttpError as exc:
            try:
                self._body()
            except OSError:
                self.close_connection = True
            self._send(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _check_arm(self) -> None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.double.tokens:
            raise HttpError(
                401,
                "InvalidAuthenticationToken",
                "The access token is missing or invalid (the ARM double accepts only the tokens it issued).",
            )
        if self.query.get("api-version") != API_VERSION:
            raise HttpError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{self.query.get('api-version')}' is invalid; the double serves "
                f"'{API_VERSION}'.",
            )

    def _workflow(self, sub: str, rg: str, wf: str) -> Workflow:
        return self.double.find_workflow(sub, rg, wf)

    def _run(self, workflow: Workflow, run: str) -> Run:
        found = workflow.runs.get(run)
        if found is None:
            raise HttpError(404, "WorkflowRunNotFound", f"The workflow run '{run}' could not be found.")
        return found

    # -- workflows -------------------------------------------------------------------------

    def h_list_workflows(self, sub: str, rg: str) -> None:
        with self.double.engine.cond:
            items = sorted(
                (w for w in self.double.workflows.values() if w.key[:2] == (sub.lower(), rg.lower())),
                key=lambda w: w.name.lower(),
            )
            page, next_link = page_of(
                self.double, urlsplit(self.path).path, items, lambda w: w.name, self.query
            )
            body = {"value": [workflow_json(self.double, w) for w in page]}
        if next_link:
            body["nextLink"] = next_link
        self._send(200, body)

    def h_put_workflow(self, sub: str, rg: str, wf: str) -> None:
        body = self._json_body() or {}
        properties = body.get("properties") or {}
        definition = properties.get("definition")
        if not re.fullmatch(r"[-\w.()]{1,80}", wf):
            raise HttpError(400, "InvalidResourceName", f"The workflow name '{wf}' is not valid.")
        if not body.get("location"):
            raise HttpError(400, "LocationRequired", "The location property is required for this definition.")
        try:
            check_definition(definition)
        except DefinitionError as exc:
            raise HttpError(400, "InvalidTemplate", f"The template validation failed: {exc}") from None
        now = now_ticks()
        version = f"{(3155378975999999999 - now):020d}"[:20]
        with self.double.engine.cond:
            existing = self.double.workflows.get((sub.lower(), rg.lower(), wf.lower()))
            if existing is None:
                workflow = Workflow(
                    subscription=sub,
                    group=rg,
                    name=wf,
                    location=body["location"],
                    system_id=uuid.uuid4().hex,
                    created=now,
                    changed=now,
                    version=version,
                    definition=definition,
                    parameters=properties.get("parameters") or {},
                    tags=body.get("tags") or {},
                    state=properties.get("state") or "Enabled",
                )
                self.double.workflows[workflow.key] = workflow
                status = 201
            else:
                workflow = existing
                workflow.definition, workflow.changed, workflow.version = definition, now, version
                workflow.parameters = properties.get("parameters") or {}
                workflow.tags = body.get("tags") or {}
                workflow.state = properties.get("state") or workflow.state
                status = 200
            workflow.versions[version] = (now, definition)
            for trigger in definition.get("triggers") or {}:
                workflow.trigger_sigs.setdefault(trigger, secrets.token_urlsafe(24))
            answer = workflow_json(self.double, workflow)
        self._send(status, answer)

    def h_get_workflow(self, sub: str, rg: str, wf: str) -> None:
        with self.double.engine.cond:
            answer = workflow_json(self.double, self._workflow(sub, rg, wf))
        self._send(200, answer)

    def h_delete_workflow(self, sub: str, rg: str, wf: str) -> None:
        with self.double.engine.cond:
            workflow = self.double.workflows.pop((sub.lower(), rg.lower(), wf.lower()), None)
        if workflow is None:
            self._send(204)
            return
        for run in list(workflow.runs.values()):
            self.double.engine.cancel(run)
        self._send(200)

    def h_set_state(self, sub: str, rg: str, wf: str, verb: str) -> None:
        with self.double.engine.cond:
            self._workflow(sub, rg, wf).state = "Enabled" if verb.lower() == "enable" else "Disabled"
        self._send(200)

    def h_get_version(self, sub: str, rg: str, wf: str, version: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            if version not in workflow.versions:
                raise HttpError(
                    404, "WorkflowVersionNotFound", f"The workflow version '{version}' was not found."
                )
            created, definition = workflow.versions[version]
            answer = {
                "id": f"{workflow.resource_id}/versions/{version}",
                "name": version,
                "type": "Microsoft.Logic/workflows/versions",
                "location": workflow.location,
                "properties": {
                    "createdTime": iso(created),
                    "changedTime": iso(created),
                    "state": workflow.state,
                    "version": version,
                    "definition": definition,
                },
            }
        self._send(200, answer)

    # -- triggers --------------------------------------------------------------------------

    def _trigger(self, workflow: Workflow, trigger: str) -> dict[str, Any]:
        found = workflow.trigger(trigger)
        if found is None:
            raise HttpError(
                404, "WorkflowTriggerNotFound", f"The workflow '{workflow.name}' has no trigger '{trigger}'."
            )
        return found

    def h_list_triggers(self, sub: str, rg: str, wf: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            body = {"value": [trigger_json(workflow, n) for n in (workflow.definition.get("triggers") or {})]}
        self._send(200, body)

    def h_get_trigger(self, sub: str, rg: str, wf: str, trigger: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            self._trigger(workflow, trigger)
            answer = trigger_json(workflow, trigger)
        self._send(200, answer)

    def h_callback_url(self, sub: str, rg: str, wf: str, trigger: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            self._trigger(workflow, trigger)
            sig = workflow.trigger_sigs[trigger]
            base_path = (
                f"{self.double.base_url}/workflows/{workflow.system_id}/triggers/{trigger}/paths/invoke"
            )
        sp = quote(f"/triggers/{trigger}/run", safe="")
        queries = {"api-version": "2016-10-01", "sp": f"/triggers/{trigger}/run", "sv": "1.0", "sig": sig}
        self._send(
            200,
            {
                "value": f"{base_path}?api-version=2016-10-01&sp={sp}&sv=1.0&sig={sig}",
                "method": "POST",
                "basePath": base_path,
                "queries": queries,
            },
        )

    def h_run_trigger(self, sub: str, rg: str, wf: str, trigger: str) -> None:
        # triggers.run fires the trigger with no input (a Request trigger gets an empty body).
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            self._trigger(workflow, trigger)
        run = self._fire(workflow, trigger, None, {})
        self._send(202, None, {"x-ms-workflow-run-id": run.name})  # the header is the double's choice

    def h_list_histories(self, sub: str, rg: str, wf: str, trigger: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            self._trigger(workflow, trigger)
            items = list(reversed(workflow.histories.get(trigger, [])))
            page, next_link = page_of(
                self.double, urlsplit(self.path).path, items, lambda h: h.name, self.query
            )
            body: dict[str, Any] = {"value": [history_json(self.double, workflow, h) for h in page]}
        if next_link:
            body["nextLink"] = next_link
        self._send(200, body)

    def _history(self, workflow: Workflow, trigger: str, name: str) -> TriggerHistory:
        for history in workflow.histories.get(trigger, []):
            if history.name == name:
                return history
        raise HttpError(404, "WorkflowTriggerHistoryNotFound", f"The trigger history '{name}' was not found.")

    def h_get_history(self, sub: str, rg: str, wf: str, trigger: str, history: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            answer = history_json(self.double, workflow, self._history(workflow, trigger, history))
        self._send(200, answer)

    def h_resubmit(self, sub: str, rg: str, wf: str, trigger: str, history: str) -> None:
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            original = self._history(workflow, trigger, history).run
            outputs = original.trigger_outputs
        # The resubmitted run replays the trigger's outputs, headers included (so the client
        # tracking id sent with the original request comes back). 202 and nothing else, as specified.
        self._fire(workflow, trigger, outputs.get("body"), dict(outputs.get("headers") or {}))
        self._send(202)

    # -- runs ------------------------------------------------------------------------------

    def h_list_runs(self, sub: str, rg: str, wf: str) -> None:
        keep = run_filter(self.query.get("$filter"))
        with self.double.engine.cond:
            workflow = self._workflow(sub, rg, wf)
            items = sorted((r for r in workflow.runs.values() if keep(r)), key=lambda r: (-r.created, r.name))
            page, next_link = page_of(
                self.double, urlsplit(self.path).path, items, lambda r: r.name, self.query
            )
            body: dict[str, Any] = {"value": [run_json(self.double, r) for r in page]}
        if next_link:
            body["nextLink"] = next_link
        self._send(200, body)

    def h_get_run(self, sub: str, rg: str, wf: str, run: str) -> None:
        with self.double.engine.cond:
            answer = run_json(self.double, self._run(self._workflow(sub, rg, wf), run))
        self._send(200, answer)

    def h_cancel_run(self, sub: str, rg: str, wf: str, run: str) -> None:
        with self.double.engine.cond:
            found = self._run(self._workflow(sub, rg, wf), run)
        if not self.double.engine.cancel(found):
            raise HttpError(
                409,
                "WorkflowRunNotRunning",  # double's choice
                f"The workflow run '{run}' cannot be cancelled: it has already finished with status "
                f"'{found.status}'.",
            )
        self._send(200)

    def h_list_actions(self, sub: str, rg: str, wf: str, run: str) -> None:
        with self.double.engine.cond:
            found = self._run(self._workflow(sub, rg, wf), run)
            items = list(found.actions)
            page, next_link = page_of(self.double, urlsplit(self.path).path, items, lambda n: n, self.query)
            body: dict[str, Any] = {"value": [action_json(self.double, found, n) for n in page]}
        if next_link:
            body["nextLink"] = next_link
        self._send(200, body)

    def h_get_action(self, sub: str, rg: str, wf: str, run: str, action: str) -> None:
        with self.double.engine.cond:
            found = self._run(self._workflow(sub, rg, wf), run)
            if action not in found.actions:
                raise HttpError(
                    404,
                    "WorkflowRunActionNotFound",
                    f"The action '{action}' of run '{run}' could not be found.",
                )
            answer = action_json(self.double, found, action)
        self._send(200, answer)

    # -- the data plane --------------------------------------------------------------------

    def _fire(self, workflow: Workflow, trigger: str, body: Any, headers: dict[str, str]) -> Run:
        """Start a run of ``workflow`` from its trigger, with the request's body and headers."""
        engine = self.double.engine
        name = engine.new_run_name()
        tracking = (
            next((v for k, v in headers.items() if k.lower() == "x-ms-client-tracking-id"), None) or name
        )
        outputs: dict[str, Any] = {"headers": headers}
        if body is not None:
            outputs["body"] = body
        with engine.cond:
            run = Run(
                workflow=workflow,
                name=name,
                version=workflow.version,
                definition=workflow.definition,
                trigger_name=trigger,
                trigger_outputs=outputs,
                trigger_content=self.double._store(outputs),
                tracking_id=tracking,
                correlation_id=str(uuid.uuid4()),
                created=now_ticks(),
            )
            workflow.runs[name] = run
            workflow.histories.setdefault(trigger, []).append(
                TriggerHistory(name, trigger, run.created, run.created, "Succeeded", run, tracking)
            )
        engine.start(run)
        return run

    def _check_sig(self, expected: str | None) -> None:
        if expected is None or not secrets.compare_digest(self.query.get("sig", ""), expected):
            raise HttpError(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided callback URL signature is not valid.",
            )

    def h_invoke(self, sysid: str, trigger: str) -> None:
        engine = self.double.engine
        with engine.cond:
            workflow = self.double.by_system_id(sysid)
            self._check_sig(workflow.trigger_sigs.get(trigger))
            if workflow.trigger(trigger) is None:
                raise HttpError(404, "WorkflowTriggerNotFound", f"The trigger '{trigger}' was not found.")
            if workflow.state != "Enabled":
                raise HttpError(
                    409,
                    "WorkflowDisabled",
                    f"The workflow '{workflow.name}' is disabled and cannot be triggered.",
                )
        raw = self._body()
        body: Any = None
        if raw:
            if "json" in (self.headers.get("Content-Type") or "application/json"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise HttpError(
                        400, "InvalidRequestContent", "The request body is not valid JSON."
                    ) from None
            else:
                body = raw.decode("utf-8", "replace")
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "content-length")
        }
        run = self._fire(workflow, trigger, body, headers)
        answer = {
            "x-ms-workflow-run-id": run.name,
            "x-ms-correlation-id": run.correlation_id,
            "x-ms-client-tracking-id": run.tracking_id,
            "x-ms-trigger-history-name": run.name,
            "x-ms-workflow-version": run.version,
            "x-ms-workflow-name": workflow.system_id,
            "x-ms-workflow-system-id": f"/workflows/{workflow.system_id}",
        }
        has_response = any(
            a.get("type") == "Response" for a in (run.definition.get("actions") or {}).values()
        )
        if not has_response:
            self._send(202, None, answer)
            return
        with engine.cond:
            engine._wait(
                run, _monotonic() + RESPONSE_TIMEOUT, lambda: run.response is not None or run.finished
            )
            response = run.response
        if response is None:
            raise HttpError(
                502,
                "NoResponse",
                "The server did not receive a response from an upstream server.",
                answer,
            )
        self._send(response["statusCode"], response["body"], {**response["headers"], **answer})

    def h_webhook(self, sysid: str, run: str, action: str) -> None:
        engine = self.double.engine
        with engine.cond:
            workflow = self.double.by_system_id(sysid)
            found = workflow.runs.get(run)
            record = found.actions.get(action) if found else None
            self._check_sig(record.callback_sig if record else None)
        raw = self._body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "content-length")
        }
        assert found is not None
        outcome = engine.callback(found, action, body, headers)
        if outcome != "ok":
            raise HttpError(
                409,
                "WorkflowRunActionNotWaiting",  # double's choice
                f"The action '{action}' of run '{run}' is not waiting for a callback (status "
                f"'{found.actions[action].status}').",
            )
        self._send(200)

    def h_content(self, content: str) -> None:
        with self.double.engine.cond:
            found = self.double.contents.get(content)
        self._check_sig(found.sig if found else None)
        assert found is not None
        self._send(200, found.value)

    def h_sink(self) -> None:
        body = self._json_body()
        with self.double.engine.cond:
            self.double.sink.append({"path": urlsplit(self.path).path, "body": body})
        self._send(200, {"received": True})

    def h_token(self, tenant: str) -> None:
        form = {k: v[-1] for k, v in parse_qs(self._body().decode()).items()}
        secret = self.double.apps.get((tenant.lower(), form.get("client_id", "").lower()))
        if (
            form.get("grant_type") != "client_credentials"
            or secret is None
            or form.get("client_secret") != secret
        ):
            self._send(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. (ARM double)",
                    "error_codes": [7000215],
                },
            )
            return
        self._send(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": self.double.issue_token(),
            },
        )


def _monotonic() -> float:
    import time

    return time.monotonic()
