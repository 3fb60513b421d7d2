"""Expressions and time in the ARM double: Logic Apps' ``@...`` language (a small part of it) and ticks.

Supported: whole-value expressions (``@triggerBody()``), interpolation
(``"total @{body('x')}"``), ``@@`` escapes, string, number and boolean
literals, property access (``['a']``, ``?['a']``, ``.a``) and the functions
in :data:`FUNCTIONS`. A definition is checked when it is saved, as Logic Apps does.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .double_engine import ActionRun, Run


class DefinitionError(ValueError):
    """A definition the double (or Logic Apps) would refuse at save time: 400 InvalidTemplate."""


class ExpressionError(ValueError):
    """An expression that fails when evaluated: the action (or output) fails with InvalidTemplate."""


# -- time ------------------------------------------------------------------------------------


def now_ticks() -> int:
    """The time in 100 ns ticks since the epoch: Logic Apps' timestamps have 7 fractional digits."""
    return time.time_ns() // 100


def iso(ticks: int | None) -> str | None:
    """A timestamp as Logic Apps writes it: ``2024-05-01T10:00:00.1234567Z``."""
    if ticks is None:
        return None
    seconds, fraction = divmod(ticks, 10_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:07d}Z"


def parse_ticks(text: str) -> int:
    """Ticks of an ISO 8601 timestamp with up to 7 fractional digits (naive means UTC)."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?", text.strip()
    )
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole + (zone if zone and zone != "Z" else "+00:00"))
    return int(stamp.timestamp()) * 10_000_000 + int((fraction or "0").ljust(7, "0"))


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def duration_seconds(text: str) -> float:
    """Seconds of an ISO 8601 duration such as ``PT1H`` or ``PT0.5S``."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT"):
        raise DefinitionError(f"'{text}' is not an ISO 8601 duration such as 'PT1H'")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


UNITS = {"Second": 1, "Minute": 60, "Hour": 3600, "Day": 86400, "Week": 604800, "Month": 2592000}


# -- expressions -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>\?\[|[()\[\],.]))"
)

