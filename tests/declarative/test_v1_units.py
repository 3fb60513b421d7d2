"""The pure parts: durations, retry backoff, faults and expressions, without an engine."""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

import turnout
import turnout.declarative
from turnout.declarative._durations import DurationError, backoff_delay, jittered, parse_duration
from turnout.declarative._effects import rewrite
from turnout.declarative._expressions import ExpressionError, check, evaluate, render, variables_in
from turnout.declarative._faults import (
    failure_exception,
    fault_from_failure,
    make_fault,
    same_type,
)
from turnout.declarative._v1_drive import interleave, with_deadline


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PT30S", timedelta(seconds=30)),
        ("PT0.25S", timedelta(milliseconds=250)),
        ("P1DT2H3M", timedelta(days=1, hours=2, minutes=3)),
        ("P2W", timedelta(weeks=2)),
        ("pt1h", timedelta(hours=1)),
        ({"seconds": 30}, timedelta(seconds=30)),
        ({"days": 1, "hours": 2, "minutes": 3, "seconds": 4, "milliseconds": 5}, timedelta(1, 7384, 5000)),
    ],
)
def test_durations(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["P1Y", "P1M", "PT", "P", "30s", {"weeks": 1}, {}, {"seconds": -1}, 30])
def test_bad_durations(value: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)


def test_backoff() -> None:
    three = timedelta(seconds=3)
    assert [backoff_delay(three, "constant", n).seconds for n in (1, 2, 3)] == [3, 3, 3]
    assert [backoff_delay(three, "linear", n).seconds for n in (1, 2, 3)] == [3, 6, 9]
    assert [backoff_delay(three, "exponential", n).seconds for n in (1, 2, 3, 4)] == [3, 6, 12, 24]
    assert jittered(three, timedelta(seconds=1), timedelta(seconds=3), 0.5) == timedelta(seconds=5)
    with pytest.raises(ValueError):
        backoff_delay(three, "constant", 0)


def test_error_types_match_across_spellings_of_the_standard_kinds() -> None:
    spec = "https://serverlessworkflow.io/spec/1.0.0/errors/communication"
    assert same_type("https://serverlessworkflow.io/dsl/errors/types/communication", spec)
    assert same_type(spec, spec)
    assert not same_type("https://serverlessworkflow.io/dsl/errors/types/timeout", spec)
    assert not same_type("https://example.com/errors/communication", spec)


def test_faults_travel_as_failures() -> None:
    fault = make_fault("timeout", title="Too slow", instance="/do/0/wait")
    assert fault == {
        "type": "https://serverlessworkflow.io/spec/1.0.0/errors/timeout",
        "status": 408,
        "title": "Too slow",
        "instance": "/do/0/wait",
    }
    exc = failure_exception(fault)
    assert type(exc).__name__ == fault["type"]  # engines record the class name as the error type
    assert json.loads(str(exc)) == fault
    assert fault_from_failure(type(exc).__name__, str(exc), instance="/elsewhere") == fault
    assert fault_from_failure("ValueError", "boom", instance="/do/1/x") == {
        "type": "https://serverlessworkflow.io/spec/1.0.0/errors/runtime",
        "status": 500,
        "title": "Task failed",
        "detail": "ValueError: boom",
        "instance": "/do/1/x",
    }


def test_expressions() -> None:
    assert evaluate("${ .a + $b }", {"a": 1}, {"b": 2}) == 3
    assert evaluate(".a", {"a": [1]}) == [1]
    assert evaluate("${ .[] }", [1, 2], every=True) == [1, 2]
    # Single-quoted strings, as gojq-based runtimes accept them.
    assert evaluate("${ .first + ' ' + .last }", {"first": "Ada", "last": "Lovelace"}) == "Ada Lovelace"
    assert evaluate('${ "it\'s" }', None) == "it's"
    assert render({"x": "${ .a }", "y": ["${ .b }", "plain"], "z": 3}, {"a": 1, "b": 2}) == {
        "x": 1,
        "y": [2, "plain"],
        "z": 3,
    }
    assert variables_in("$input.a + $item + $__loc__ + $ENV.HOME") == ("input", "item")
    check("${ $whatever | .x }")
    with pytest.raises(ExpressionError) as caught:
        check("${ .a | | .b }", where="/do/0/x/set/y")
    assert str(caught.value).startswith("/do/0/x/set/y: expression '${ .a | | .b }' failed: jq: error")


