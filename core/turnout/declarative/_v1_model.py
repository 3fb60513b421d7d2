"""DSL 1.0.x: reading a definition and checking it before anything runs.

The check walks the document once and collects every problem with its JSON
pointer (``/do/2/callPet/call``), so a bad file is refused with the whole
list, not the first mistake. It checks what the interpreter relies on: task
shapes, flow targets, references into ``use``, durations, and that every jq
expression compiles. Features Turnout does not run (``run.shell``,
``run.container``, ``run.script``, gRPC/AsyncAPI/A2A/MCP calls, OAuth2/OIDC)
are refused here with the reason, rather than failing mid-instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._definition import Definition
from ._durations import DurationError, parse_duration
from ._expressions import ExpressionError, check, is_expression
from ._schedule import ScheduleError, normalize_cron, positive_duration, schedule_keys
from ._schemas import schema_problem, source_folder

#: Task types, in the order used to tell a task's type (``for`` and ``try`` also carry ``do``/``catch``).
TASK_TYPES = ("for", "try", "fork", "call", "emit", "listen", "raise", "run", "set", "switch", "wait", "do")
_BASE_KEYS = {"if", "input", "output", "export", "timeout", "then", "metadata"}
_TYPE_KEYS = {
    "for": {"for", "do", "while"},
    "try": {"try", "catch"},
    "fork": {"fork"},
    "call": {"call", "with"},
    "emit": {"emit"},
    "listen": {"listen", "foreach"},
    "raise": {"raise"},
    "run": {"run"},
    "set": {"set"},
    "switch": {"switch"},
    "wait": {"wait"},
    "do": {"do"},
}
FLOW_DIRECTIVES = ("continue", "exit", "end")
_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
"""The official schema's pattern for ``document.name`` and ``document.namespace``."""
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
"""Semantic versioning 2.0, which the official schema asks of ``document.dsl`` and ``document.version``."""
_DOCUMENT_KEYS = {"dsl", "namespace", "name", "version", "title", "summary", "tags", "metadata"}
_TOP_LEVEL = {"document", "input", "use", "do", "timeout", "output", "schedule", "evaluate", "$schema"}
_USE_SECTIONS = {
    "authentications",
    "catalogs",
    "errors",
    "extensions",
    "functions",
    "retries",
    "secrets",
    "timeouts",
}
UNSUPPORTED_CALLS = ("grpc", "asyncapi", "a2a", "mcp")
SCHEDULE_KINDS = ("every", "cron", "after", "on")
_ERROR_FIELDS = ("type", "status", "title", "detail", "instance")


