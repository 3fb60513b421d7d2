"""turnout.metadata.parse_duration: the spellings of a timeout every plugin accepts, and the rest refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from turnout.metadata import parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20, timedelta(seconds=20)),
        (2.5, timedelta(seconds=2.5)),
        ("20", timedelta(seconds=20)),
        (" 0.5 ", timedelta(seconds=0.5)),
        ("500ms", timedelta(milliseconds=500)),
        ("1m30s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("PT1M", timedelta(minutes=1)),
        ("pt2h", timedelta(hours=2)),
        (timedelta(seconds=3), timedelta(seconds=3)),
    ],
)
def test_accepted_spellings(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "a duration such as '30s'"),
        ("10 s", "a duration such as '30s'"),
        ("-1", "a duration such as '30s'"),
        ("P1Q", "a duration such as '30s'"),
        (True, "a duration such as '30s'"),
        (None, "a duration such as '30s'"),
        (0, "a positive duration"),
        ("0s", "a positive duration"),
        (-5, "a positive duration"),
    ],
)
def test_refused_with_what_was_expected(value: Any, message: str) -> None:
    with pytest.raises(PydanticCustomError) as caught:
        parse_duration(value)
    assert message in str(caught.value)


def test_zero_when_allowed() -> None:
    assert parse_duration("0", allow_zero=True) == timedelta(0)
    with pytest.raises(PydanticCustomError, match="a positive duration or 0"):
        parse_duration(-1, allow_zero=True)
