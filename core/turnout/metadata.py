"""Helpers for plugin authors' metadata models: errors Turnout reports well.

A plugin's pydantic model is the validation of its component metadata. The
spec loader turns each pydantic error into a line naming the file, the
component and the field; these helpers make the errors of rules that span
fields land on a field (never on the whole model, whose input holds every
value, secrets included) with the plugin's own words.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["field_error", "invalid", "missing", "parse_duration"]

_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_GO_DURATION_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


@functools.cache
def _iso_duration() -> TypeAdapter[timedelta]:
    # Built on first use: building it costs about 20 ms, and most runs never read ISO text.
    return TypeAdapter(timedelta)


def invalid(kind: str, message: str, **context: Any) -> PydanticCustomError:
    """An error to raise from a field validator, with ``message`` shown as written.

    ``message`` is formatted here with ``context`` (so ``{value!r}`` works); the
    result is kept as it is, braces in user values included, with no
    "Value error, " prefix.
    """
    return PydanticCustomError(kind, message.format(**context))


def field_error(model: str, alias: str, value: Any, kind: str, message: str) -> ValidationError:
    """An error located on one field, for a rule that spans fields (checked after all of them)."""
    details = InitErrorDetails(type=invalid(kind, message), loc=(alias,), input=value)
    return ValidationError.from_exception_data(model, [details])


def missing(model: str, message: str, *aliases: str) -> ValidationError:
    """Fields required because another one is set, as errors of pydantic's type "missing".

    Turnout checks a component file twice: first before secrets are resolved
    (fields read through secretKeyRef are absent then), and again with every
    value. It skips "missing" errors for the fields a secretKeyRef will fill,
    so "secretKey is needed" is not reported when secretKey comes from a secret.
    """
    details = [
        InitErrorDetails(type=PydanticCustomError("missing", message), loc=(alias,), input=None)
        for alias in aliases
    ]
    return ValidationError.from_exception_data(model, details)


def parse_duration(value: Any, *, allow_zero: bool = False) -> timedelta:
    """A positive duration from Go/Dapr text (``30s``, ``1h30m``, ``2d``), ISO 8601 (``PT1H``) or seconds.

    Dapr's components take their timeouts "as a Go duration or number of
    seconds"; the ISO form is what Temporal and the Serverless Workflow users
    write. Raise its error from a ``mode="before"`` field validator. With
    ``allow_zero``, zero is accepted too (for "do not wait" settings).
    """
    result: timedelta | None = None
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip()
        if _SECONDS.fullmatch(text):
            result = timedelta(seconds=float(text))
        elif _GO_DURATION.fullmatch(text):
            parts = _GO_DURATION_PART.findall(text)
            result = sum((float(n) * _GO_DURATION_UNITS[unit] for n, unit in parts), timedelta())
        elif text[:1] in ("P", "p"):
            try:
                result = _iso_duration().validate_python(text.upper())
            except ValidationError:
                result = None
    if result is None:
        raise invalid("duration", "a duration such as '30s', '10m', '1h30m', '2d' or 'PT1H'")
    if result < timedelta() or (result == timedelta() and not allow_zero):
        raise invalid("duration", "a positive duration" + (" or 0" if allow_zero else ""))
    return result