def test_endpoint_rewriting_takes_the_longest_prefix() -> None:
    endpoints = {"https://api.example.com": "http://stub", "https://api.example.com/v2": "http://v2"}
    assert rewrite("https://api.example.com/v2/pets", endpoints) == "http://v2/pets"
    assert rewrite("https://api.example.com/v1/pets", endpoints) == "http://stub/v1/pets"
    assert rewrite("https://other.example.com/", endpoints) == "https://other.example.com/"


def test_public_exports() -> None:
    assert turnout.declarative.__all__ == [
        "SCHEDULER_SUFFIX",
        "ClientStarter",
        "Definition",
        "DefinitionError",
        "Settings",
        "Starter",
        "load_definition",
        "parse_definition",
        "register",
        "scheduler_id",
        "start_schedule",
        "starts_instances",
    ]
    assert issubclass(turnout.declarative.DefinitionError, turnout.InvalidArgument)


def _branch(tasks: list[turnout.Task[Any]], name: str) -> Generator[Any, Any, str]:
    seen = []
    for task in tasks:
        seen.append((yield task))
    return f"{name}:{seen}"


def _engine(steps: Generator[Any, Any, Any], finish: list[tuple[turnout.Task[Any], Any]]) -> Any:
    """Play the engine: complete tasks in the order given, and resume ``steps`` as a turn would."""
    yielded = next(steps)
    for task, result in finish:
        task.complete(result)
        try:
            while yielded.is_complete:
                yielded = steps.send(yielded.get_result())
        except StopIteration as stop:
            return stop.value
    raise AssertionError("the steps did not finish")


def test_interleave_keeps_declaration_order_and_compete_takes_the_first() -> None:
    a1, a2, b1 = turnout.Task[Any](), turnout.Task[Any](), turnout.Task[Any]()
    both = interleave([_branch([a1, a2], "a"), _branch([b1], "b")], compete=False)
    results, order = _engine(both, [(b1, "x"), (a1, 1), (a2, 2)])
    assert (results, order) == ({0: "a:[1, 2]", 1: "b:['x']"}, [1, 0])

    c1, d1 = turnout.Task[Any](), turnout.Task[Any]()
    race = interleave([_branch([c1], "c"), _branch([d1], "d")], compete=True)
    results, order = _engine(race, [(d1, "first")])
    assert (results, order) == ({1: "d:['first']"}, [1])


def test_with_deadline_lets_a_fast_task_through_and_stops_a_slow_one() -> None:
    class Clock:
        def __init__(self) -> None:
            self.timers: list[turnout.Task[Any]] = []

        def create_timer(self, fire_at: timedelta) -> turnout.Task[Any]:
            self.timers.append(turnout.Task())
            return self.timers[-1]

    fast, clock = turnout.Task[Any](), Clock()
    steps = with_deadline(clock, _branch([fast], "fast"), timedelta(seconds=1), TimeoutError("late"))  # type: ignore[arg-type]
    assert _engine(steps, [(fast, 1)]) == "fast:[1]"

    slow, clock = turnout.Task[Any](), Clock()
    steps = with_deadline(clock, _branch([slow], "slow"), timedelta(seconds=1), TimeoutError("late"))  # type: ignore[arg-type]
    next(steps)
    clock.timers[0].complete(None)
    with pytest.raises(TimeoutError, match="late"):
        steps.send(clock.timers[0])