FUNCTIONS = (
    "triggerBody",
    "triggerOutputs",
    "body",
    "outputs",
    "listCallbackUrl",
    "workflow",
    "concat",
    "string",
    "json",
    "coalesce",
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise DefinitionError(f"cannot parse the expression '{text}' at position {position}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Parses one expression into a small tree: ("call", name, args, accessors) or ("literal", value)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def parse(self) -> tuple[Any, ...]:
        node = self._value()
        if self.index != len(self.tokens):
            raise DefinitionError(
                f"unexpected '{self.tokens[self.index][1]}' in the expression '{self.text}'"
            )
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            raise DefinitionError(f"expected '{value or 'a value'}' in the expression '{self.text}'")
        self.index += 1
        return token

    def _value(self) -> tuple[Any, ...]:
        kind, text = self._take()
        if kind == "string":
            return ("literal", text[1:-1].replace("''", "'"))
        if kind == "number":
            return ("literal", float(text) if "." in text else int(text))
        if kind != "name":
            raise DefinitionError(f"unexpected '{text}' in the expression '{self.text}'")
        if text in ("true", "false", "null"):
            return ("literal", {"true": True, "false": False, "null": None}[text])
        if text not in FUNCTIONS:
            raise DefinitionError(
                f"the template function '{text}' is not valid (the ARM double knows: {', '.join(FUNCTIONS)})"
            )
        self._take("(")
        args = []
        if self._peek() != ("punct", ")"):
            args.append(self._value())
            while self._peek() == ("punct", ","):
                self._take(",")
                args.append(self._value())
        self._take(")")
        accessors: list[tuple[bool, Any]] = []
        while (token := self._peek()) is not None and token[1] in ("[", "?[", "."):
            self.index += 1
            if token[1] == ".":
                accessors.append((False, self._take()[1]))
                continue
            key = self._value()
            if key[0] != "literal":
                raise DefinitionError(f"only literal keys are supported in '{self.text}'")
            self._take("]")
            accessors.append((token[1] == "?[", key[1]))
        return ("call", text, args, accessors)


def parse_template(value: Any) -> None:
    """Check every expression in a JSON value (raises DefinitionError), as Logic Apps does on save."""
    if isinstance(value, dict):
        for item in value.values():
            parse_template(item)
    elif isinstance(value, list):
        for item in value:
            parse_template(item)
    elif isinstance(value, str):
        for kind, text in _pieces(value):
            if kind == "expression":
                _Parser(text).parse()


def _pieces(text: str) -> list[tuple[str, str]]:
    """A string as ("expression", text) for "@expr", or literal and "@{...}" pieces."""
    if text.startswith("@@"):
        return [("literal", text[1:])]
    if text.startswith("@") and not text.startswith("@{"):
        return [("expression", text[1:])]
    pieces = []
    position = 0
    while (start := text.find("@{", position)) >= 0:
        end = text.find("}", start)
        if end < 0:
            raise DefinitionError(f"unterminated '@{{' in '{text}'")
        if start > position:
            pieces.append(("literal", text[position:start]))
        pieces.append(("interpolation", text[start + 2 : end]))
        position = end + 1
    if position < len(text):
        pieces.append(("literal", text[position:]))
    return pieces or [("literal", "")]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


class Scope:
    """What expressions can see while one run evaluates them."""

    def __init__(self, run: Run, callback_url: str | None = None) -> None:
        self.run = run
        self.callback_url = callback_url

    def evaluate(self, value: Any) -> Any:
        """Evaluate every expression in a JSON value."""
        if isinstance(value, dict):
            return {key: self.evaluate(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.evaluate(item) for item in value]
        if not isinstance(value, str):
            return value
        pieces = _pieces(value)
        if len(pieces) == 1 and pieces[0][0] == "expression":
            return self._node(_Parser(pieces[0][1]).parse())
        return "".join(
            text if kind == "literal" else _as_text(self._node(_Parser(text).parse()))
            for kind, text in pieces
        )

    def _node(self, node: tuple[Any, ...]) -> Any:
        if node[0] == "literal":
            return node[1]
        _, name, arg_nodes, accessors = node
        args = [self._node(arg) for arg in arg_nodes]
        value = self._call(name, args)
        for optional, key in accessors:
            if value is None and optional:
                return None
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                if optional:
                    return None
                raise ExpressionError(
                    f"the property '{key}' does not exist in {_as_text(value)[:80]}"
                ) from None
        return value

    def _action(self, name: str) -> ActionRun:
        action = self.run.actions.get(name)
        if action is None or action.status not in ("Succeeded", "Failed", "TimedOut"):
            raise ExpressionError(f"the action '{name}' has not run (it is referenced by an expression)")
        return action

    def _call(self, name: str, args: list[Any]) -> Any:
        if name == "triggerBody":
            return self.run.trigger_outputs.get("body")
        if name == "triggerOutputs":
            return self.run.trigger_outputs
        if name == "body":
            outputs = self._action(str(args[0])).outputs
            return outputs.get("body") if isinstance(outputs, dict) and "body" in outputs else outputs
        if name == "outputs":
            return self._action(str(args[0])).outputs
        if name == "listCallbackUrl":
            if self.callback_url is None:
                raise ExpressionError("listCallbackUrl() is only valid inside an HttpWebhook action")
            return self.callback_url
        if name == "workflow":
            return {
                "id": self.run.workflow.resource_id,
                "name": self.run.workflow.name,
                "run": {"id": self.run.resource_id, "name": self.run.name},
            }
        if name == "concat":
            return "".join(_as_text(arg) for arg in args)
        if name == "string":
            return _as_text(args[0])
        if name == "json":
            try:
                return json.loads(args[0])
            except (TypeError, ValueError) as exc:
                raise ExpressionError(f"json() got a value that is not JSON: {exc}") from None
        if name == "coalesce":
            return next((arg for arg in args if arg is not None), None)
        raise ExpressionError(f"unknown function {name}")  # parse_template refuses these at save
