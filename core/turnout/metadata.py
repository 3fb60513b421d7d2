"""Helpers for plugin authors' metadata models: errors Turnout reports well.

A plugin's pydantic model is the validation of its component metadata. The
spec loader turns each pydantic error into a line naming the file, the
component and the field; these helpers make the errors of rules that span
fields land on a field (never on the whole model, whose input holds every
value, secrets included) with the plugin's own words.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = ["field_error", "invalid", "missing"]


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
