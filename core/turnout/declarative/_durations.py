"""Durations as the DSL writes them: ISO 8601 (``PT30S``) or ``{days, hours, ...}``.

Pure functions: the interpreter turns them into durable timers, the model
checks them at load time, and retry backoff is computed here so it can be
tested without an engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

_ISO = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = ("days", "hours", "minutes", "seconds", "milliseconds")


class DurationError(ValueError):
    """A value that is not a duration; the message says which forms are accepted."""


def parse_duration(value: Any) -> timedelta:
    """A ``timedelta`` from an ISO 8601 string or a ``{days, hours, minutes, seconds, milliseconds}`` map.

    Years and months are refused: their length depends on the calendar.
    """
    if isinstance(value, str):
        match = _ISO.match(value.strip().upper())
        if not match:
            raise DurationError(
                f"{value!r} is not an ISO 8601 duration such as 'PT30S' or 'P1DT2H' "
                "(years and months are not accepted: their length varies)"
            )
        parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
        return timedelta(
            weeks=parts.get("weeks", 0),
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        )
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(_UNITS))
        if unknown or not value:
            raise DurationError(
                f"a duration map takes {', '.join(_UNITS)} (at least one)"
                + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "")
            )
        amounts: dict[str, float] = {}
        for unit in _UNITS:
            amount = value.get(unit, 0)
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise DurationError(f"duration {unit} must be a non-negative number, not {amount!r}")
            amounts[unit] = float(amount)
        return timedelta(**amounts)
    raise DurationError(
        f"{value!r} is not a duration: write an ISO 8601 string ('PT30S') or a map such as {{seconds: 30}}"
    )


def backoff_delay(delay: timedelta, backoff: str, retry_number: int) -> timedelta:
    """The wait before retry ``retry_number`` (1 for the first retry).

    ``constant`` waits ``delay`` every time, ``linear`` ``delay * n`` and
    ``exponential`` ``delay * 2 ** (n - 1)``.
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    if backoff == "linear":
        return delay * retry_number
    if backoff == "exponential":
        return delay * (2 ** (retry_number - 1))
    return delay


def jittered(delay: timedelta, low: timedelta, high: timedelta, fraction: float) -> timedelta:
    """``delay`` plus a jitter between ``low`` and ``high``; ``fraction`` in [0, 1) picks where.

    The fraction comes from the workflow's deterministic ids, never from
    ``random``, so a replay computes the same wait.
    """
    return delay + low + (high - low) * fraction
