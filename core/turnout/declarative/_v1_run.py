"""DSL 1.0.x, run: a Turnout workflow function that interprets a definition.

The interpreter is ordinary Turnout workflow code: generators that ``yield``
durable tasks (activities for HTTP, OpenAPI and emit; timers for ``wait`` and
retry delays; external events for ``listen``; child workflows for
``run.workflow``) and compute everything else with jq. It reads nothing but
the definition, the input, the task results and ``ctx`` (time and ids from
``ctx.current_utc_datetime`` and ``ctx.new_uuid``), so replaying it over a
history gives the same steps: it runs on any engine that runs Turnout code.

Each task runner is a generator returning ``(raw_output, flow)``; ``flow`` is
None (follow the task's ``then``), ``end`` (stop the workflow gracefully) or,
from ``switch``, the matched case's ``then``. Spec errors travel as
:class:`Fault` and end the instance as :func:`failure_exception` when uncaught.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import turnout
from turnout._version import __version__

from ._definition import Definition, Settings
from ._durations import DurationError, backoff_delay, jittered, parse_duration
from ._effects import EMIT_ACTIVITY, FETCH_ACTIVITY, HTTP_ACTIVITY, authorization_header, callable_by_name
from ._expressions import ExpressionError, evaluate, is_expression, unwrap, variables_in
from ._faults import Fault, failure_exception, fault_from_failure, make_fault, same_type
from ._schemas import document_problem, endpoint_of, resource_uri, source_folder, violation
from ._starts import START_ACTIVITY, fresh_run_id, start_request
from ._v1_drive import interleave, with_deadline
from ._v1_model import entries, escape, task_type
from ._v1_openapi import base_url, find_operation

Steps = Generator[Any, Any, Any]
_UNSET: Any = object()
_TEMPLATE = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class _Scope:
    """What nested tasks inherit: loop and error variables, and a ``for`` loop's ``$input``."""

    variables: dict[str, Any] = field(default_factory=dict)
    loop_input: Any = _UNSET

    def with_variables(self, **extra: Any) -> _Scope:
        return _Scope({**self.variables, **extra}, self.loop_input)


def workflow_function(definition: Definition, settings: Settings) -> Any:
    """The generator function registered under the definition's name."""
    folder = source_folder(definition.source)  # once, here: replays never look at the disk

    def interpret(ctx: turnout.WorkflowContext, input: Any = None) -> Steps:
        return (yield from _Interpreter(ctx, definition, settings, input, folder).run())

    interpret.__name__ = interpret.__qualname__ = f"declarative:{definition.name}"
    interpret.__doc__ = (
        f"Interprets the Serverless Workflow definition '{definition.name}' ({definition.version})."
    )
    return interpret


def _timestamp(moment: datetime) -> dict[str, Any]:
    """The spec's dateTimeDescriptor."""
    seconds = moment.timestamp()
    return {
        "iso8601": moment.isoformat().replace("+00:00", "Z"),
        "epoch": {"seconds": int(seconds), "milliseconds": int(seconds * 1000)},
    }


def _timed_out(limit: timedelta, where: str) -> Fault:
    return Fault(
        make_fault(
            "timeout",
            title="Timed out",
            detail=f"not finished within {limit.total_seconds():g} s",
            instance=where,
        )
    )


def _strip_dollar(name: Any, default: str) -> str:
    text = str(name or default).strip()
    return text[1:] if text.startswith("$") else text


