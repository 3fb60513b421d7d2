"""Several workers on one PostgreSQL schema; one is killed, or frozen, mid-run and the others take over.

Three worker processes (``multiworker_worker.py``) share a fresh schema in
the machine's PostgreSQL server, with a 2 s lease so that takeover is quick.
They start 300 instances of a 5-step workflow between them; once a measured
number of activities has run (a journal line each, drawn from a seeded
random range), one worker is killed with SIGKILL. The other two must finish
everything (DESIGN.md, "The built-in durable engine"):

- every instance completes with the right output;
- every history holds each step exactly once (each task scheduled once and
  completed once, in order; one WorkflowStarted, one WorkflowCompleted);
- every activity ran at least once, and none ran for a step the history lacks;
- no two workers applied turns of one instance at once: the turn log, written
  in the transaction of each applied turn, chains (each turn starts from the
  history its predecessor left), and the killed worker applied nothing after
  its death;
- the survivors stop cleanly and logged no engine-loop failure.

A second test stops a worker with SIGSTOP while one of its transactions
holds rows, and leaves it stopped: its kernel keeps its connections up, so
only the other workers can end its session (they do, with their heartbeats),
and all instances must complete; woken, it must stop cleanly, having applied
nothing since.

The test reports (printed, and as properties) how many activities ran twice,
how long the survivors took to take the killed worker's instances and
activities over, and how many turns were refused as stale. Set
TURNOUT_MULTIWORKER_RUNS to repeat the scenario (a soak), TURNOUT_MULTIWORKER_SEED
to move the kill points.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from multiworker_worker import STEPS, Figures, Fleet, check_fleet, wait_until

WORKERS = 3
INSTANCES = 300
LEASE = 2.0
SEED = int(os.environ.get("TURNOUT_MULTIWORKER_SEED", "20240612"))
RUNS = int(os.environ.get("TURNOUT_MULTIWORKER_RUNS", "2"))
FINISH_TIMEOUT = 60.0


def _run_once(tmp: Path, conninfo: str, rng: random.Random) -> tuple[Figures, dict[str, float], list[str]]:
    """One scenario: start, kill one worker mid-run, let the others finish, check everything."""
    total = INSTANCES * STEPS
    fleet = Fleet(
        tmp,
        conninfo,
        f"mw_{uuid.uuid4().hex[:12]}",
        workers=WORKERS,
        instances=INSTANCES,
        lease=LEASE,
    )
    fleet.create_schema()
    try:
        began = time.monotonic()
        fleet.start_all()
        target = rng.randint(total // 5, total // 2)
        fleet.wait_for_executions(target, FINISH_TIMEOUT)
        # The busiest worker (most leased instances) dies, so that there is work to take over.
        leases = fleet.leases()
        victim = max(range(WORKERS), key=lambda index: (leases[index], rng.random()))
        fleet.kill(victim)
        killed_at = time.monotonic()
        lines_at_kill = fleet.journal_lines()
        finished_at_kill = fleet.finished()
        wait_until(
            lambda: fleet.finished() == INSTANCES,
            FINISH_TIMEOUT,
            f"all {INSTANCES} instances to finish after worker {victim} was killed",
            fleet,
            interval=0.05,
        )
        done = time.monotonic()
        codes = fleet.stop()
        assert all(code == 0 for code in codes.values()), f"survivors exited {codes}\n{fleet.logs()}"
        try:
            figures = check_fleet(fleet)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n(folder {tmp}, schema {fleet.schema})") from None
        assert figures.orphans, f"worker {victim} held no lease when it was killed: nothing was taken over"
        # Reported with the figures before they fail the test.
        problems = [f"worker {index}: {record}" for index in codes for record in fleet.records(index)]
        if figures.repeats_without_kill:
            problems.append(
                f"{figures.repeats_without_kill} activities ran twice with no killed worker involved: "
                "a live worker lost its task lock"
            )
        summaries = fleet.summaries()
        timings = {
            "kill_after_executions": float(lines_at_kill),
            "finished_at_kill": float(finished_at_kill),
            "victim_leases": float(leases[victim]),
            "seconds_to_kill": killed_at - began,
            "seconds_after_kill": done - killed_at,
            "refused_turns": float(sum(s["refused"] for s in summaries)),
            "replays": float(sum(s["replays"] for s in summaries)),
        }
        return figures, timings, problems
    finally:
        fleet.kill_all()
        fleet.drop_schema()


@pytest.mark.timeout(90 + 60 * RUNS)
def test_three_workers_one_killed_all_complete_once(
    postgres_conninfo: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """3 workers, 300 instances x 5 steps, one worker SIGKILLed mid-run: all complete, each step once."""
    rng = random.Random(SEED)
    started = time.monotonic()
    lines = []
    problems: list[str] = []
    totals = Figures()
    for run in range(RUNS):
        figures, timings, found = _run_once(tmp_path / f"run{run:02d}", postgres_conninfo, rng)
        problems += found
        totals.executions += figures.executions
        totals.run_twice += figures.run_twice
        totals.max_runs = max(totals.max_runs, figures.max_runs)
        totals.turns += figures.turns
        totals.turn_takeover += figures.turn_takeover
        totals.task_takeover += figures.task_takeover
        lines.append(
            f"run {run}: killed after {timings['kill_after_executions']:.0f} executions "
            f"({timings['finished_at_kill']:.0f} instances done, {timings['seconds_to_kill']:.1f} s in, "
            f"the victim leasing {timings['victim_leases']:.0f}); "
            f"{figures.executions} executions, {figures.run_twice} activities ran twice; "
            f"{figures.turns} turns applied, {timings['refused_turns']:.0f} refused as stale, "
            f"{figures.instances_moved} instances moved between workers ({figures.handovers} handovers, "
            f"{figures.live_handovers} between live workers); "
            f"takeover after the kill (min / median / max): {figures.orphans} leased instances "
            f"{Figures.spread(figures.turn_takeover)}, {len(figures.task_takeover)} activities "
            f"{Figures.spread(figures.task_takeover)}; "
            f"finished {timings['seconds_after_kill']:.1f} s after the kill; "
            f"{len(found)} problems"
        )
    elapsed = time.monotonic() - started
    summary = (
        f"multi-worker test: {RUNS} run(s), {WORKERS} workers, {INSTANCES} instances x {STEPS} steps, "
        f"{RUNS} SIGKILL(s); {totals.executions} activity executions, {totals.run_twice} ran twice "
        f"(at most {totals.max_runs} times); {elapsed:.1f} s\n  " + "\n  ".join(lines)
    )
    for name, value in [
        ("multiworker_runs", RUNS),
        ("multiworker_kills", RUNS),
        ("activity_executions", totals.executions),
        ("activities_run_twice", totals.run_twice),
        ("instance_takeover_max_seconds", round(max(totals.turn_takeover), 3)),
        ("activity_takeover_max_seconds", round(max(totals.task_takeover, default=0.0), 3)),
    ]:
        record_property(name, value)
    with capsys.disabled():
        print(f"\n{summary}")
    # Last, so that the figures above are reported either way. A loop that fails and restarts still
    # lets the work finish, but it logged an error, rolled back its batch and dropped the turn cache.
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


FROZEN_TIMEOUT = 1.0
"""The store's ``timeout`` in the freeze: a frozen worker's session is ended after twice this."""


@pytest.mark.timeout(150)
def test_a_worker_frozen_mid_step_holds_nothing_up(
    postgres_conninfo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker stopped (SIGSTOP) while a transaction of its is open, and left stopped: its kernel
    keeps its connections up, so nothing ends its session but the other workers; all complete."""
    fleet = Fleet(
        tmp_path,
        postgres_conninfo,
        f"mw_{uuid.uuid4().hex[:12]}",
        workers=WORKERS,
        instances=INSTANCES // 2,
        lease=LEASE,
        timeout=FROZEN_TIMEOUT,
    )
    fleet.create_schema()
    try:
        fleet.start_all()
        target = INSTANCES // 2 * STEPS // 4
        fleet.wait_for_executions(target, FINISH_TIMEOUT)
        leases = fleet.leases()
        victim = max(range(WORKERS), key=lambda index: leases[index])
        frozen_at = time.monotonic()
        fleet.freeze_mid_step(victim)
        wait_until(
            lambda: fleet.finished() == INSTANCES // 2,
            FINISH_TIMEOUT,
            f"all {INSTANCES // 2} instances to finish with worker {victim} frozen",
            fleet,
            interval=0.05,
        )
        finished_after = time.monotonic() - frozen_at
        # However little its transaction held up, the other workers end its session.
        wait_until(
            lambda: fleet.held_transactions(victim) == 0,
            FINISH_TIMEOUT,
            f"the other workers to end the session of frozen worker {victim}",
            fleet,
        )
        # Woken, it finds its connection closed and its leases gone; it stops cleanly like the others,
        # and the turn it was committing when it froze is refused (check_fleet: nothing applied since).
        frozen = fleet.procs[victim]
        frozen.send_signal(signal.SIGCONT)
        frozen.send_signal(signal.SIGTERM)
        codes = {victim: frozen.wait(timeout=30), **fleet.stop()}
        assert all(code == 0 for code in codes.values()), f"workers exited {codes}\n{fleet.logs()}"
        figures = check_fleet(fleet)
        ended = [
            record
            for index in codes
            for record in fleet.records(index, levels=("WARNING",))
            if "ended PostgreSQL session" in record
        ]
        assert ended, f"no worker ended the frozen worker's session\n{fleet.logs()}"
        problems = [f"worker {index}: {record}" for index in codes for record in fleet.records(index)]
        with capsys.disabled():
            print(
                f"\nfrozen-worker test: worker {victim} stopped mid-transaction holding "
                f"{len(fleet.orphans[fleet.procs[victim].pid])} leases; all {INSTANCES // 2} finished "
                f"{finished_after:.1f} s later; {figures.run_twice} activities ran twice; {ended[0]}"
            )
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    finally:
        fleet.kill_all()
        fleet.drop_schema()
