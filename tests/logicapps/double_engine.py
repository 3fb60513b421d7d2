"""The run engine of the ARM double: Logic Apps definitions, expressions, runs and their actions.

A small, faithful-enough model of the Logic Apps (Consumption) runtime, enough
for the adapter's tests: a manual ``Request`` trigger (with its optional
``runtimeConfiguration.concurrency.runs`` limit, which queues runs as
``Waiting``), the actions ``Compose``, ``Response``, ``Wait``, ``HttpWebhook``
(subscribe, wait for the callback, unsubscribe) and ``Terminate``, ``runAfter``
dependencies, definition ``outputs`` and a tiny expression language
(``@triggerBody()``, ``@body('x')``, ``@{listCallbackUrl()}``, ...).

Everything here runs in the double's threads; one condition variable guards the
whole state, so the HTTP handlers and the run threads never see half an update.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .double_expressions import (
    UNITS,
    DefinitionError,
    ExpressionError,
    Scope,
    duration_seconds,
    now_ticks,
    parse_template,
    parse_ticks,
)

SUPPORTED_ACTIONS = ("Compose", "Response", "Wait", "HttpWebhook", "Terminate")
ACTION_STATUSES = ("Succeeded", "Failed", "Skipped", "TimedOut", "Cancelled")
TERMINAL_RUN_STATUSES = frozenset({"Succeeded", "Failed", "Cancelled", "TimedOut", "Aborted", "Skipped"})
_EPOCH_TICKS = 621355968000000000  # .NET ticks at 1970-01-01, as Logic Apps' run ids count them
_MAX_TICKS = 3155378975999999999


# -- resources -------------------------------------------------------------------------------


@dataclass
class Content:
    """A content link's document (trigger outputs, action inputs and outputs)."""

    id: str
    sig: str
    value: Any


@dataclass
class Workflow:
    """One Logic App (a Consumption workflow) and its versions."""

    subscription: str
    group: str
    name: str
    location: str
    system_id: str
    created: int
    changed: int
    version: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    tags: dict[str, str]
    state: str = "Enabled"
    versions: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    trigger_sigs: dict[str, str] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    histories: dict[str, list[TriggerHistory]] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.group}"
            f"/providers/Microsoft.Logic/workflows/{self.name}"
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subscription.lower(), self.group.lower(), self.name.lower())

    def trigger(self, name: str) -> dict[str, Any] | None:
        return (self.definition.get("triggers") or {}).get(name)


@dataclass
class ActionRun:
    """One action of one run."""

    name: str
    type: str
    status: str = "Running"
    start: int | None = None
    end: int | None = None
    code: str | None = None
    error: dict[str, Any] | None = None
    inputs: Content | None = None
    outputs_content: Content | None = None
    outputs: Any = None
    tracking_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    callback_sig: str | None = None
    callback: Any = None
    called_back: bool = False


@dataclass
class Run:
    """One workflow run."""

    workflow: Workflow
    name: str
    version: str
    definition: dict[str, Any]
    trigger_name: str
    trigger_outputs: dict[str, Any]
    trigger_content: Content
    tracking_id: str
    correlation_id: str
    created: int
    status: str = "Waiting"
    end: int | None = None
    code: str | None = None
    error: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, ActionRun] = field(default_factory=dict)
    response: dict[str, Any] | None = None
    cancelled: bool = False

    @property
    def resource_id(self) -> str:
        return f"{self.workflow.resource_id}/runs/{self.name}"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


@dataclass
class TriggerHistory:
    """One firing of a trigger; its name is the run's name, as in Logic Apps."""

    name: str
    trigger_name: str
    start: int
    end: int
    status: str
    run: Run
    tracking_id: str


# -- definitions -----------------------------------------------------------------------------


