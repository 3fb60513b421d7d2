"""Payloads are JSON; pydantic models and dataclasses go in and come back out as such.

A function's annotations decide the Python type a JSON payload becomes: the
second parameter of a workflow or activity types its input, the return
annotation types its result. Unannotated payloads stay plain JSON values.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, get_type_hints

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from ._errors import InvalidArgument


def to_json_value(value: Any, *, what: str = "value") -> Any:
    """A JSON-compatible copy of ``value`` (models and dataclasses become dicts)."""
    try:
        return to_jsonable_python(value)
    except Exception as exc:  # pydantic raises its own PydanticSerializationError
        raise InvalidArgument(what, value, f"a JSON-serialisable value ({exc})") from exc


# One encoder for every payload: json.dumps builds a new one for each call that passes options.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any, *, what: str = "value") -> str | None:
    """JSON text of ``value``; None stays None so that "no payload" is distinct from ``null``."""
    if value is None:
        return None
    text = _ENCODER.encode(to_json_value(value, what=what))
    if not text.isascii():
        # A lone surrogate ("\ud800") is a Python str but no store can keep it: refused
        # here, where the caller can be told, rather than failing the commit that holds it.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            where = text[max(exc.start - 20, 0) : exc.start].encode("unicode_escape").decode()
            raise InvalidArgument(
                what, value, f"text that is valid Unicode (a lone surrogate follows {where!r})"
            ) from None
    return text


def loads(text: str | None) -> Any:
    """The inverse of :func:`dumps`."""
    if text is None:
        return None
    return json.loads(text)


_IDENTITY_TYPES = (inspect.Parameter.empty, Any, object)


@lru_cache(maxsize=1024)
def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    if annotation in _IDENTITY_TYPES:
        return None
    return TypeAdapter(annotation)


def coerce(value: Any, annotation: Any) -> Any:
    """``value`` (JSON) as an instance of ``annotation``; unchanged when not annotated."""
    adapter = _adapter(annotation)
    if adapter is None or value is None:
        return value
    return adapter.validate_python(value)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to plain JSON
        return {}


def parameter_count(fn: Callable[..., Any]) -> int:
    """How many positional parameters ``fn`` takes (context, then optional input)."""
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(params)


def input_annotation(fn: Callable[..., Any]) -> Any:
    """The annotation of ``fn``'s input (its second positional parameter)."""
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) < 2:
        return inspect.Parameter.empty
    return _hints(fn).get(params[1].name, inspect.Parameter.empty)


def output_annotation(fn: Callable[..., Any]) -> Any:
    """The return annotation of ``fn`` (generator return types are taken from ``Generator[..., R]``)."""
    hint = _hints(fn).get("return", inspect.Parameter.empty)
    origin = getattr(hint, "__origin__", None)
    if origin is not None and getattr(origin, "__name__", "") in {"Generator", "Coroutine"}:
        args = getattr(hint, "__args__", ())
        return args[-1] if args else inspect.Parameter.empty
    return hint