def escape(token: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def task_type(task: Mapping[str, Any]) -> str | None:
    """The type of a task definition (``call``, ``for``, ...), or None when it has none."""
    for kind in TASK_TYPES:
        if kind in task:
            return kind
    return None


def entries(task_list: Any) -> list[tuple[str, dict[str, Any]]]:
    """A ``do``-style list (``[{name: task}, ...]``) as ``(name, task)`` pairs; assumes it is valid."""
    return [next(iter(item.items())) for item in task_list]


def parse_v1(document: dict[str, Any], source: str | None) -> Definition:
    """Validate a 1.0 document and wrap it; raises DefinitionError with every problem."""
    from ._definition import DefinitionError

    problems = list(_Checker(document, source_folder(source)).problems())
    if problems:
        raise DefinitionError(problems, source=source)
    meta = document["document"]
    return Definition(
        name=str(meta["name"]),
        version=str(meta["version"]),
        namespace=str(meta["namespace"]),
        dialect="1.0",
        document=document,
        source=source,
    )


class _Checker:
    """One pass over a 1.0 document, yielding ``(pointer, message)`` for each problem."""

    def __init__(self, document: Any, base: Path | None = None) -> None:
        self.document = document
        self.base = base  # the folder of the definition's file: where its schema files are
        use = document.get("use") if isinstance(document, Mapping) else None
        self.use: Mapping[str, Any] = use if isinstance(use, Mapping) else {}

    def named(self, section: str) -> Mapping[str, Any]:
        value = self.use.get(section)
        return value if isinstance(value, Mapping) else {}

    def problems(self) -> Iterator[tuple[str, str]]:
        doc = self.document
        if not isinstance(doc, Mapping):
            yield "", "a workflow definition is a mapping with 'document' and 'do'"
            return
        meta = doc.get("document")
        if not isinstance(meta, Mapping):
            yield "/document", "required: a mapping with dsl, namespace, name and version"
        else:
            for key in ("dsl", "namespace", "name", "version"):
                value = meta.get(key)
                if value is None or (isinstance(value, str) and not value.strip()):
                    yield f"/document/{key}", f"required: the workflow's {key} (a non-empty string)"
                elif not isinstance(value, (str, int, float)):
                    yield f"/document/{key}", f"expected a string, not {type(value).__name__}"
                elif key in ("namespace", "name") and not _NAME.fullmatch(str(value)):
                    yield (
                        f"/document/{key}",
                        f"{value!r} is not a valid {key}: expected at most 63 letters, digits and dashes, "
                        "starting and ending with a letter or digit",
                    )
                elif key in ("dsl", "version") and not _SEMVER.fullmatch(str(value)):
                    yield f"/document/{key}", f"{value!r} is not a semantic version (like 1.0.0)"
            extra = sorted(set(map(str, meta)) - _DOCUMENT_KEYS)
            if extra:
                yield (
                    "/document",
                    f"unexpected key{'s' if len(extra) > 1 else ''} {', '.join(extra)}: expected "
                    + (", ".join(sorted(_DOCUMENT_KEYS))),
                )
        unknown = sorted(set(map(str, doc)) - _TOP_LEVEL)
        if unknown:
            yield (
                "",
                f"unexpected top-level key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                + (f"expected {', '.join(sorted(_TOP_LEVEL - {'$schema'}))}"),
            )
        evaluate = doc.get("evaluate")
        if isinstance(evaluate, Mapping) and str(evaluate.get("language", "jq")) != "jq":
            yield "/evaluate/language", f"only jq expressions are supported, not {evaluate['language']!r}"
        for section in ("input", "output"):
            if section in doc:
                yield from self.data_filter(
                    doc[section], f"/{section}", {"from"} if section == "input" else {"as"}
                )
        if "timeout" in doc:
            yield from self.timeout(doc["timeout"], "/timeout")
        if "schedule" in doc:
            yield from self.schedule(doc["schedule"], "/schedule")
        yield from self.use_section()
        if "do" not in doc:
            yield "/do", "required: the list of tasks to run"
        else:
            yield from self.task_list(doc["do"], "/do")

    # -- when instances start by themselves ------------------------------------------------------

    def schedule(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        """``schedule``: one of every, cron, after (literal durations) and on (events to consume)."""
        if not isinstance(value, Mapping):
            yield (
                path,
                "expected {every: <duration>}, {cron: <expression>}, {after: <duration>} or {on: {...}}",
            )
            return
        value = schedule_keys(value)
        unknown = sorted(set(value) - set(SCHEDULE_KINDS))
        if unknown:
            yield (
                path,
                f"unexpected key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: expected one of "
                + (", ".join(SCHEDULE_KINDS)),
            )
        kinds = [kind for kind in SCHEDULE_KINDS if kind in value]
        if len(kinds) != 1:
            yield path, "expected exactly one of every, cron, after and on (Turnout does not combine them)"
        for kind in kinds:
            where = f"{path}/{kind}"
            try:
                if kind == "cron":
                    normalize_cron(value[kind])
                elif kind in ("every", "after"):
                    positive_duration(value[kind])
            except ScheduleError as exc:
                yield where, str(exc)
            if kind == "on":
                on = value["on"]
                if not isinstance(on, Mapping):
                    yield where, "expected an event consumption strategy {one | any | all: ...}"
                elif isinstance(on.get("any"), list) and not on["any"]:
                    yield f"{where}/any", "expected at least one event filter: events are delivered by type"
                else:
                    yield from self.consumption(on, where)

    # -- reusable components -------------------------------------------------------------------

    def use_section(self) -> Iterator[tuple[str, str]]:
        unknown = sorted(set(map(str, self.use)) - _USE_SECTIONS)
        if unknown:
            yield (
                "/use",
                f"unexpected section{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                + (f"expected {', '.join(sorted(_USE_SECTIONS))}"),
            )
        if self.use.get("extensions"):
            yield (
                "/use/extensions",
                "extensions are not supported by Turnout (they would add tasks around others): "
                "write those tasks in the workflow",
            )
        for name, policy in self.named("authentications").items():
            yield from self.authentication(policy, f"/use/authentications/{escape(name)}", inline_only=True)
        for name, error in self.named("errors").items():
            yield from self.error(error, f"/use/errors/{escape(name)}")
        for name, retry in self.named("retries").items():
            yield from self.retry(retry, f"/use/retries/{escape(name)}")
        for name, function in self.named("functions").items():
            path = f"/use/functions/{escape(name)}"
            if not isinstance(function, Mapping):
                yield path, "a function is a task definition (a mapping such as {call: http, with: {...}})"
            else:
                yield from self.task(function, path)

    # -- tasks -----------------------------------------------------------------------------------

    def task_list(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if not isinstance(value, list) or not value:
            yield path, "expected a non-empty list of tasks, each written '- taskName: {...}'"
            return
        names: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or len(item) != 1:
                yield f"{path}/{index}", "expected a single-key mapping '- taskName: {...}'"
                names.append("")
                continue
            name, task = next(iter(item.items()))
            if str(name) in names:
                yield f"{path}/{index}/{escape(str(name))}", f"duplicate task name '{name}' in this list"
            names.append(str(name))
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or len(item) != 1:
                continue
            name, task = next(iter(item.items()))
            task_path = f"{path}/{index}/{escape(str(name))}"
            if not isinstance(task, Mapping):
                yield task_path, "expected a task definition (a mapping)"
                continue
            yield from self.task(task, task_path)
            yield from self.then(task.get("then"), f"{task_path}/then", names)
            if task_type(task) == "switch" and isinstance(task.get("switch"), list):
                for case_index, case in enumerate(task["switch"]):
                    if isinstance(case, Mapping) and len(case) == 1:
                        case_name, body = next(iter(case.items()))
                        if isinstance(body, Mapping):
                            case_path = f"{task_path}/switch/{case_index}/{escape(str(case_name))}/then"
                            yield from self.then(body.get("then"), case_path, names)

    def then(self, value: Any, path: str, names: list[str]) -> Iterator[tuple[str, str]]:
        if value is None or value in FLOW_DIRECTIVES:
            return
        if not isinstance(value, str) or value not in names:
            known = ", ".join(f"'{n}'" for n in names if n) or "none"
            yield (
                path,
                f"'then: {value}' names no task in this list: expected continue, exit, end "
                f"or one of the tasks declared at the same level ({known})",
            )

    def task(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        kind = task_type(task)
        if kind is None:
            keys = ", ".join(sorted(map(str, task))) or "none"
            yield (
                path,
                f"unknown task type (keys: {keys}): expected one of {', '.join(sorted(set(TASK_TYPES)))}",
            )
            return
        extra = sorted(set(map(str, task)) - _BASE_KEYS - _TYPE_KEYS[kind])
        if extra:
            yield (
                path,
                f"unexpected key{'s' if len(extra) > 1 else ''} for a '{kind}' task: {', '.join(extra)}",
            )
        if "if" in task:
            yield from self.expression(task["if"], f"{path}/if")
        if "input" in task:
            yield from self.data_filter(task["input"], f"{path}/input", {"from"})
        if "output" in task:
            yield from self.data_filter(task["output"], f"{path}/output", {"as"})
        if "export" in task:
            yield from self.data_filter(task["export"], f"{path}/export", {"as"})
        if "timeout" in task:
            yield from self.timeout(task["timeout"], f"{path}/timeout")
        yield from getattr(self, f"task_{kind}")(task, path)

    def task_do(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        yield from self.task_list(task["do"], f"{path}/do")

    def task_set(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        value = task["set"]
        if not isinstance(value, Mapping) and not is_expression(value):
            yield f"{path}/set", "expected a mapping of values, or a ${ } expression that builds one"
        yield from self.values(value, f"{path}/set")

    def task_switch(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        cases = task["switch"]
        if not isinstance(cases, list) or not cases:
            yield f"{path}/switch", "expected a non-empty list of cases '- caseName: {when, then}'"
            return
        for index, case in enumerate(cases):
            if (
                not isinstance(case, Mapping)
                or len(case) != 1
                or not isinstance(next(iter(case.values())), Mapping)
            ):
                yield f"{path}/switch/{index}", "expected '- caseName: {when: <jq>, then: <task>}'"
                continue
            name, body = next(iter(case.items()))
            case_path = f"{path}/switch/{index}/{escape(str(name))}"
            if "when" in body:
                yield from self.expression(body["when"], f"{case_path}/when")
            if "then" not in body:
                yield (
                    f"{case_path}/then",
                    "required: where to go when the case matches (a task, continue, exit, end)",
                )

    def task_for(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        loop = task["for"]
        if not isinstance(loop, Mapping) or "in" not in loop:
            yield f"{path}/for", "expected {each: <name>, in: <jq>, at: <name>} ('in' is required)"
        else:
            yield from self.expression(loop["in"], f"{path}/for/in")
            for key in ("each", "at"):
                if key in loop and not isinstance(loop[key], str):
                    yield f"{path}/for/{key}", "expected a variable name"
        if "while" in task:
            yield from self.expression(task["while"], f"{path}/while")
        if "do" not in task:
            yield f"{path}/do", "required: the tasks to run for each item"
        else:
            yield from self.task_list(task["do"], f"{path}/do")

    def task_fork(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        fork = task["fork"]
        if not isinstance(fork, Mapping) or "branches" not in fork:
            yield f"{path}/fork", "expected {branches: [...], compete: true|false}"
            return
        if "compete" in fork and not isinstance(fork["compete"], bool):
            yield f"{path}/fork/compete", "expected true or false"
        yield from self.task_list(fork["branches"], f"{path}/fork/branches")

    def task_try(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        yield from self.task_list(task["try"], f"{path}/try")
        catch = task.get("catch")
        if catch is None:
            yield f"{path}/catch", "required: which errors to catch and what to do with them"
            return
        if not isinstance(catch, Mapping):
            yield f"{path}/catch", "expected a mapping {errors, as, when, exceptWhen, retry, do}"
            return
        errors = catch.get("errors")
        if errors is not None and (
            not isinstance(errors, Mapping) or not isinstance(errors.get("with", {}), Mapping)
        ):
            yield f"{path}/catch/errors", "expected {with: {type, status, ...}}"
        for key in ("when", "exceptWhen"):
            if key in catch:
                yield from self.expression(catch[key], f"{path}/catch/{key}")
        if "retry" in catch:
            retry = catch["retry"]
            if isinstance(retry, str):
                if retry not in self.named("retries"):
                    yield f"{path}/catch/retry", f"no retry policy named '{retry}' in use.retries"
            else:
                yield from self.retry(retry, f"{path}/catch/retry")
        if "do" in catch:
            yield from self.task_list(catch["do"], f"{path}/catch/do")

    def task_raise(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        spec = task["raise"]
        if not isinstance(spec, Mapping) or "error" not in spec:
            yield f"{path}/raise", "expected {error: {...}} or {error: <name in use.errors>}"
            return
        error = spec["error"]
        if isinstance(error, str):
            if error not in self.named("errors"):
                known = ", ".join(sorted(self.named("errors"))) or "none declared"
                yield f"{path}/raise/error", f"no error named '{error}' in use.errors ({known})"
        else:
            yield from self.error(error, f"{path}/raise/error")

    def task_wait(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        yield from self.duration(task["wait"], f"{path}/wait")

    def task_emit(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        emit = task["emit"]
        event = emit.get("event") if isinstance(emit, Mapping) else None
        attributes = event.get("with") if isinstance(event, Mapping) else None
        if not isinstance(attributes, Mapping):
            yield f"{path}/emit", "expected {event: {with: {source, type, data, ...}}}"
            return
        for key in ("source", "type"):
            if key not in attributes:
                yield f"{path}/emit/event/with/{key}", f"required: the CloudEvent's {key}"
        yield from self.values(attributes, f"{path}/emit/event/with")

    def task_listen(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        listen = task["listen"]
        if "foreach" in task:
            yield (
                f"{path}/foreach",
                "not supported: Turnout's listen consumes events, it does not stream them",
            )
        if not isinstance(listen, Mapping) or not isinstance(listen.get("to"), Mapping):
            yield f"{path}/listen", "expected {to: {one | any | all: ...}, read: data|envelope|raw}"
            return
        if listen.get("read", "data") not in ("data", "envelope", "raw"):
            yield f"{path}/listen/read", "expected data, envelope or raw"
        yield from self.consumption(listen["to"], f"{path}/listen/to")

    def consumption(self, to: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        modes = [m for m in ("one", "any", "all") if m in to]
        if len(modes) != 1:
            yield path, "expected exactly one of one, any, all"
            return
        mode = modes[0]
        filters = [to["one"]] if mode == "one" else to[mode]
        if not isinstance(filters, list):
            yield f"{path}/{mode}", "expected a list of event filters"
            return
        for index, event_filter in enumerate(filters):
            where = f"{path}/one" if mode == "one" else f"{path}/{mode}/{index}"
            if not isinstance(event_filter, Mapping) or not isinstance(event_filter.get("with", {}), Mapping):
                yield where, "expected an event filter {with: {type, source, ...}, correlate: {...}}"
                continue
            attributes = event_filter.get("with", {})
            if "type" not in attributes:
                yield (
                    f"{where}/with/type",
                    "required: Turnout delivers events by type (raise_event name = type)",
                )
            elif is_expression(attributes["type"]):
                yield f"{where}/with/type", "expected a literal event type: events are delivered by type"
            yield from self.values(attributes, f"{where}/with")
            correlate = event_filter.get("correlate", {})
            if not isinstance(correlate, Mapping):
                yield f"{where}/correlate", "expected {name: {from: <jq>, expect: <value>}}"
                continue
            for key, rule in correlate.items():
                if not isinstance(rule, Mapping) or "from" not in rule:
                    yield f"{where}/correlate/{escape(str(key))}", "expected {from: <jq>, expect: <value>}"
                else:
                    yield from self.expression(rule["from"], f"{where}/correlate/{escape(str(key))}/from")
        if "until" in to and mode == "any":
            until = to["until"]
            if isinstance(until, Mapping):
                yield from self.consumption(until, f"{path}/until")
            else:
                yield from self.expression(until, f"{path}/until")

    def task_run(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        run = task["run"]
        if not isinstance(run, Mapping):
            yield f"{path}/run", "expected {workflow: {namespace, name, version, input}}"
            return
        for refused in ("shell", "container", "script"):
            if refused in run:
                yield (
                    f"{path}/run/{refused}",
                    f"run.{refused} is refused: a declarative workflow may not run processes on the host; "
                    "call an activity (call: <activity name>) or run.workflow instead",
                )
        if "await" in run and not isinstance(run["await"], bool):
            yield (
                f"{path}/run/await",
                "expected true (wait for the workflow's output) or false (start it and go on)",
            )
        if not any(k in run for k in ("shell", "container", "script")):
            workflow = run.get("workflow")
            if not isinstance(workflow, Mapping) or not workflow.get("name"):
                yield f"{path}/run", "expected {workflow: {name, namespace, version, input}}"
            elif "input" in workflow:
                yield from self.values(workflow["input"], f"{path}/run/workflow/input")

    def task_call(self, task: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
        call = task["call"]
        args = task.get("with", {})
        if not isinstance(call, str) or not call:
            yield f"{path}/call", "expected http, openapi, a function in use.functions or an activity name"
            return
        if not isinstance(args, Mapping):
            yield f"{path}/with", "expected a mapping of arguments"
            return
        if call in UNSUPPORTED_CALLS:
            yield (
                f"{path}/call",
                f"call: {call} is not supported by Turnout; use http, openapi or an activity",
            )
            return
        if "@" in call:
            yield f"{path}/call", f"catalog function '{call}' is not supported: declare it in use.functions"
            return
        if call == "http":
            if "method" not in args:
                yield f"{path}/with/method", "required: the HTTP method (get, post, ...)"
            if "endpoint" not in args:
                yield f"{path}/with/endpoint", "required: the URL (a string or {uri, authentication})"
            else:
                yield from self.endpoint(args["endpoint"], f"{path}/with/endpoint")
            if args.get("output", "content") not in ("content", "response", "raw"):
                yield f"{path}/with/output", "expected content, response or raw"
        elif call == "openapi":
            document = args.get("document")
            if not isinstance(document, Mapping) or "endpoint" not in document:
                yield f"{path}/with/document", "required: {endpoint: <URL of the OpenAPI document>}"
            else:
                yield from self.endpoint(document["endpoint"], f"{path}/with/document/endpoint")
            if not isinstance(args.get("operationId"), str):
                yield f"{path}/with/operationId", "required: the operationId to call"
            if "authentication" in args:
                yield from self.authentication(args["authentication"], f"{path}/with/authentication")
            if args.get("output", "content") not in ("content", "response", "raw"):
                yield f"{path}/with/output", "expected content, response or raw"
        yield from self.values(args, f"{path}/with")

    # -- pieces ----------------------------------------------------------------------------------

    def endpoint(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, str):
            return
        if not isinstance(value, Mapping) or not isinstance(value.get("uri"), str):
            yield path, "expected a URL string or {uri: <URL>, authentication: {...}}"
            return
        if "authentication" in value:
            yield from self.authentication(value["authentication"], f"{path}/authentication")

    def authentication(
        self, value: Any, path: str, *, inline_only: bool = False
    ) -> Iterator[tuple[str, str]]:
        if not isinstance(value, Mapping):
            yield path, "expected {basic: {...}}, {bearer: {...}} or {use: <name in use.authentications>}"
            return
        if "use" in value and not inline_only:
            if value["use"] not in self.named("authentications"):
                yield f"{path}/use", f"no authentication named '{value['use']}' in use.authentications"
            return
        schemes = [k for k in value if k in ("basic", "bearer", "digest", "oauth2", "oidc", "certificate")]
        if len(schemes) != 1:
            yield path, "expected exactly one scheme: basic or bearer"
            return
        scheme = schemes[0]
        if scheme not in ("basic", "bearer"):
            yield (
                f"{path}/{scheme}",
                f"{scheme} authentication is not supported by Turnout: use basic or bearer",
            )
            return
        body = value[scheme]
        if scheme == "basic" and not (
            isinstance(body, Mapping) and ({"username", "password"} <= set(body) or "use" in body)
        ):
            yield f"{path}/basic", "expected {username, password} or {use: <secret name>}"
        if scheme == "bearer" and not (
            isinstance(body, str) or (isinstance(body, Mapping) and ("token" in body or "use" in body))
        ):
            yield f"{path}/bearer", "expected {token: <token>} or {use: <secret name>}"
        yield from self.values(body, f"{path}/{scheme}")

    def error(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if not isinstance(value, Mapping):
            yield path, "expected an error {type, status, title, detail}"
            return
        for key in ("type", "status"):
            if key not in value:
                yield f"{path}/{key}", f"required: the error's {key}"
        unknown = sorted(set(map(str, value)) - set(_ERROR_FIELDS))
        if unknown:
            yield path, f"unexpected error field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
        yield from self.values(value, path)

    def retry(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if not isinstance(value, Mapping):
            yield path, "expected a retry policy {delay, backoff, limit, jitter}"
            return
        if "delay" in value:
            yield from self.duration(value["delay"], f"{path}/delay")
        backoff = value.get("backoff")
        if backoff is not None and (
            not isinstance(backoff, Mapping) or len(backoff) != 1 or next(iter(backoff)) not in _BACKOFFS
        ):
            yield f"{path}/backoff", "expected one of {constant: {}}, {linear: {}}, {exponential: {}}"
        limit = value.get("limit", {})
        if not isinstance(limit, Mapping):
            yield f"{path}/limit", "expected {attempt: {count, duration}, duration}"
        else:
            attempt = limit.get("attempt", {})
            if not isinstance(attempt, Mapping):
                yield f"{path}/limit/attempt", "expected {count, duration}"
            else:
                count = attempt.get("count")
                if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
                    yield f"{path}/limit/attempt/count", "expected a non-negative integer"
                if "duration" in attempt:
                    yield from self.duration(attempt["duration"], f"{path}/limit/attempt/duration")
            if "duration" in limit:
                yield from self.duration(limit["duration"], f"{path}/limit/duration")
        jitter = value.get("jitter")
        if jitter is not None:
            if not isinstance(jitter, Mapping) or not {"from", "to"} <= set(jitter):
                yield f"{path}/jitter", "expected {from: <duration>, to: <duration>}"
            else:
                yield from self.duration(jitter["from"], f"{path}/jitter/from")
                yield from self.duration(jitter["to"], f"{path}/jitter/to")
        for key in ("when", "exceptWhen"):
            if key in value:
                yield from self.expression(value[key], f"{path}/{key}")

    def timeout(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, str) and value in self.named("timeouts"):
            return
        if not isinstance(value, Mapping) or "after" not in value:
            yield path, "expected {after: <duration>} or the name of a timeout in use.timeouts"
            return
        yield from self.duration(value["after"], f"{path}/after")

    def duration(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if is_expression(value):
            yield from self.expression(value, path)
            return
        try:
            parse_duration(value)
        except DurationError as exc:
            yield path, str(exc)

    def data_filter(self, value: Any, path: str, keys: set[str]) -> Iterator[tuple[str, str]]:
        if not isinstance(value, Mapping):
            yield path, f"expected a mapping with {' or '.join(sorted(keys))} (and schema)"
            return
        if "schema" in value:
            problem = schema_problem(value["schema"], self.base)
            if problem:
                yield f"{path}/schema", problem
        for key in keys:
            if key in value:
                item = value[key]
                if isinstance(item, str):
                    yield from self.expression(item, f"{path}/{key}")
                else:
                    yield from self.values(item, f"{path}/{key}")

    def expression(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, bool):
            return
        if not isinstance(value, str):
            yield path, f"expected a jq expression, not {type(value).__name__}"
            return
        try:
            check(value, where=path)
        except ExpressionError as exc:
            yield path, f"invalid jq expression {value!r}: {_first_line(exc.reason)}"

    def values(self, value: Any, path: str) -> Iterator[tuple[str, str]]:
        """Every ``${ }`` string inside ``value`` must compile."""
        if isinstance(value, str):
            if is_expression(value):
                yield from self.expression(value, path)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                yield from self.values(item, f"{path}/{escape(str(key))}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from self.values(item, f"{path}/{index}")


_BACKOFFS = ("constant", "linear", "exponential")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text