class _Interpreter:
    """One run of one definition in one workflow instance."""

    def __init__(
        self,
        ctx: turnout.WorkflowContext,
        definition: Definition,
        settings: Settings,
        raw: Any,
        folder: Path | None = None,
    ) -> None:
        self.ctx = ctx
        self.document = definition.document
        self.name = definition.name
        self.folder = folder  # where the definition's schema files are (see _schemas)
        self.schemas: dict[str, Any] = {}  # referenced schemas fetched by this run, by URI
        use = self.document.get("use")
        self.use: Mapping[str, Any] = use if isinstance(use, Mapping) else {}
        self.raw_input = raw
        self.context: Any = {}
        self.secrets = dict(settings.secrets)
        self.workflow = {
            "id": ctx.instance_id,
            "definition": self.document,
            "input": raw,
            "startedAt": _timestamp(ctx.current_utc_datetime),
        }
        self.runtime = {"name": "Turnout", "version": __version__, "metadata": {}}

    # -- expressions -----------------------------------------------------------------------------

    def variables(self, scope: _Scope, **extra: Any) -> dict[str, Any]:
        found = {
            "context": self.context,
            "secrets": self.secrets,
            "workflow": self.workflow,
            "runtime": self.runtime,
            "authorization": None,  # a call task with authentication sets it (see _authenticate)
        }
        found.update(scope.variables)
        found.update({k: v for k, v in extra.items() if v is not _UNSET})
        return found

    def eval(self, expression: Any, data: Any, variables: Mapping[str, Any], where: str) -> Any:
        """One expression (bare or ``${ }``); a failure is the spec's expression error."""
        if isinstance(expression, bool) or not isinstance(expression, str):
            return expression
        text = unwrap(expression) or expression
        used = {name: variables[name] for name in variables_in(text) if name in variables}
        try:
            return evaluate(expression, data, used, where=where)
        except ExpressionError as exc:
            raise Fault(
                make_fault(
                    "expression",
                    title="Expression failed",
                    detail=f"{exc.expression!r}: {exc.reason.strip().splitlines()[0] if exc.reason else ''}",
                    instance=where,
                )
            ) from None

    def render(self, value: Any, data: Any, variables: Mapping[str, Any], where: str) -> Any:
        """``value`` with each ``${ }`` string in it evaluated; other values kept as they are."""
        if isinstance(value, str):
            return self.eval(value, data, variables, where) if is_expression(value) else value
        if isinstance(value, Mapping):
            return {k: self.render(v, data, variables, f"{where}/{escape(str(k))}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, data, variables, f"{where}/{i}") for i, v in enumerate(value)]
        return value

    def transform(self, spec: Any, data: Any, variables: Mapping[str, Any], where: str) -> Any:
        """``input.from``, ``output.as``, ``export.as``: a string is jq even without ``${ }``."""
        if isinstance(spec, str):
            return self.eval(spec, data, variables, where)
        return self.render(spec, data, variables, where)

    def _conform(self, holder: Any, value: Any, where: str) -> Steps:
        """Check ``value`` against ``holder.schema``, if any: a validation error when it does not fit."""
        if not (isinstance(holder, Mapping) and "schema" in holder):
            return
        spec = holder["schema"]
        where = f"{where}/schema"
        schema = (
            (yield from self._schema(spec["resource"], where)) if "resource" in spec else spec["document"]
        )
        problem = violation(schema, value)
        if problem is not None:
            raise Fault(
                make_fault("validation", title="Schema validation failed", detail=problem, instance=where)
            )

    def _schema(self, resource: Mapping[str, Any], where: str) -> Steps:
        """A referenced schema, fetched by an activity the first time this run needs it (see _schemas)."""
        try:
            uri = resource_uri(resource, self.folder)  # checked at load time, but the folder may be unknown
        except ValueError as exc:
            raise Fault(
                make_fault("configuration", title="Unusable schema", detail=str(exc), instance=where)
            ) from None
        if uri in self.schemas:
            return self.schemas[uri]
        endpoint = resource["endpoint"]
        request: dict[str, Any] = {"file": uri} if uri.startswith("file:") else {"uri": uri, "headers": {}}
        if "uri" in request and isinstance(endpoint, Mapping) and "authentication" in endpoint:
            variables = self.variables(_Scope())
            self._authenticate(
                request, endpoint["authentication"], None, variables, f"{where}/resource/endpoint"
            )
        about = f"the schema of '{self.name}' at {endpoint_of(resource)!r}"
        try:
            schema = yield from self._activity(FETCH_ACTIVITY, request, where)
        except Fault as exc:
            detail = f"{about} cannot be fetched: {exc.fault.get('detail', exc.fault.get('title'))}"
            raise Fault({**exc.fault, "title": "Schema not available", "detail": detail}) from None
        problem = document_problem(schema)
        if problem is not None:
            raise Fault(
                make_fault(
                    "configuration", title="Unusable schema", detail=f"{about}: {problem}", instance=where
                )
            )
        self.schemas[uri] = schema
        return schema

    def truthy(self, expression: Any, data: Any, variables: Mapping[str, Any], where: str) -> bool:
        result = self.eval(expression, data, variables, where)
        return result is not None and result is not False

    # -- the workflow ----------------------------------------------------------------------------

    def run(self) -> Steps:
        try:
            data = self.raw_input
            input_spec = self.document.get("input")
            base = {"secrets": self.secrets, "workflow": self.workflow, "runtime": self.runtime}
            yield from self._conform(input_spec, data, "/input")
            if isinstance(input_spec, Mapping) and "from" in input_spec:
                data = self.transform(input_spec["from"], data, base, "/input/from")
            steps = self.run_list(self.document["do"], "/do", data, _Scope())
            if "timeout" in self.document:
                limit = self._timeout(self.document["timeout"], data, base, "/timeout")
                steps = with_deadline(self.ctx, steps, limit, _timed_out(limit, "/"))
            output, _ = yield from steps
            output_spec = self.document.get("output")
            if isinstance(output_spec, Mapping) and "as" in output_spec:
                output = self.transform(
                    output_spec["as"], output, {**base, "context": self.context}, "/output/as"
                )
            yield from self._conform(output_spec, output, "/output")
            return output
        except Fault as exc:
            raise failure_exception(exc.fault) from None

    def run_list(self, tasks: Any, path: str, data: Any, scope: _Scope) -> Steps:
        """Run a ``do`` list from its first task, following ``then``; returns ``(output, "end" | None)``."""
        items = entries(tasks)
        index_of = {name: i for i, (name, _) in enumerate(items)}
        i = 0
        while i < len(items):
            name, task = items[i]
            data, then = yield from self.run_task(name, task, f"{path}/{i}/{escape(name)}", data, scope)
            if then == "end":
                return data, "end"
            if then == "exit":
                return data, None
            i = i + 1 if then in (None, "continue") else index_of[then]
        return data, None

    def run_task(self, name: str, task: Mapping[str, Any], path: str, raw: Any, scope: _Scope) -> Steps:
        """One task with its data flow: ``if``, ``input.from``, the task, ``output.as``, ``export.as``."""
        descriptor: dict[str, Any] = {
            "name": name,
            "reference": path,
            "definition": task,
            "input": raw,
            "startedAt": _timestamp(self.ctx.current_utc_datetime),
        }
        variables = self.variables(scope, task=descriptor)
        if "if" in task and not self.truthy(task["if"], raw, {**variables, "input": raw}, f"{path}/if"):
            return raw, None
        data = raw
        input_spec = task.get("input")
        yield from self._conform(input_spec, raw, f"{path}/input")
        own_input = isinstance(input_spec, Mapping) and "from" in input_spec
        if own_input:
            data = self.transform(input_spec["from"], raw, variables, f"{path}/input/from")
        # In a `for` body, $input stays the loop's input (so each iteration can read what the loop
        # was given, as sdk-go's nested loops expect) unless the task filters its own input.
        variables["input"] = data if own_input or scope.loop_input is _UNSET else scope.loop_input
        steps = getattr(self, f"task_{task_type(task)}")(task, path, data, variables, scope)
        if "timeout" in task:
            limit = self._timeout(task["timeout"], data, variables, f"{path}/timeout")
            steps = with_deadline(self.ctx, steps, limit, _timed_out(limit, path))
        output, flow = yield from steps
        descriptor["output"] = output
        variables["context"] = self.context  # a subtask may have exported a new one
        output_spec = task.get("output")
        if isinstance(output_spec, Mapping) and "as" in output_spec:
            output = self.transform(output_spec["as"], output, variables, f"{path}/output/as")
        yield from self._conform(output_spec, output, f"{path}/output")
        export = task.get("export")
        if isinstance(export, Mapping) and "as" in export:
            self.context = self.transform(
                export["as"], output, {**variables, "output": output}, f"{path}/export/as"
            )
            yield from self._conform(export, self.context, f"{path}/export")
        return output, flow if flow is not None else task.get("then")

    def _timeout(self, spec: Any, data: Any, variables: Mapping[str, Any], where: str) -> timedelta:
        """A ``timeout`` (inline ``{after: ...}`` or the name of one in ``use.timeouts``) as a duration."""
        if isinstance(spec, str):
            where = f"/use/timeouts/{escape(spec)}"
            spec = (self.use.get("timeouts") or {}).get(spec, {})
        return self._duration(spec.get("after"), data, variables, f"{where}/after")

    # -- control flow ----------------------------------------------------------------------------

    def task_do(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        output, flow = yield from self.run_list(task["do"], f"{path}/do", data, scope)
        return output, flow

    def task_set(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        return self.render(task["set"], data, variables, f"{path}/set"), None
        yield  # a generator, like every task runner

    def task_switch(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        default = None
        for index, case in enumerate(task["switch"]):
            name, body = next(iter(case.items()))
            if "when" not in body:
                default = default or body.get("then", "continue")
                continue
            where = f"{path}/switch/{index}/{escape(str(name))}/when"
            if self.truthy(body["when"], data, variables, where):
                return data, body.get("then", "continue")
        return data, default  # no match and no default: the input passes through
        yield

    def task_for(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        loop = task["for"]
        each = _strip_dollar(loop.get("each"), "item")
        at = _strip_dollar(loop.get("at"), "index")
        items = self.eval(loop["in"], data, variables, f"{path}/for/in")
        if items is None:
            return data, None
        if isinstance(items, Mapping):
            items = list(items.values())
        elif not isinstance(items, list):
            items = [items]
        for index, item in enumerate(items):
            body = _Scope({**scope.variables, each: item, at: index}, variables["input"])
            data, flow = yield from self.run_list(task["do"], f"{path}/do", data, body)
            if flow == "end":
                return data, "end"
            if "while" in task:
                where = f"{path}/while"
                if not self.truthy(task["while"], data, {**variables, each: item, at: index}, where):
                    break
        return data, None

    def task_fork(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        fork = task["fork"]
        compete = bool(fork.get("compete", False))
        branches = [
            self.run_task(name, branch, f"{path}/fork/branches/{i}/{escape(name)}", data, scope)
            for i, (name, branch) in enumerate(entries(fork["branches"]))
        ]
        results, order = yield from interleave(branches, compete=compete)
        if compete:
            return results[order[0]][0], None
        return [results[i][0] for i in range(len(branches))], None

    def task_try(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        catch = task["catch"]
        retry = catch.get("retry")
        if isinstance(retry, str):
            retry = self.use.get("retries", {}).get(retry)
        name = _strip_dollar(catch.get("as"), "error")
        retries = 0
        first_attempt = self.ctx.current_utc_datetime
        while True:
            try:
                output, flow = yield from self.run_list(task["try"], f"{path}/try", data, scope)
                return output, flow
            except Fault as exc:
                fault = exc.fault
            error_variables = {**variables, name: fault}
            if not self._catches(catch, fault, error_variables, path):
                raise Fault(fault)
            if isinstance(retry, Mapping):
                # As in the reference runtime (sdk-java): a caught error is retried while the
                # policy allows, and raised again once it no longer does.
                if not self._may_retry(
                    retry, data, error_variables, retries, first_attempt, f"{path}/catch/retry"
                ):
                    raise Fault(fault)
                retries += 1
                yield self.ctx.create_timer(
                    self._retry_delay(retry, retries, data, variables, f"{path}/catch/retry")
                )
                continue
            if "do" in catch:
                output, flow = yield from self.run_list(
                    catch["do"], f"{path}/catch/do", data, scope.with_variables(**{name: fault})
                )
                return output, flow
            return data, None

    def _catches(
        self, catch: Mapping[str, Any], fault: dict[str, Any], variables: dict[str, Any], path: str
    ) -> bool:
        errors = catch.get("errors")
        wanted = errors.get("with", {}) if isinstance(errors, Mapping) else {}
        for key, expected in wanted.items():
            actual = fault.get(key)
            if key == "type":
                if not same_type(str(expected), str(actual)):
                    return False
            elif str(expected) != str(actual):
                return False
        # `when` and `exceptWhen` look at the error itself (`.`), as well as at $error.
        if "when" in catch and not self.truthy(catch["when"], fault, variables, f"{path}/catch/when"):
            return False
        return not (
            "exceptWhen" in catch
            and self.truthy(catch["exceptWhen"], fault, variables, f"{path}/catch/exceptWhen")
        )

    def _may_retry(
        self,
        retry: Mapping[str, Any],
        data: Any,
        variables: dict[str, Any],
        retries: int,
        first_attempt: datetime,
        path: str,
    ) -> bool:
        limit = retry.get("limit") or {}
        count = (limit.get("attempt") or {}).get("count")
        if count is not None and retries >= int(count):
            return False
        if "duration" in limit:
            elapsed = self.ctx.current_utc_datetime - first_attempt
            if elapsed >= self._duration(limit["duration"], data, variables, f"{path}/limit/duration"):
                return False
        if "when" in retry and not self.truthy(retry["when"], data, variables, f"{path}/when"):
            return False
        return not (
            "exceptWhen" in retry and self.truthy(retry["exceptWhen"], data, variables, f"{path}/exceptWhen")
        )

    def _retry_delay(
        self, retry: Mapping[str, Any], retry_number: int, data: Any, variables: dict[str, Any], path: str
    ) -> timedelta:
        delay = (
            self._duration(retry["delay"], data, variables, f"{path}/delay")
            if "delay" in retry
            else timedelta(0)
        )
        backoff = retry.get("backoff")
        kind = next(iter(backoff)) if isinstance(backoff, Mapping) and backoff else "constant"
        wait = backoff_delay(delay, kind, retry_number)
        jitter = retry.get("jitter")
        if isinstance(jitter, Mapping):
            fraction = int(self.ctx.new_uuid().replace("-", ""), 16) / 2**128  # deterministic on replay
            low = self._duration(jitter["from"], data, variables, f"{path}/jitter/from")
            high = self._duration(jitter["to"], data, variables, f"{path}/jitter/to")
            wait = jittered(wait, low, high, fraction)
        return wait

    def _duration(self, value: Any, data: Any, variables: Mapping[str, Any], where: str) -> timedelta:
        if is_expression(value):
            value = self.eval(value, data, variables, where)
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise Fault(
                make_fault("validation", title="Invalid duration", detail=str(exc), instance=where)
            ) from None

    def task_raise(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        error = task["raise"]["error"]
        where = f"{path}/raise/error"
        if isinstance(error, str):
            where = f"/use/errors/{escape(error)}"
            error = self.use.get("errors", {}).get(error)
            if not isinstance(error, Mapping):
                raise Fault(
                    make_fault("validation", detail=f"no error named in use.errors at {path}", instance=path)
                )
        fault = self.render(dict(error), data, variables, where)
        with contextlib.suppress(TypeError, ValueError, KeyError):
            fault["status"] = int(fault["status"])
        fault.setdefault("instance", path)
        raise Fault(fault)
        yield

    def task_wait(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        yield self.ctx.create_timer(self._duration(task["wait"], data, variables, f"{path}/wait"))
        return data, None

    # -- effects ---------------------------------------------------------------------------------

    def _activity(self, name: str, payload: Any, path: str) -> Steps:
        try:
            return (yield self.ctx.call_activity(name, input=payload))
        except turnout.TaskFailedError as exc:
            raise Fault(fault_from_failure(exc.error_type, exc.failure.message, instance=path)) from None

    def task_emit(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        attributes = self.render(task["emit"]["event"]["with"], data, variables, f"{path}/emit/event/with")
        event = {
            "specversion": "1.0",
            "id": attributes.pop("id", None) or self.ctx.new_uuid(),
            "time": attributes.pop("time", None) or _timestamp(self.ctx.current_utc_datetime)["iso8601"],
            **attributes,
        }
        if "data" in event:
            event.setdefault("datacontenttype", "application/json")
        for required in ("source", "type"):
            if not isinstance(event.get(required), str) or not event[required]:
                raise Fault(
                    make_fault(
                        "validation",
                        title="Invalid event",
                        detail=f"the event's {required} must be a non-empty string: {event.get(required)!r}",
                        instance=f"{path}/emit/event/with/{required}",
                    )
                )
        return (yield from self._activity(EMIT_ACTIVITY, event, path)), None

    def task_call(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        call = task["call"]
        args = task.get("with") or {}
        if call == "http":
            request = self._http_request(args, path, data, variables)
            return (yield from self._activity(HTTP_ACTIVITY, request, path)), None
        if call == "openapi":
            return (yield from self._openapi(args, path, data, variables)), None
        functions = self.use.get("functions") or {}
        if call in functions:
            payload = self.render(args, data, variables, f"{path}/with") if "with" in task else data
            function_path = f"/use/functions/{escape(call)}"
            output, _ = yield from self.run_task(call, functions[call], function_path, payload, _Scope())
            return output, None
        if not callable_by_name(call):
            raise Fault(
                make_fault(
                    "configuration",
                    detail=f"{call!r} is the interpreter's own activity and cannot be called by name",
                    instance=f"{path}/call",
                )
            )
        payload = self.render(args, data, variables, f"{path}/with") if "with" in task else data
        return (yield from self._activity(call, payload, path)), None

    def _http_request(
        self, args: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any]
    ) -> dict[str, Any]:
        where = f"{path}/with"
        endpoint = args["endpoint"]
        uri_spec, auth = (
            (endpoint, None)
            if isinstance(endpoint, str)
            else (endpoint["uri"], endpoint.get("authentication"))
        )
        uri = self._uri(uri_spec, data, variables, f"{where}/endpoint")
        request: dict[str, Any] = {"uri": uri, "headers": {}}
        if auth is not None:  # resolved first: the rest of the task may read $authorization
            where_auth = f"{where}/endpoint"
            variables["authorization"] = self._authenticate(request, auth, data, variables, where_auth)
        headers = self.render(args.get("headers") or {}, data, variables, f"{where}/headers")
        request.update(
            method=str(self.render(args["method"], data, variables, f"{where}/method")).lower(),
            headers={**headers, **request["headers"]},
            query=self.render(args.get("query") or {}, data, variables, f"{where}/query"),
            output=args.get("output", "content"),
            redirect=bool(args.get("redirect", False)),
        )
        if "body" in args:
            request["body"] = self.render(args["body"], data, variables, f"{where}/body")
        return request

    def _uri(self, spec: Any, data: Any, variables: Mapping[str, Any], where: str) -> str:
        """An endpoint: a ``${ }`` expression, or a URI template filled from the task input's fields."""
        if is_expression(spec):
            return str(self.eval(spec, data, variables, where))
        fields = data if isinstance(data, Mapping) else {}

        def fill(match: re.Match[str]) -> str:
            value = fields.get(match.group(1).strip())
            return "" if value is None else quote(str(value), safe="")

        return _TEMPLATE.sub(fill, str(spec))

    def _authenticate(
        self,
        request: dict[str, Any],
        auth: Mapping[str, Any],
        data: Any,
        variables: Mapping[str, Any],
        where: str,
    ) -> dict[str, Any]:
        """Add a basic or bearer policy (inline or from use.authentications) to ``request``.

        Returns the ``$authorization`` descriptor, ``{scheme, parameter}``.
        Credentials written in the definition (or computed by expressions)
        become the ``Authorization`` header, and its parameter is the
        descriptor's: it is in the history already, as the request's header.
        Credentials taken from a secret (``basic: {use: name}``) travel as the
        secret's *name*: the activity reads the value from ``Settings.secrets``,
        so it never enters the history, and ``parameter`` is null.
        """
        if "use" in auth:
            where = f"/use/authentications/{escape(str(auth['use']))}"
            auth = (self.use.get("authentications") or {}).get(auth["use"], {})
        scheme = "basic" if "basic" in auth else "bearer"
        policy = auth[scheme]
        if isinstance(policy, Mapping) and "use" in policy:
            request["secret"] = {"scheme": scheme, "name": str(policy["use"]), "instance": where}
            return {"scheme": scheme.capitalize(), "parameter": None}
        policy = self.render(policy, data, variables, f"{where}/{scheme}")
        header = authorization_header(scheme, policy)
        request["headers"] = {**request.get("headers", {}), "Authorization": header}
        name, _, parameter = header.partition(" ")
        return {"scheme": name, "parameter": parameter}

    def _openapi(self, args: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any]) -> Steps:
        where = f"{path}/with"
        endpoint = args["document"]["endpoint"]
        doc_uri_spec, doc_auth = (
            (endpoint, None)
            if isinstance(endpoint, str)
            else (endpoint["uri"], endpoint.get("authentication"))
        )
        doc_uri = self._uri(doc_uri_spec, data, variables, f"{where}/document/endpoint")
        fetch: dict[str, Any] = {"uri": doc_uri, "headers": {}}
        if doc_auth is not None:
            self._authenticate(fetch, doc_auth, data, variables, f"{where}/document/endpoint")
        document = yield from self._activity(FETCH_ACTIVITY, fetch, path)
        operation_id = args["operationId"]
        found = find_operation(document, operation_id)
        if found is None:
            raise Fault(
                make_fault(
                    "configuration",
                    title="Unknown operation",
                    detail=f"the OpenAPI document at {doc_uri} has no operationId '{operation_id}'",
                    instance=f"{where}/operationId",
                )
            )
        method, template, declared = found
        parameters = dict(self.render(args.get("parameters") or {}, data, variables, f"{where}/parameters"))
        query: dict[str, Any] = {}
        headers: dict[str, Any] = {}
        body: Any = _UNSET
        for parameter in declared:
            name, location = parameter.get("name"), parameter.get("in")
            if name not in parameters:
                continue
            value = parameters.pop(name)
            if location == "path":
                template = template.replace("{" + name + "}", quote(str(value), safe=""))
            elif location == "query":
                query[name] = value
            elif location == "header":
                headers[name] = value
            elif location == "body":
                body = value
        if body is _UNSET and "body" in parameters:
            body = parameters.pop("body")
        query.update(parameters)  # undeclared parameters go in the query string
        request: dict[str, Any] = {
            "method": method,
            "uri": base_url(document, doc_uri).rstrip("/") + template,
            "headers": headers,
            "query": query,
            "output": args.get("output", "content"),
            "redirect": bool(args.get("redirect", False)),
        }
        if body is not _UNSET:
            request["body"] = body
        if "authentication" in args:
            variables["authorization"] = self._authenticate(
                request, args["authentication"], data, variables, f"{where}/authentication"
            )
        return (yield from self._activity(HTTP_ACTIVITY, request, path))

    def task_run(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        workflow = task["run"]["workflow"]
        payload = (
            self.render(workflow["input"], data, variables, f"{path}/run/workflow/input")
            if "input" in workflow
            else data
        )
        if task["run"].get("await") is False:
            # Started by an activity, not as a child: it outlives this instance. The task's output
            # is its transformed input, as the spec says.
            name = str(workflow["name"])
            request = start_request(name, payload, fresh_run_id(self.ctx, name))
            yield from self._activity(START_ACTIVITY, request, path)
            return data, None
        try:
            output = yield self.ctx.call_child_workflow(str(workflow["name"]), input=payload)
        except turnout.TaskFailedError as exc:
            raise Fault(fault_from_failure(exc.error_type, exc.failure.message, instance=path)) from None
        return output, None

    # -- events ----------------------------------------------------------------------------------

    def task_listen(
        self, task: Mapping[str, Any], path: str, data: Any, variables: dict[str, Any], scope: _Scope
    ) -> Steps:
        listen = task["listen"]
        to = listen["to"]
        mode = next(m for m in ("one", "any", "all") if m in to)
        filters = [to["one"]] if mode == "one" else list(to[mode])
        if not filters:
            raise Fault(
                make_fault(
                    "configuration",
                    title="Nothing to listen to",
                    detail="listen.to.any with no filters cannot be served: Turnout delivers events by type",
                    instance=f"{path}/listen/to",
                )
            )
        events = yield from self._consume(filters, mode, to.get("until"), path, data, variables)
        read = listen.get("read", "data")
        shaped = [event if read == "envelope" else event.get("data") for event in events]
        return (shaped[0] if mode == "one" else shaped), None

    def _consume(
        self,
        filters: list[Mapping[str, Any]],
        mode: str,
        until: Any,
        path: str,
        data: Any,
        variables: dict[str, Any],
        waits: dict[str, turnout.Task[Any]] | None = None,
    ) -> Steps:
        """Wait for events by type until the consumption strategy is met; unmatched events are dropped.

        ``waits`` (one wait per type) is kept by a caller that consumes again and
        again (the scheduler of ``schedule.on``): a wait left pending would
        otherwise take the next event of its type.
        """
        waits = {} if waits is None else waits
        matched: list[Any] = [None] * len(filters)
        consumed: list[Any] = []
        correlations: dict[str, Any] = {}
        until_filters: list[Mapping[str, Any]] = []
        if isinstance(until, Mapping):
            until_mode = next((m for m in ("one", "any", "all") if m in until), "any")
            until_filters = [until["one"]] if until_mode == "one" else list(until.get(until_mode) or [])
        while True:
            wanted = [f for i, f in enumerate(filters) if mode != "all" or matched[i] is None] + until_filters
            types = sorted({str(f["with"]["type"]) for f in wanted})
            for event_type in types:
                if event_type not in waits:
                    waits[event_type] = self.ctx.wait_for_external_event(event_type)
            winner = yield turnout.when_any([waits[t] for t in types])
            event_type = next(t for t in types if waits[t] is winner)
            del waits[event_type]
            event = _envelope(winner.get_result(), event_type)
            if until_filters and any(
                self._matches(f, event, path, data, variables, {}) for f in until_filters
            ):
                return consumed
            for index, event_filter in enumerate(filters):
                if mode == "all" and matched[index] is not None:
                    continue
                if self._matches(event_filter, event, path, data, variables, correlations):
                    if mode == "all":
                        matched[index] = event
                    else:
                        consumed.append(event)
                    break
            if mode == "all":
                if all(m is not None for m in matched):
                    return matched
            elif consumed:
                if until is None or until is False:
                    return consumed
                if not isinstance(until, Mapping) and self.truthy(
                    until, consumed, variables, f"{path}/listen/to/until"
                ):
                    return consumed

    def _matches(
        self,
        event_filter: Mapping[str, Any],
        event: Mapping[str, Any],
        path: str,
        data: Any,
        variables: dict[str, Any],
        correlations: dict[str, Any],
    ) -> bool:
        """Whether ``event`` passes a filter's ``with`` attributes and ``correlate`` rules."""
        where = f"{path}/listen"
        for key, expected in (event_filter.get("with") or {}).items():
            actual = event.get(key)
            if is_expression(expected):
                result = self.eval(expected, actual, variables, f"{where}/with/{escape(str(key))}")
                if result is True:
                    continue
                if result is False or result is None or result != actual:
                    return False
            elif isinstance(expected, str) and isinstance(actual, str) and key != "type":
                if expected != actual and not _full_match(expected, actual):
                    return False
            elif expected != actual:
                return False
        found: dict[str, Any] = {}
        for key, rule in (event_filter.get("correlate") or {}).items():
            value = self.eval(rule["from"], event, variables, f"{where}/correlate/{escape(str(key))}/from")
            if "expect" in rule:
                if value != self.render(
                    rule["expect"], data, variables, f"{where}/correlate/{escape(str(key))}"
                ):
                    return False
            elif key in correlations and correlations[key] != value:
                return False
            found[key] = value
        correlations.update(found)
        return True


def _envelope(received: Any, event_type: str) -> dict[str, Any]:
    """A raised event as a CloudEvent: a mapping with a ``type`` is one; anything else is its data."""
    if isinstance(received, Mapping) and "type" in received:
        return dict(received)
    return {"type": event_type, "data": received}


def _full_match(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False
