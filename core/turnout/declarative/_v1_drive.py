"""Driving generators of Turnout tasks: several at once, or one against a deadline.

The interpreter's task runners are generators that yield Turnout tasks and
get their results back, as workflow code does. These combinators drive such
generators themselves (``send`` / ``throw``) so that several can wait at once
(``fork``) or one can race a durable timer (``timeout``), using only
``when_any``: deterministic, so replay takes the same path.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import turnout

Steps = Generator[Any, Any, Any]


def interleave(branches: list[Steps], *, compete: bool) -> Steps:
    """Drive several task generators at once: each yields its next task, ``when_any`` picks.

    Returns ``(results, order)``: each branch's return value by index, and
    the order they finished in. With ``compete`` it stops at the first to
    finish; the others' tasks are abandoned (their results unused), as
    ``when_any`` does. A branch that raises stops them all.
    """
    pending: dict[int, turnout.Task[Any]] = {}
    results: dict[int, Any] = {}
    order: list[int] = []

    def advance(index: int, value: Any = None, error: BaseException | None = None) -> None:
        branch = branches[index]
        try:
            step = branch.throw(error) if error is not None else branch.send(value)
        except StopIteration as stop:
            results[index] = stop.value
            order.append(index)
        else:
            pending[index] = step

    try:
        for index in range(len(branches)):
            advance(index)
            if compete and order:  # finished without waiting: later branches never start
                return results, order
        while pending:
            keys = sorted(pending)
            winner = yield turnout.when_any([pending[k] for k in keys])
            index = next(k for k in keys if pending[k] is winner)
            del pending[index]
            try:
                value = winner.get_result()
            except turnout.TaskFailedError as exc:
                advance(index, error=exc)
            else:
                advance(index, value)
            if compete and order:
                break
        return results, order
    finally:
        for index in pending:
            branches[index].close()


def with_deadline(
    ctx: turnout.WorkflowContext, steps: Steps, limit: timedelta, timed_out: BaseException
) -> Steps:
    """Run ``steps`` racing a durable timer of ``limit``; raise ``timed_out`` if the timer wins.

    The timer starts at the first task ``steps`` waits on (code between two
    yields takes no workflow time); the abandoned task's result is unused.
    """
    deadline: turnout.Task[Any] | None = None
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        if deadline is None:
            deadline = ctx.create_timer(limit)
        winner = yield turnout.when_any([step, deadline])
        if winner is deadline:
            steps.close()
            raise timed_out
        try:
            value, error = step.get_result(), None
        except turnout.TaskFailedError as exc:
            value, error = None, exc
