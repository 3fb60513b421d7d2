"""When a definition's instances start by themselves: its schedule, in either dialect, and its fire times.

Pure functions and a frozen value: the model checks schedules with them at
load time, and the scheduler workflow computes fire times with them from
``ctx.current_utc_datetime``, so a replay computes the same times.

- 1.0 ``schedule``: ``every`` (a duration), ``cron``, ``after`` (a duration
  after the previous run ended) or ``on`` (an event consumption strategy).
- 0.8 ``start.schedule``: ``interval`` (an ISO 8601 *repeating* interval such
  as ``R/PT1H``, ``R5/2026-01-01T00:00:00Z/PT1H`` or ``R/PT1H/2026-12-31T00:00:00Z``),
  ``cron`` (an expression, or ``{expression, validUntil}``) and ``timezone``;
  and an ``event`` start state, whose events start instances.

Cron expressions have five fields (minute hour day month weekday) or six,
seconds first (Quartz's order, which the 0.8 examples use); ``?`` is read as
``*``. They are evaluated by ``cronsim``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._durations import DurationError, parse_duration

Kind = Literal["every", "cron", "after", "on", "event"]
_REPEATING = re.compile(r"^R(\d*)/(.+)$")


def schedule_keys(spec: Mapping[Any, Any]) -> dict[str, Any]:
    """A 1.0 ``schedule`` with string keys: YAML 1.1 (PyYAML) reads the key ``on`` as ``true``."""
    return {("on" if key is True else str(key)): value for key, value in spec.items()}


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says what is expected."""


@dataclass(frozen=True)
class Schedule:
    """A definition's schedule, normalized.

    ``kind`` says what starts instances: a period (``every``: 1.0 ``every``,
    0.8 ``interval``), a ``cron`` expression, the end of the previous run
    (``after``), matching events (``on``: 1.0 ``schedule.on``; ``event``: a
    0.8 event start state). ``first``, ``until`` and ``count`` bound a 0.8
    interval or cron; ``timezone`` is where a cron expression is read.
    """

    kind: Kind
    period: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"
    first: datetime | None = None
    until: datetime | None = None
    count: int | None = None

    def following(self, moment: datetime, anchor: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (None when there is none any more).

        A period counts from ``first`` when the schedule gives one, else from
        ``anchor`` (when the scheduler started), so fire times stay aligned.
        """
        found: datetime | None
        if self.kind == "every":
            assert self.period is not None
            start = self.first or anchor
            if moment < start:
                found = start
            else:
                steps = (moment - start) // self.period + 1
                found = start + self.period * steps
        elif self.kind == "cron":
            assert self.cron is not None
            found = next_cron(self.cron, moment, self.timezone)
        else:
            raise ValueError(f"a schedule of kind {self.kind!r} has no fire times")
        if found is not None and self.until is not None and found > self.until:
            return None
        return found


def normalize_cron(expression: Any) -> str:
    """A cron expression as cronsim reads it; ScheduleError says what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError("expected a cron expression such as '*/5 * * * *' (a string)")
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"{expression!r} has {len(fields)} fields: expected 5 (minute hour day month weekday) "
            "or 6 (seconds first)"
        )
    text = " ".join("*" if field == "?" else field for field in fields)
    try:  # imported here: only definitions with a cron need it
        from cronsim import CronSim, CronSimError
    except ImportError:
        raise ScheduleError(
            "cron schedules need the cronsim package: pip install 'turnout[declarative]'"
        ) from None

    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ScheduleError(f"{expression!r} is not a valid cron expression: {exc}") from None
    return text


def next_cron(expression: str, moment: datetime, timezone: str = "UTC") -> datetime | None:
    """The first time after ``moment`` that the (normalized) expression names, in UTC."""
    from cronsim import CronSim

    zone = ZoneInfo(timezone)
    try:
        return next(CronSim(expression, moment.astimezone(zone))).astimezone(UTC)
    except StopIteration:
        return None


def check_timezone(name: Any) -> str:
    """An IANA time zone name (``Europe/Paris``); ScheduleError otherwise."""
    if not isinstance(name, str):
        raise ScheduleError("expected an IANA time zone name such as 'Europe/Paris'")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}: expected an IANA name such as 'Europe/Paris'"
        ) from None
    return name


def parse_moment(text: Any, timezone: str = "UTC") -> datetime:
    """An ISO 8601 date-time; one without an offset is read in ``timezone``."""
    if not isinstance(text, str):
        raise ScheduleError(f"expected an ISO 8601 date-time, not {text!r}")
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"{text!r} is not an ISO 8601 date-time such as '2026-01-01T08:00:00Z'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


def positive_duration(value: Any) -> timedelta:
    """A literal duration longer than zero (a schedule is read before any data exists: no expressions)."""
    if isinstance(value, str) and "${" in value:
        raise ScheduleError("expected a literal duration: a schedule is read before any instance exists")
    try:
        duration = parse_duration(value)
    except DurationError as exc:
        raise ScheduleError(str(exc)) from None
    if duration <= timedelta(0):
        raise ScheduleError(f"{value!r} is not longer than zero")
    return duration


def parse_interval(text: Any, timezone: str = "UTC") -> Schedule:
    """A 0.8 ``interval``: an ISO 8601 *repeating* interval (``R/PT1H``, ``R3/<t>/PT1H``, ``R/PT1H/<t>``).

    A count (``R3``) bounds the runs, a start anchors them, an end stops them.
    """
    match = _REPEATING.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(
            f"{text!r} is not an ISO 8601 repeating interval: expected R/<duration>, "
            "R<n>/<start>/<duration> or R/<duration>/<end> (e.g. 'R/PT1H')"
        )
    count = int(match.group(1)) if match.group(1) else None
    if count == 0:
        raise ScheduleError(f"{text!r} repeats zero times")
    parts = match.group(2).split("/")
    first = until = None
    if len(parts) == 1:
        period = positive_duration(parts[0])
    elif len(parts) == 2 and parts[0].upper().startswith("P"):
        period, until = positive_duration(parts[0]), parse_moment(parts[1], timezone)
    elif len(parts) == 2:
        first, period = parse_moment(parts[0], timezone), positive_duration(parts[1])
    else:
        raise ScheduleError(
            f"{text!r}: expected at most two parts after R/ (a start or an end, and a duration)"
        )
    return Schedule("every", period=period, first=first, until=until, count=count, timezone=timezone)
