"""The PostgreSQL server restarts under running workers: they reconnect with back-off and finish everything.

Each test runs its own throwaway cluster (``pg_cluster.py``: initdb into a
temporary folder, ``pg_ctl`` on a free loopback port), never the machine's
shared server. Two worker processes (``multiworker_worker.py``) run 150
instances of a 5-step workflow on it; once a measured number of activities
has run, the server goes away:

- ``restart``: ``pg_ctl restart -m fast`` (sessions are terminated, the server
  is back within a fraction of a second);
- ``restart-late``: the same, when only the last few activities are left, so
  that their results are in flight (nothing else will come to retry them);
- ``crash``: ``pg_ctl stop -m immediate`` (a crash: in-flight transactions are
  lost, recovery runs at the next start), and the server stays down until
  both workers have noticed and the 2 s leases have expired, so that the
  workers come back to a database where nobody holds a lease.

Then every instance must complete with each step once in its history, the
same checks as the multi-worker test (``check_fleet``), and the workers must
stop cleanly. Errors that the workers log because the server was away are
expected and counted (a loop that fails backs off and restarts); any other
error fails the test, as does a loop that retries without backing off.
"""

from __future__ import annotations

import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from multiworker_worker import STEPS, Fleet, check_fleet, wait_until
from pg_cluster import PgCluster, wait_accepting

WORKERS = 2
INSTANCES = 150
LEASE = 2.0
SEED = 20240613
FINISH_TIMEOUT = 60.0
FREEZE_STORE_TIMEOUT = 1.5
"""The store's ``timeout`` in the freeze: a call to the frozen server is cut after twice this."""

CONNECTION_TROUBLE = re.compile(
    r"connection|server closed|terminating|shutting down|starting up|refused|consuming input|"
    r"PoolTimeout|couldn't get|admin_shutdown|AdminShutdown|recovery mode|has not answered",
    re.IGNORECASE,
)
"""What an error caused by the server being away says (psycopg's and libpq's messages)."""

LOOP_FAILED = re.compile(r"^(?P<at>\d\d:\d\d:\d\d\.\d{3}) .*engine loop (?P<loop>\w+) failed")


def _loop_failures(fleet: Fleet, index: int) -> dict[str, list[float]]:
    """When each engine loop of a worker failed (seconds of the day), by loop name."""
    found: dict[str, list[float]] = {}
    for line in fleet.log(index).splitlines():
        match = LOOP_FAILED.match(line)
        if match:
            at = datetime.strptime(match.group("at"), "%H:%M:%S.%f")
            seconds = at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6
            found.setdefault(match.group("loop"), []).append(seconds)
    return found


@pytest.mark.timeout(150)
@pytest.mark.parametrize("outage", ["restart", "crash", "restart-late", "freeze"])
def test_workers_survive_a_server_outage(
    outage: str,
    cluster: PgCluster,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The server restarts, crashes (down past the leases) or freezes (SIGSTOP: connections stay
    open, nothing answers, past the leases) mid-run: all complete, each step once."""
    rng = random.Random(f"{SEED}-{outage}")
    fleet = Fleet(
        tmp_path,
        cluster.conninfo,
        "restart_test",
        workers=WORKERS,
        instances=INSTANCES,
        lease=LEASE,
        timeout=FREEZE_STORE_TIMEOUT if outage == "freeze" else None,
    )
    fleet.create_schema()
    try:
        began = time.monotonic()
        fleet.start_all()
        total = INSTANCES * STEPS
        if outage == "restart-late":
            target = total - rng.randint(2, 10)  # the last results are in flight
        else:
            target = rng.randint(total // 5, total // 2)
        fleet.wait_for_executions(target, FINISH_TIMEOUT)
        lines_at_outage = fleet.journal_lines()
        noticed_before = [len(fleet.records(i, ("WARNING", "ERROR"))) for i in range(WORKERS)]
        down_at = time.monotonic()

        def noticed(what: str, since: float, seen: Callable[[int], bool]) -> None:
            """Until every worker has seen the outage (``seen(worker)``), and the leases expired."""
            wait_until(
                lambda: all(seen(i) for i in range(WORKERS)) and time.monotonic() - since > 1.5 * LEASE,
                30,
                f"every worker to {what}, and the leases to expire",
                fleet,
                interval=0.05,
            )

        if outage.startswith("restart"):
            cluster.restart("fast")
        elif outage == "freeze":
            with cluster.frozen():
                # Without the client's deadline, the calls in flight would wait for ever.
                noticed(
                    "cut a call to the frozen server",
                    time.monotonic(),
                    lambda i: any("has not answered" in r for r in fleet.records(i, ("WARNING",))),
                )
        else:
            cluster.stop("immediate")
            noticed(
                "notice the crash",
                time.monotonic(),
                lambda i: len(fleet.records(i, ("WARNING", "ERROR"))) > noticed_before[i],
            )
            cluster.start()
        wait_accepting(cluster.conninfo)
        up_at = time.monotonic()
        wait_until(
            lambda: fleet.finished() == INSTANCES,
            FINISH_TIMEOUT,
            f"all {INSTANCES} instances to finish after the server came back",
            fleet,
            interval=0.05,
        )
        done = time.monotonic()
        codes = fleet.stop()
        assert all(code == 0 for code in codes.values()), f"workers exited {codes}\n{fleet.logs()}"
        try:
            figures = check_fleet(fleet)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n(folder {tmp_path})") from None
    finally:
        fleet.kill_all()

    expected: Counter[str] = Counter()
    unexpected: list[str] = []
    for index in range(WORKERS):
        for record in fleet.records(index):
            if CONNECTION_TROUBLE.search(record):
                expected[record.split(" [")[0]] += 1
            else:
                unexpected.append(f"worker {index}: {record}")
    failures = {i: _loop_failures(fleet, i) for i in range(WORKERS)}
    most = max((len(times) for per_loop in failures.values() for times in per_loop.values()), default=0)
    outage_seconds = up_at - down_at
    summary = (
        f"server {outage} after {lines_at_outage} of {INSTANCES * STEPS} activity executions "
        f"({down_at - began:.1f} s in): down {outage_seconds:.2f} s; all {INSTANCES} instances done "
        f"{done - up_at:.1f} s after it came back; {figures.executions} executions, {figures.run_twice} ran "
        f"twice; {figures.instances_moved} instances moved between workers; errors logged for the outage: "
        f"{sum(expected.values())} ({dict(expected)}); loop failures per worker: "
        + "; ".join(
            f"worker {i}: " + ", ".join(f"{loop} x{len(times)}" for loop, times in sorted(per_loop.items()))
            for i, per_loop in failures.items()
        )
    )
    record_property(f"pg_{outage}_down_seconds", round(outage_seconds, 3))
    record_property(f"pg_{outage}_finish_seconds", round(done - up_at, 3))
    record_property(f"pg_{outage}_activities_run_twice", figures.run_twice)
    with capsys.disabled():
        print(f"\n{summary}")
    assert not unexpected, "errors that the outage does not explain:\n" + "\n".join(unexpected)
    # With back-off (50 ms, doubling, at most 5 s) a loop fails a handful of times per outage;
    # a loop that retried in a tight loop would fail hundreds of times.
    assert most <= 10 + outage_seconds, f"a loop failed {most} times in a {outage_seconds:.1f} s outage"
