"""Runtime expressions: jq, as both Serverless Workflow versions define them.

A value written ``${ ... }`` is an expression; some fields (``if``, ``when``,
``for.in``, ``input.from``, ``output.as``, ``export.as`` and 0.8's conditions)
are expressions even when written bare. Compiled programs are cached by text
and variable names: a workflow replays its expressions on every turn, so
compiling once matters.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import jq

_WRAPPED = re.compile(r"^\s*\$\{(?P<body>.*)\}\s*$", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class ExpressionError(Exception):
    """A jq expression that does not compile or fails on its data.

    ``where`` names the place in the definition (a JSON pointer such as
    ``/do/0/setColor/set/color``) so the message can point at it.
    """

    def __init__(self, expression: str, where: str, reason: str) -> None:
        super().__init__(f"{where}: expression {expression!r} failed: {reason}")
        self.expression = expression
        self.where = where
        self.reason = reason


def unwrap(value: Any) -> str | None:
    """The jq text inside ``${ ... }``, or None when ``value`` is not written that way."""
    if not isinstance(value, str):
        return None
    match = _WRAPPED.match(value)
    return match.group("body").strip() if match else None


def is_expression(value: Any) -> bool:
    """Whether ``value`` is a string written ``${ ... }``."""
    return unwrap(value) is not None


@functools.lru_cache(maxsize=4096)
def _compile(text: str, names: tuple[str, ...]) -> Any:
    # jq binds ``$args`` at compile time; to compile once per text, the variables
    # travel in the input instead: ``[data, {name: value}]`` destructured up front.
    try:
        return _compile_exactly(text, names)
    except ValueError:
        # Definitions written for gojq-based runtimes (sdk-go) quote strings with
        # single quotes, which jq does not accept; retry with them double-quoted.
        fixed = _double_quote(text)
        if fixed == text:
            raise
        try:
            return _compile_exactly(fixed, names)
        except ValueError:
            pass
        raise


def _compile_exactly(text: str, names: tuple[str, ...]) -> Any:
    if not names:
        return jq.compile(text)
    bound = ", ".join(f"${name}" for name in names)
    return jq.compile(f".[1] as {{{bound}}} | .[0] | ({text})")


def _double_quote(text: str) -> str:
    """``text`` with its single-quoted string literals rewritten as JSON strings."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':  # skip a double-quoted string, escapes included
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif char == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return text
            out.append(json.dumps(text[i + 1 : j]))
            i = j + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def variables_in(text: str) -> tuple[str, ...]:
    """The ``$names`` an expression refers to (jq's own ``$__loc__`` and ``$ENV`` aside)."""
    return tuple(sorted(set(_VARIABLE.findall(text)) - {"__loc__", "ENV"}))


def check(expression: str, *, where: str = "") -> None:
    """Compile ``expression`` (bare or ``${ }``-wrapped) without running it; ExpressionError if it is not jq.

    Every ``$name`` it uses is taken as bound, so only the syntax is checked:
    which variables exist depends on where the expression runs.
    """
    text = unwrap(expression)
    if text is None:
        text = expression
    try:
        _compile(text, variables_in(text))
    except ValueError as exc:
        raise ExpressionError(expression, where, str(exc)) from None


def evaluate(
    expression: str,
    data: Any,
    variables: Mapping[str, Any] | None = None,
    *,
    where: str = "",
    every: bool = False,
) -> Any:
    """Run one jq expression (bare or ``${ }``-wrapped) over ``data``.

    ``variables`` become jq's ``$name`` arguments (``context`` is ``$context``).
    The first result is returned (None when there is none), or every result
    as a list with ``every=True``.
    """
    text = unwrap(expression)
    if text is None:
        text = expression
    variables = dict(variables or {})
    names = tuple(sorted(variables))
    for name in names:
        if not _NAME.fullmatch(name):
            raise ExpressionError(expression, where, f"variable name {name!r} is not a jq identifier")
    try:
        program = _compile(text, names)
    except ValueError as exc:
        raise ExpressionError(expression, where, str(exc)) from None
    try:
        results = program.input_value([data, variables] if names else data)
        if every:
            return results.all()
        out = results.all()
    except ValueError as exc:
        raise ExpressionError(expression, where, str(exc)) from None
    return out[0] if out else None


def render(value: Any, data: Any, variables: Mapping[str, Any] | None = None, *, where: str = "") -> Any:
    """``value`` with every ``${ }`` string inside it (at any depth) replaced by its result.

    Used for ``set``, ``with`` arguments, headers, bodies and event attributes:
    plain strings and other values stay as they are.
    """
    if isinstance(value, str):
        return evaluate(value, data, variables, where=where) if is_expression(value) else value
    if isinstance(value, Mapping):
        return {
            key: render(item, data, variables, where=f"{where}/{_escape(str(key))}")
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [render(item, data, variables, where=f"{where}/{index}") for index, item in enumerate(value)]
    return value


def _escape(token: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")
