"""Crash test: SIGKILL the engine's process mid-workflow, start a new one, check nothing is lost or repeated.

Each run starts ``crash_worker.py`` (a 10-step workflow: activities, a retried
activity, a durable timer, a child workflow, an external event and a when_all
fan-out) on a fresh SQLite file, kills it with SIGKILL once or twice, then
lets a last worker finish. A kill lands after a number of journal lines
(activity executions) drawn at random, or, for a restarted worker, right
after it has taken the engine over (while it replays and resumes). The runs
use a fixed seed, so kill targets are reproducible; the exact instant of a
kill still depends on scheduling, which is the point.

What must hold (DESIGN.md, "The built-in durable engine"):

- every instance completes with the right output (nothing lost, none stuck);
- the history holds each step exactly once: every task id scheduled once and
  completed once, one event raised, one WorkflowStarted, one WorkflowCompleted;
- every activity ran at least once, and none ran for a task the history lacks.

Activities run at least once, so some executions repeat after a kill; the test
counts and reports them (printed, and as the ``activities_run_twice`` property).

For a longer soak, set TURNOUT_CRASH_SEED and TURNOUT_CRASH_RUNS.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import crash_worker  # the worker's workflow is the single source of the expected results

SEED = int(os.environ.get("TURNOUT_CRASH_SEED", "20240611"))
RUNS = int(os.environ.get("TURNOUT_CRASH_RUNS", "20"))
INSTANCES = 3
EXECUTIONS_PER_INSTANCE = 10
"""Activity executions of one instance with no crash: 6 steps, charge twice (retry), 2 in the child."""
WORKER = Path(__file__).with_name("crash_worker.py")
SCHEDULED = {"TaskScheduled", "TimerCreated", "ChildWorkflowScheduled"}
FINISHED = {"TaskCompleted", "TaskFailed", "TimerFired", "ChildWorkflowCompleted", "ChildWorkflowFailed"}
PARENT_STEPS = {0: "step", 1: "charge", 2: None, 3: "child"} | dict.fromkeys(range(4, 9), "step")


@dataclass
class Tally:
    """Figures over all runs, for the report."""

    runs: int = 0
    kills: int = 0
    executions: int = 0
    run_twice: int = 0
    max_runs: int = 1
    kill_points: Counter[str] = field(default_factory=Counter)


def _lines(journal: Path) -> list[str]:
    try:
        return journal.read_text().splitlines()
    except FileNotFoundError:
        return []


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition (cheaply, every 2 ms) until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.002)


def _lines_or_exit(journal: Path, target: int, proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    """Kill point: the journal holds ``target`` lines (or the worker has already exited)."""
    return lambda: len(_lines(journal)) >= target or proc.poll() is not None


def _file_or_exit(path: Path, proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    """Kill point: the worker wrote ``path`` (or has already exited)."""
    return lambda: path.exists() or proc.poll() is not None


def _worker(folder: Path, number: int) -> subprocess.Popen[bytes]:
    log = open(folder / f"worker-{number}.log", "wb")  # noqa: SIM115 - handed to the child process
    try:
        return subprocess.Popen(
            [sys.executable, str(WORKER), str(folder), str(INSTANCES)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    finally:
        log.close()


def _check_history(iid: str, history: list[list[Any]], parent: bool) -> None:
    """Each step exactly once: scheduled once, finished once, one start, one end."""
    kinds = Counter(kind for kind, _name, _task in history)
    assert kinds["WorkflowStarted"] == 1, f"{iid}: {kinds['WorkflowStarted']} WorkflowStarted events"
    assert kinds["WorkflowCompleted"] == 1, f"{iid}: {kinds['WorkflowCompleted']} WorkflowCompleted events"
    assert history[-1][0] == "WorkflowCompleted", f"{iid}: history does not end with WorkflowCompleted"
    assert kinds["TaskFailed"] == 0, (
        f"{iid}: an activity failed for good (the retry policy allows 3 attempts)"
    )
    scheduled = Counter(task for kind, _name, task in history if kind in SCHEDULED)
    finished = Counter(task for kind, _name, task in history if kind in FINISHED)
    repeated = {t: n for t, n in scheduled.items() if n != 1}
    assert not repeated, f"{iid}: task ids scheduled more than once: {repeated}"
    repeated = {t: n for t, n in finished.items() if n != 1}
    assert not repeated, f"{iid}: task ids completed more than once: {repeated}"
    assert set(finished) == set(scheduled), (
        f"{iid}: scheduled {sorted(scheduled)} but finished {sorted(finished)}"
    )
    assert sorted(scheduled) == list(range(len(scheduled))), (
        f"{iid}: task ids are not 0..n-1: {sorted(scheduled)}"
    )
    if parent:
        names = {task: name for kind, name, task in history if kind in SCHEDULED}
        assert names == PARENT_STEPS, f"{iid}: steps {names}, expected {PARENT_STEPS}"
        assert kinds["EventRaised"] == 1, f"{iid}: {kinds['EventRaised']} EventRaised events"
    else:
        assert len(scheduled) == 2, f"{iid}: the child scheduled {len(scheduled)} steps, expected 2"


def _check_run(folder: Path, tally: Tally) -> None:
    data = json.loads((folder / "report.json").read_text())
    activities: dict[tuple[str, int], str] = {}
    for n, iid in enumerate(crash_worker.instance_ids(INSTANCES)):
        state = data.get(iid)
        assert state is not None, f"{iid} was never started"
        assert state["status"] == "COMPLETED", f"{iid} ended {state['status']}: {state['failure']}"
        assert state["output"] == crash_worker.expected_output(n * 10, crash_worker.event_value(iid))
    for iid, state in data.items():
        assert state is not None and state["status"] == "COMPLETED", f"{iid}: {state}"
        _check_history(iid, state["history"], parent=iid.count(":") == 0)
        for kind, name, task in state["history"]:
            if kind == "TaskScheduled":
                activities[(iid, task)] = name

    journal = Counter()
    for line in _lines(folder / "journal.txt"):
        iid, task, attempt, name, _pid = line.split()
        key = (iid, int(task))
        assert activities.get(key) == name, (
            f"activity {name} ran for {key}, which the history does not schedule"
        )
        journal[(iid, int(task), int(attempt))] += 1
    ran = {(iid, task) for iid, task, _attempt in journal}
    missing = set(activities) - ran
    assert not missing, f"activities scheduled but never run: {sorted(missing)}"
    for (iid, task), name in activities.items():
        if name == "charge":
            assert journal[(iid, task, 1)] >= 1 and journal[(iid, task, 2)] >= 1, f"{iid}: charge not retried"
    tally.executions += sum(journal.values())
    tally.run_twice += sum(1 for count in journal.values() if count > 1)
    tally.max_runs = max(tally.max_runs, *journal.values())


@pytest.mark.timeout(180)
def test_sigkill_mid_workflow_loses_and_repeats_nothing(
    tmp_path: Path, record_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """20 runs x 3 instances, each run killed once or twice; the last worker must finish cleanly."""
    rng = random.Random(SEED)
    tally = Tally()
    total = INSTANCES * EXECUTIONS_PER_INSTANCE
    started = time.monotonic()
    for run in range(RUNS):
        folder = tmp_path / f"run{run:02d}"
        folder.mkdir()
        journal = folder / "journal.txt"
        planned = rng.choice([1, 2, 2])
        kills: list[str] = []
        for attempt in range(planned):
            done = len(_lines(journal))
            proc = _worker(folder, attempt)
            if attempt > 0 and rng.random() < 0.5:
                # Right after a restart: the new worker is replaying and resuming what the last one left.
                kind, point = "recovery", "on recovery"
                condition = _file_or_exit(folder / f"ready-{proc.pid}", proc)
            else:
                target = done + rng.randint(1, max(1, total - done - 1))
                kind, point = "mid-workflow", f"after {target} journal lines"
                condition = _lines_or_exit(journal, target, proc)
            jitter = rng.uniform(0.0, 0.015)
            _wait_until(condition, 30, f"run {run}: kill point {point}")
            if proc.poll() is not None:
                break  # finished before the kill point: nothing to kill
            time.sleep(jitter)  # spreads kills inside a step; not needed for correctness
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills.append(f"{point} + {jitter * 1000:.0f} ms")
            tally.kill_points[kind] += 1
        final = _worker(folder, planned)
        try:
            code = final.wait(timeout=60)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait()
            pytest.fail(f"run {run} (seed {SEED}): the last worker did not finish; kills: {kills}")
        log = (folder / f"worker-{planned}.log").read_text()
        assert code == 0, f"run {run} (seed {SEED}, kills {kills}): worker exited {code}\n{log}"
        try:
            _check_run(folder, tally)
        except AssertionError as exc:
            raise AssertionError(f"run {run} (seed {SEED}, folder {folder}, kills {kills}): {exc}") from None
        tally.runs += 1
        tally.kills += len(kills)

    elapsed = time.monotonic() - started
    summary = (
        f"crash test: {tally.runs} runs x {INSTANCES} instances, {tally.kills} SIGKILLs "
        f"({tally.kill_points['mid-workflow']} mid-workflow, {tally.kill_points['recovery']} on recovery), "
        f"{tally.executions} activity executions, {tally.run_twice} ran more than once "
        f"(at most {tally.max_runs} times), {elapsed:.1f} s"
    )
    for name, value in [
        ("crash_runs", tally.runs),
        ("crash_kills", tally.kills),
        ("activity_executions", tally.executions),
        ("activities_run_twice", tally.run_twice),
    ]:
        record_property(name, value)
    with capsys.disabled():
        print(f"\n{summary}")
    assert tally.kill_points["mid-workflow"] >= RUNS, summary