def check_definition(definition: Any) -> None:
    """Refuse what Logic Apps (or this double) would refuse at save time."""
    if not isinstance(definition, dict):
        raise DefinitionError("the workflow definition must be a JSON object")
    triggers = definition.get("triggers") or {}
    actions = definition.get("actions") or {}
    if not isinstance(triggers, dict) or not isinstance(actions, dict):
        raise DefinitionError("'triggers' and 'actions' must be objects")
    for name, trigger in triggers.items():
        if not isinstance(trigger, dict) or trigger.get("type") != "Request":
            raise DefinitionError(f"trigger '{name}': the ARM double supports only 'Request' triggers")
    for name, action in actions.items():
        if not isinstance(action, dict):
            raise DefinitionError(f"action '{name}' must be an object")
        kind = action.get("type")
        if kind not in SUPPORTED_ACTIONS:
            raise DefinitionError(
                f"action '{name}' has type '{kind}'; the ARM double supports {', '.join(SUPPORTED_ACTIONS)}"
            )
        for dependency, statuses in (action.get("runAfter") or {}).items():
            if dependency not in actions:
                raise DefinitionError(f"action '{name}' runs after '{dependency}', which does not exist")
            bad = [s for s in statuses if s not in ACTION_STATUSES]
            if bad:
                raise DefinitionError(f"action '{name}': runAfter statuses {bad} are not valid")
        if kind == "HttpWebhook" and "uri" not in ((action.get("inputs") or {}).get("subscribe") or {}):
            raise DefinitionError(f"HttpWebhook action '{name}' needs inputs.subscribe.uri")
        timeout = (action.get("limit") or {}).get("timeout")
        if timeout is not None:
            duration_seconds(timeout)
        parse_template(action.get("inputs"))
    parse_template(definition.get("outputs"))
    _order(actions)


def _order(actions: dict[str, Any]) -> list[str]:
    """The actions in an order that respects runAfter; a cycle is a definition error."""
    done: list[str] = []
    pending = dict(actions)
    while pending:
        ready = sorted(n for n, a in pending.items() if all(d in done for d in (a.get("runAfter") or {})))
        if not ready:
            raise DefinitionError(f"the actions {sorted(pending)} depend on each other in a cycle")
        for name in ready:
            done.append(name)
            del pending[name]
    return done


# -- the engine ------------------------------------------------------------------------------


class Engine:
    """Runs runs: one thread each, all state under one condition variable."""

    def __init__(
        self,
        base_url: Callable[[], str],
        store_content: Callable[[Any], Content],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.cond = threading.Condition()
        self.base_url = base_url
        self.store_content = store_content
        self.ssl_context = ssl_context
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self._counter = 0

    # run ids decrease over time, as Logic Apps' do: "08585...CU12"
    def new_run_name(self) -> str:
        with self.cond:
            self._counter += 1
            counter = self._counter
        ticks = _MAX_TICKS - (now_ticks() + _EPOCH_TICKS)
        return f"{ticks:020d}{(uuid.uuid4().int % 1000):03d}{counter % 100000:05d}CU{counter % 100:02d}"

    def start(self, run: Run) -> None:
        """Run ``run`` in its own thread (queued as Waiting behind the trigger's concurrency limit)."""
        thread = threading.Thread(target=self._execute, args=(run,), name=f"run-{run.name}", daemon=True)
        with self.cond:
            self.threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """End every run thread (the double is shutting down)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout=5)

    def cancel(self, run: Run) -> bool:
        """Cancel a run that has not finished; False when it had."""
        with self.cond:
            if run.finished:
                return False
            run.cancelled = True
            now = now_ticks()
            for action in run.actions.values():
                if action.end is None:
                    action.status, action.end, action.code = "Cancelled", now, "Cancelled"
            self._finish(run, "Cancelled", code="Cancelled")
            self.cond.notify_all()
        self._unsubscribe_all(run)
        return True

    def callback(self, run: Run, action_name: str, body: Any, headers: dict[str, str]) -> str:
        """An HttpWebhook callback: "ok", "not-waiting" (already called back or finished) or "unknown"."""
        with self.cond:
            action = run.actions.get(action_name)
            if action is None or action.type != "HttpWebhook":
                return "unknown"
            if action.called_back or action.status not in ("Running", "Waiting"):
                return "not-waiting"
            action.called_back = True
            action.callback = {"headers": headers, "body": body}
            self.cond.notify_all()
        return "ok"

    # -- inside the run thread -------------------------------------------------------------

    def _wait(self, run: Run, until: float, predicate: Callable[[], bool] = lambda: False) -> bool:
        """Wait (holding the lock) until ``predicate`` holds, the run is cancelled, or ``until``."""
        while not (predicate() or run.cancelled or self.stopping):
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            self.cond.wait(min(remaining, 3600.0))
        return predicate()

    def _execute(self, run: Run) -> None:
        with self.cond:
            limit = self._concurrency(run)
            self._wait(run, float("inf"), lambda: self._running_count(run) < limit)
            if run.cancelled or self.stopping:
                return
            run.status = "Running"
            self.cond.notify_all()
        actions = run.definition.get("actions") or {}
        for name in _order(actions):
            with self.cond:
                if run.finished or self.stopping:
                    return
                action = actions[name]
                allowed = action.get("runAfter") or {}
                ok = all(run.actions[d].status in (s or ["Succeeded"]) for d, s in allowed.items())
                record = ActionRun(name=name, type=action["type"], start=now_ticks())
                run.actions[name] = record
                if not ok:
                    record.status, record.end, record.code = "Skipped", record.start, "ActionSkipped"
                    record.error = {
                        "code": "ActionConditionFailed",
                        "message": f"The execution of template action '{name}' is skipped: the 'runAfter' "
                        "condition was not met.",
                    }
                    continue
            self._run_action(run, record, action)
            if run.finished or self.stopping:
                return
        with self.cond:
            if not run.finished:
                self._complete(run)

    def _concurrency(self, run: Run) -> float:
        trigger = run.workflow.trigger(run.trigger_name) or {}
        runs = ((trigger.get("runtimeConfiguration") or {}).get("concurrency") or {}).get("runs")
        return float(runs) if runs else float("inf")

    def _running_count(self, run: Run) -> int:
        return sum(1 for other in run.workflow.runs.values() if other.status == "Running")

    def _run_action(self, run: Run, record: ActionRun, action: dict[str, Any]) -> None:
        kind = action["type"]
        timeout = (action.get("limit") or {}).get("timeout")
        deadline = time.monotonic() + (duration_seconds(timeout) if timeout else 86400 * 90)
        try:
            if kind == "HttpWebhook":
                self._webhook(run, record, action, deadline)
                return
            with self.cond:
                inputs = Scope(run).evaluate(action.get("inputs"))
                record.inputs = self.store_content(inputs)
            if kind == "Compose":
                self._succeed(run, record, inputs)
            elif kind == "Response":
                with self.cond:
                    run.response = {
                        "statusCode": int((inputs or {}).get("statusCode", 200)),
                        "headers": (inputs or {}).get("headers") or {},
                        "body": (inputs or {}).get("body"),
                    }
                self._succeed(
                    run, record, {"statusCode": run.response["statusCode"], "body": run.response["body"]}
                )
            elif kind == "Wait":
                wait_end = time.monotonic() + _wait_seconds(inputs)
                with self.cond:
                    self._wait(run, min(deadline, wait_end))
                    if run.cancelled or self.stopping:
                        return
                if deadline < wait_end:
                    self._fail(run, record, "TimedOut", "ActionTimedOut", "The action timed out.")
                    return
                self._succeed(run, record, None)
            elif kind == "Terminate":
                self._terminate(run, record, inputs or {})
        except ExpressionError as exc:
            self._fail(
                run,
                record,
                "Failed",
                "InvalidTemplate",
                f"Unable to process template language expressions in action '{record.name}' inputs: {exc}",
            )

    def _webhook(self, run: Run, record: ActionRun, action: dict[str, Any], deadline: float) -> None:
        sig = uuid.uuid4().hex
        callback_url = (
            f"{self.base_url()}/workflows/{run.workflow.system_id}/runs/{run.name}/actions/{record.name}/run"
            f"?api-version=2016-06-01&sp=%2Fruns%2F{run.name}%2Factions%2F{record.name}%2Frun&sv=1.0&sig={sig}"
        )
        with self.cond:
            record.callback_sig = sig
            inputs = Scope(run, callback_url).evaluate(action.get("inputs") or {})
        subscribe = inputs.get("subscribe") or {}
        problem = self._send(subscribe)
        with self.cond:
            record.inputs = self.store_content(inputs)
            if run.cancelled or self.stopping:
                return
            if problem is not None:
                self._fail(run, record, "Failed", "WebhookSubscribeFailed", problem)
                return
            record.status = "Waiting"
            self.cond.notify_all()
            called = self._wait(run, deadline, lambda: record.called_back)
            if run.cancelled or self.stopping:
                return
            if not called:
                record.status = "TimedOut"
        if not called:
            self._send(inputs.get("unsubscribe") or {})
            self._fail(run, record, "TimedOut", "ActionTimedOut", "The webhook was not called back in time.")
            return
        self._succeed(run, record, record.callback)

    def _send(self, request: dict[str, Any]) -> str | None:
        """Call a subscribe or unsubscribe endpoint; the problem, or None when it answered 2xx."""
        uri = request.get("uri")
        if not uri:
            return None
        body = request.get("body")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(request.get("headers") or {})}
        call = urllib.request.Request(uri, data=data, headers=headers, method=request.get("method", "POST"))
        context = self.ssl_context if uri.startswith("https:") else None
        try:
            with urllib.request.urlopen(call, timeout=10, context=context) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            return f"the subscribe endpoint answered {exc.code}"
        except OSError as exc:
            return f"the subscribe endpoint could not be reached: {exc}"
        return None

    def _unsubscribe_all(self, run: Run) -> None:
        definition_actions = run.definition.get("actions") or {}
        for record in list(run.actions.values()):
            if record.type == "HttpWebhook" and record.inputs is not None and not record.called_back:
                unsubscribe = (record.inputs.value or {}).get("unsubscribe")
                if unsubscribe and record.name in definition_actions:
                    self._send(unsubscribe)

    def _succeed(self, run: Run, record: ActionRun, outputs: Any) -> None:
        with self.cond:
            if run.finished:
                return
            record.status, record.end, record.code = "Succeeded", now_ticks(), "OK"
            record.outputs = outputs
            if outputs is not None:
                record.outputs_content = self.store_content(outputs)
            self.cond.notify_all()

    def _fail(self, run: Run, record: ActionRun, status: str, code: str, message: str) -> None:
        with self.cond:
            if run.finished:
                return
            record.status, record.end, record.code = status, now_ticks(), code
            record.error = {"code": code, "message": message}
            self.cond.notify_all()

    def _terminate(self, run: Run, record: ActionRun, inputs: dict[str, Any]) -> None:
        status = inputs.get("runStatus", "Failed")
        with self.cond:
            record.status, record.end, record.code = "Succeeded", now_ticks(), "OK"
            now = record.end
            for other in run.actions.values():
                if other.end is None:
                    other.status, other.end, other.code = "Cancelled", now, "Cancelled"
            error = inputs.get("runError") if status == "Failed" else None
            self._finish(run, status, code="Terminated", error=error)
        self._unsubscribe_all(run)

    def _complete(self, run: Run) -> None:
        """All actions have run: the run fails if a failure was not handled by a later action."""
        handled = {
            dependency
            for action in (run.definition.get("actions") or {}).values()
            for dependency, statuses in (action.get("runAfter") or {}).items()
            if set(statuses) & {"Failed", "TimedOut"}
        }
        failed = [
            a for a in run.actions.values() if a.status in ("Failed", "TimedOut") and a.name not in handled
        ]
        if failed:
            timed_out = all(a.status == "TimedOut" for a in failed)
            self._finish(
                run,
                "Failed",
                code="ActionFailed",
                error={"code": "ActionFailed", "message": "An action failed. No dependent actions succeeded."}
                if not timed_out
                else {"code": "ActionTimedOut", "message": "An action timed out."},
            )
        else:
            self._finish(run, "Succeeded", code="OK")

    def _finish(self, run: Run, status: str, *, code: str, error: Any = None) -> None:
        """Called with the lock held: the run's final status and its definition outputs."""
        run.status, run.end, run.code, run.error = status, now_ticks(), code, error
        scope = Scope(run)
        for name, spec in (run.definition.get("outputs") or {}).items():
            try:
                run.outputs[name] = {
                    "type": spec.get("type", "Object"),
                    "value": scope.evaluate(spec.get("value")),
                }
            except ExpressionError as exc:
                run.outputs[name] = {
                    "type": spec.get("type", "Object"),
                    "error": {"code": "InvalidTemplate", "message": str(exc)},
                }
        self.cond.notify_all()


def _wait_seconds(inputs: Any) -> float:
    if not isinstance(inputs, dict):
        raise ExpressionError("a Wait action needs inputs.interval or inputs.until")
    if "interval" in inputs:
        interval = inputs["interval"]
        unit = UNITS.get(interval.get("unit", ""))
        if unit is None:
            raise ExpressionError(f"interval unit '{interval.get('unit')}' is not one of {', '.join(UNITS)}")
        return float(interval.get("count", 0)) * unit
    if "until" in inputs:
        target = parse_ticks(str(inputs["until"]["timestamp"]))
        return max(0.0, (target - now_ticks()) / 10_000_000)
    raise ExpressionError("a Wait action needs inputs.interval or inputs.until")
