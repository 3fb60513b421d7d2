"""Worker processes sharing one PostgreSQL schema, and the test side that runs and checks them.

Run as a script, this is one worker: it runs the built-in engine on the
``state.postgresql`` component in ``DIR/components.yaml``, starts its share of
the instances (ids ``mw-0000``...; worker ``k`` of ``W`` starts those with
``n % W == k``; an id that exists is not an error), writes ``DIR/ready-k`` and
then works until SIGTERM, when it stops cleanly and writes
``DIR/summary-k.json`` (its engine's counters). SIGKILL is the test's other
way to stop it. Two records let the tests see what each worker did:

- the *journal*: every activity execution appends one fsync'd line
  ``instance task attempt pid time`` before it does its work, so executions
  that ran twice (after a kill) are counted;
- the *turn log*: each applied turn inserts a row in the ``turn_log`` table
  inside the very transaction that applies it (the store's ``_apply_turns`` is
  wrapped in this process only), so the log holds exactly the turns that took
  effect, in commit order, with the worker that applied them and the time by
  its own clock when it wrote the turn. (A server clock would not do: a worker
  killed right after it sent a turn's last statements and ``COMMIT`` leaves
  them to run after its death, which is no fault.) Turns refused as stale are
  counted in the summary.

Imported, the module gives the tests the workflow's expected results
(:func:`expected_output`), a :class:`Fleet` of worker processes and
:func:`check_fleet`, which checks histories, journal and turn log together.

Usage: ``multiworker_worker.py DIR INDEX WORKERS INSTANCES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import turnout

STEPS = 5
"""Sequential activity steps per instance."""

wf = turnout.Workflows()


def _journal(ctx: turnout.ActivityContext) -> None:
    """One line per execution, on disk before the activity does anything else."""
    line = f"{ctx.instance_id} {ctx.task_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(os.environ["MW_JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@wf.activity
def step(ctx: turnout.ActivityContext, value: list[int]) -> int:
    """A trivial step whose result depends on its input and its position, so order shows."""
    _journal(ctx)
    x, position = value
    return x * 3 + position


@wf.workflow
def five_steps(ctx: turnout.WorkflowContext, x: int) -> Generator[turnout.Task[Any], Any, int]:
    """STEPS activities one after another, each fed the previous one's result."""
    for position in range(STEPS):
        x = yield ctx.call_activity(step, input=[x, position])
    return x


def expected_output(x: int) -> int:
    """What ``five_steps(x)`` returns."""
    for position in range(STEPS):
        x = x * 3 + position
    return x


def instance_id(n: int) -> str:
    """The fixed id of instance ``n`` (its input is ``n``)."""
    return f"mw-{n:04d}"


# -- the worker process --------------------------------------------------------------------

REFUSED = [0]
"""Turns this worker computed but the store refused as stale (its lease lost, or history moved on)."""

TURN_LOG = """CREATE TABLE IF NOT EXISTS {schema}.turn_log (
    id BIGSERIAL PRIMARY KEY, instance_id TEXT NOT NULL, base INTEGER NOT NULL,
    added INTEGER NOT NULL, reset BOOLEAN NOT NULL, owner TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
)"""


def _log_applied_turns() -> None:
    """Wrap the store's writing of turns: each applied turn also writes a turn_log row, atomically.

    ``_apply_turns`` writes every turn that applies, a start's first turn
    included; ``_commit_one`` says which of the others were refused.
    """
    from turnout_builtin._sql import SqlStore

    check = SqlStore._commit_one
    apply = SqlStore._apply_turns

    def commit_one(self: SqlStore, db: Any, owner: str, commit: Any, *checks: Any) -> bool:
        applied = check(self, db, owner, commit, *checks)
        if not applied:
            REFUSED[0] += 1
        return applied

    def apply_turns(self: SqlStore, db: Any, owner: str, commits: list[Any], found: dict[str, Any]) -> None:
        apply(self, db, owner, commits, found)
        written = time.time()  # by this process, alive: see the module's docstring
        logged = [
            (c.instance_id, c.expected_history_length, len(c.new_events), bool(c.reset_history), owner)
            for c in commits
            if c.instance_id in found
        ]
        if logged:
            db.executemany(
                "INSERT INTO turn_log (instance_id, base, added, reset, owner, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, written) for row in logged],
            )

    SqlStore._commit_one = commit_one  # type: ignore[method-assign]
    SqlStore._apply_turns = apply_turns  # type: ignore[method-assign]


def _touch(path: Path) -> None:
    with open(path, "w") as handle:
        handle.flush()
        os.fsync(handle.fileno())


async def serve(folder: Path, index: int, workers: int, instances: int) -> dict[str, Any]:
    """Start this worker's share of the instances (all at once), then work until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with turnout.AsyncRuntime(folder / "components.yaml", wf, working_dir=folder) as rt:
        client = rt.client()

        async def start(n: int) -> None:
            with contextlib.suppress(turnout.InstanceExists):
                await client.start(five_steps, n, instance_id=instance_id(n))

        await asyncio.gather(*(start(n) for n in range(index, instances, workers)))
        _touch(folder / f"ready-{index}")
        await stop.wait()
        engine = rt.workflow_components()["engine"].engine  # type: ignore[attr-defined]
        return {"pid": os.getpid(), "owner": engine.owner, "refused": REFUSED[0], **engine.stats}


def main(folder: Path, index: int, workers: int, instances: int) -> int:
    """Run one worker; its summary goes to ``summary-<index>.json`` when it stops cleanly."""
    os.environ["MW_JOURNAL"] = str(folder / "journal.txt")
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s.%(msecs)03d %(threadName)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    _log_applied_turns()
    summary = asyncio.run(serve(folder, index, workers, instances))
    (folder / f"summary-{index}.json").write_text(json.dumps(summary))
    return 0


# -- the test side -------------------------------------------------------------------------


def components(conninfo: str, schema: str, lease: float, max_conns: int, timeout: float | None = None) -> str:
    """The component file: a state.postgresql store and the workflow.builtin engine on it."""
    store = {
        "connectionString": conninfo,
        "schema": schema,
        "maxConns": str(max_conns),
        "leaseDurationInSeconds": str(lease),
    }
    if timeout is not None:
        store["timeout"] = f"{timeout}s"
    documents = [
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": name},
            "spec": {
                "type": kind,
                "version": "v1",
                "metadata": [{"name": k, "value": v} for k, v in meta.items()],
            },
        }
        for name, kind, meta in [
            ("pg", "state.postgresql", store),
            ("engine", "workflow.builtin", {"stateStore": "pg"}),
        ]
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


LOG_RECORD = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \S+ \S+ (?P<level>[A-Z]+): (?P<message>.*)$")
"""A log line of a worker (see the format in :func:`main`)."""

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Detected|Failure)\b[^:]*: .+")
"""The last line of a traceback: ``module.SomeError: message``."""


@dataclass
class Journal:
    """One activity execution, as the journal recorded it."""

    instance_id: str
    task_id: int
    attempt: int
    pid: int
    at: float


@dataclass
class Turn:
    """One applied turn, as the turn log recorded it (in commit order)."""

    instance_id: str
    base: int
    added: int
    reset: bool
    owner: str
    at: float

    @property
    def pid(self) -> int:
        """The process that applied it (owner ids are ``host:pid:random``)."""
        return int(self.owner.split(":")[-2])


class Fleet:
    """Worker processes on one schema: start, kill, stop, and read what they left behind."""

    def __init__(
        self,
        folder: Path,
        conninfo: str,
        schema: str,
        *,
        workers: int,
        instances: int,
        lease: float,
        max_conns: int = 6,
        timeout: float | None = None,
    ) -> None:
        self.folder = folder
        self.conninfo = conninfo
        self.schema = schema
        self.workers = workers
        self.instances = instances
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.killed: dict[int, float] = {}
        """pid -> time.time() of the SIGKILL."""
        self.orphans: dict[int, set[str]] = {}
        """pid -> the instances a killed worker held leases on when it died."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "components.yaml").write_text(components(conninfo, schema, lease, max_conns, timeout))

    # -- database ----------------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3)

    def create_schema(self) -> None:
        """The schema and the turn log; the engine's own tables come from its migrations."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            conn.execute(TURN_LOG.format(schema=self.schema))

    def drop_schema(self) -> None:
        """Remove the schema and everything in it."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def finished(self) -> int:
        """How many instances have reached a terminal status (-1 while the server is unreachable)."""
        import psycopg

        try:
            with self._connect() as conn:
                row = conn.execute(
                    f'SELECT count(*) FROM "{self.schema}".instances '
                    "WHERE status IN ('COMPLETED', 'FAILED', 'TERMINATED', 'CANCELED')"
                ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0  # not migrated yet
        except psycopg.OperationalError:
            return -1
        return int(row[0]) if row else 0

    def leases(self) -> Counter[int]:
        """How many unfinished instances each worker holds a lease on, by worker index."""
        index_of = {proc.pid: index for index, proc in self.procs.items()}
        with self._connect() as conn:
            rows = conn.execute(
                f'SELECT lease_owner, count(*) FROM "{self.schema}".instances '
                "WHERE lease_owner IS NOT NULL GROUP BY lease_owner"
            ).fetchall()
        found: Counter[int] = Counter()
        for owner, count in rows:
            pid = int(owner.split(":")[-2])
            if pid in index_of:
                found[index_of[pid]] += count
        return found

    def diagnose(self, limit: int = 5) -> str:
        """The unfinished instances with their inbox and tasks, for a failure message."""
        import psycopg

        try:
            with self._connect() as conn:
                conn.execute(f'SET search_path TO "{self.schema}"')
                now = time.time()
                rows = conn.execute(
                    "SELECT instance_id, status, history_length, lease_owner, lease_expires FROM instances "
                    "WHERE status NOT IN ('COMPLETED', 'FAILED', 'TERMINATED', 'CANCELED') "
                    "ORDER BY instance_id LIMIT %s",
                    (limit,),
                ).fetchall()
                lines = [f"unfinished instances (first {limit}; now = {now:.3f}):"]
                for iid, status, length, owner, expires in rows:
                    lines.append(f"  {iid} {status} history {length} lease {owner} until {expires}")
                    events = [
                        json.loads(e)
                        for (e,) in conn.execute(
                            "SELECT event FROM history WHERE instance_id = %s ORDER BY seq", (iid,)
                        )
                    ]
                    lines.append("    history: " + ", ".join(f"{e['k']}#{e.get('i', '')}" for e in events))
                    for msg_id, visible, event in conn.execute(
                        "SELECT id, visible_at, event FROM inbox WHERE instance_id = %s ORDER BY id", (iid,)
                    ):
                        lines.append(f"    inbox {msg_id} visible {visible:.3f}: {event[:120]}")
                    for task in conn.execute(
                        "SELECT id, task_id, attempt, visible_at, locked_by, locked_until FROM tasks "
                        "WHERE instance_id = %s ORDER BY id",
                        (iid,),
                    ):
                        lines.append(f"    task {task}")
                return "\n".join(lines)
        except psycopg.Error as exc:
            return f"(no diagnosis: {exc})"

    # -- processes ---------------------------------------------------------------------

    def start(self, index: int) -> subprocess.Popen[bytes]:
        """Start worker ``index`` (output to ``worker-<index>.log``)."""
        log = open(self.folder / f"worker-{index}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    str(self.folder),
                    str(index),
                    str(self.workers),
                    str(self.instances),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        finally:
            log.close()
        self.procs[index] = proc
        return proc

    def start_all(self) -> None:
        """Start every worker."""
        for index in range(self.workers):
            self.start(index)

    def ready(self) -> bool:
        """Every worker has started its share of the instances."""
        return all((self.folder / f"ready-{index}").exists() for index in range(self.workers))

    def exited(self) -> dict[int, int]:
        """Workers that exited without being killed by the test: index -> exit code."""
        return {
            index: code
            for index, proc in self.procs.items()
            if proc.pid not in self.killed and (code := proc.poll()) is not None
        }

    def kill(self, index: int) -> float:
        """SIGKILL worker ``index``; returns the time by which it was dead (the kill, reaped)."""
        proc = self.procs[index]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at = time.time()
        self.killed[proc.pid] = at
        with self._connect() as conn:
            rows = conn.execute(
                f'SELECT instance_id FROM "{self.schema}".instances WHERE lease_owner LIKE %s',
                (f"%:{proc.pid}:%",),
            ).fetchall()
        self.orphans[proc.pid] = {r[0] for r in rows}
        return at

    def held_transactions(self, index: int) -> int:
        """How many transactions of worker ``index`` hold rows while the server waits on the worker.

        Counted by an id of their own (they locked or wrote rows): after its
        COMMIT, waiting for the Sync, a session still shows a transaction, holding nothing.
        """
        session = f"turnout:{socket.gethostname()}:{self.procs[index].pid}"[:63]
        with self._connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND backend_xid IS NOT NULL AND wait_event = 'ClientRead'",
                (session,),
            ).fetchone()
        return int(row[0]) if row else 0

    def freeze_mid_step(self, index: int, attempts: int = 500) -> float:
        """SIGSTOP worker ``index`` at a moment one of its transactions holds rows on the server,
        waiting for the rest of its statements; returns the time of the freeze, recorded as its death.

        A frozen worker's locks stay (its kernel still answers for its sockets), unlike a
        killed one's. Stopped at a moment with no such transaction, it is continued and
        stopped again a little later.
        """
        proc = self.procs[index]
        for _ in range(attempts):
            os.kill(proc.pid, signal.SIGSTOP)
            while _process_state(proc.pid) != "T":  # stopped by now, not just signalled
                time.sleep(0.0005)
            at = time.time()
            if self.held_transactions(index):
                break
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.002)
        else:
            raise AssertionError(f"worker {index} was never caught in the middle of a transaction")
        with self._connect() as conn:
            rows = conn.execute(
                f'SELECT instance_id FROM "{self.schema}".instances WHERE lease_owner LIKE %s',
                (f"%:{proc.pid}:%",),
            ).fetchall()
        self.killed[proc.pid] = at  # it applies nothing more: its turn log is written by its own clock
        self.orphans[proc.pid] = {r[0] for r in rows}
        return at

    def stop(self, timeout: float = 30.0) -> dict[int, int]:
        """SIGTERM the live workers and wait: index -> exit code."""
        live = {i: p for i, p in self.procs.items() if p.pid not in self.killed and p.poll() is None}
        for proc in live.values():
            proc.send_signal(signal.SIGTERM)
        codes = {}
        for index, proc in live.items():
            try:
                codes[index] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[index] = proc.wait()
        return codes

    def kill_all(self) -> None:
        """Finalizer: no worker outlives its test."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def log(self, index: int) -> str:
        """Worker ``index``'s output."""
        try:
            return (self.folder / f"worker-{index}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def logs(self) -> str:
        """What each worker logged at WARNING and above (one line a record), for failure messages."""
        parts = []
        for index in sorted(self.procs):
            records = self.records(index, ("WARNING", "ERROR", "CRITICAL"))
            shown = records[-15:]
            parts.append(
                f"--- worker {index} (pid {self.procs[index].pid}): {len(records)} warnings and errors"
                + (f", the last {len(shown)}" if len(shown) < len(records) else "")
                + "".join(f"\n  {r}" for r in shown)
            )
        return "\n".join(parts)

    def records(self, index: int, levels: tuple[str, ...] = ("ERROR", "CRITICAL")) -> list[str]:
        """Worker ``index``'s log records at ``levels``: each message with its exception's last line.

        Tracebacks printed outside logging (an exception that killed a thread)
        count as ERROR records: nothing may fail unseen.
        """
        records: list[list[str]] = []
        for line in self.log(index).splitlines():
            if LOG_RECORD.match(line) or line.startswith("Exception in thread") or not records:
                records.append([line])
            else:
                records[-1].append(line)
        found = []
        for lines in records:
            head = LOG_RECORD.match(lines[0])
            level = head.group("level") if head else ("ERROR" if any("Traceback" in x for x in lines) else "")
            if level not in levels:
                continue
            message = head.group("message") if head else lines[0]
            cause = [x for x in lines[1:] if EXCEPTION_LINE.match(x)]
            found.append(f"{message} [{cause[-1]}]" if cause else message)
        return found

    def summaries(self) -> list[dict[str, Any]]:
        """What the cleanly stopped workers reported."""
        found = []
        for index in range(self.workers):
            path = self.folder / f"summary-{index}.json"
            if path.exists():
                found.append(json.loads(path.read_text()))
        return found

    # -- records -------------------------------------------------------------------------

    def journal_lines(self) -> int:
        """How many activity executions have started so far (cheap: counts newlines)."""
        try:
            return (self.folder / "journal.txt").read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def wait_for_executions(self, target: int, timeout: float) -> None:
        """Wait until every worker has started its instances and ``target`` activities have run."""
        wait_until(
            lambda: self.ready() and self.journal_lines() >= target,
            timeout,
            f"{target} activity executions with every worker started",
            self,
        )

    def journal(self) -> list[Journal]:
        """Every activity execution recorded so far."""
        found = []
        for line in (self.folder / "journal.txt").read_text().splitlines():
            iid, task, attempt, pid, at = line.split()
            found.append(Journal(iid, int(task), int(attempt), int(pid), float(at)))
        return found

    def collect(self) -> tuple[dict[str, dict[str, Any]], list[Turn]]:
        """Instances (row and decoded history) and the turn log, read straight from the schema."""
        from turnout_builtin._events import Event

        instances: dict[str, dict[str, Any]] = {}
        with self._connect() as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            for iid, status, output, failure, length in conn.execute(
                "SELECT instance_id, status, output, failure, history_length FROM instances"
            ):
                instances[iid] = {
                    "status": status,
                    "output": json.loads(output) if output is not None else None,
                    "failure": failure,
                    "history_length": length,
                    "seqs": [],
                    "history": [],
                }
            for iid, seq, event in conn.execute(
                "SELECT instance_id, seq, event FROM history ORDER BY instance_id, seq"
            ):
                instances[iid]["seqs"].append(seq)
                instances[iid]["history"].append(Event.decode(event))
            turns = [
                Turn(*row)
                for row in conn.execute(
                    "SELECT instance_id, base, added, reset, owner, at FROM turn_log ORDER BY id"
                )
            ]
        return instances, turns


def _process_state(pid: int) -> str:
    """The state letter of ``/proc/<pid>/stat`` (``T`` once stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    fleet: Fleet | None = None,
    interval: float = 0.005,
) -> float:
    """Poll ``condition`` until it holds; seconds waited. Fails fast when a worker dies on its own."""
    began = time.monotonic()
    while not condition():
        if fleet is not None and (dead := fleet.exited()):
            raise AssertionError(
                f"worker(s) exited on their own while waiting for {what}: {dead}\n{fleet.logs()}"
            )
        if time.monotonic() - began > timeout:
            logs = f"\n{fleet.diagnose()}\n{fleet.logs()}" if fleet is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{logs}")
        time.sleep(interval)
    return time.monotonic() - began


# -- checks --------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a run shows, for the report."""

    executions: int = 0
    run_twice: int = 0
    max_runs: int = 1
    repeats_without_kill: int = 0
    """Activities run more than once although no killed worker ran them (task lock lost while alive)."""
    turns: int = 0
    handovers: int = 0
    """Consecutive applied turns of one instance by different workers."""
    live_handovers: int = 0
    """Of those, handovers between two workers that were both alive: a live worker lost a lease."""
    instances_moved: int = 0
    orphans: int = 0
    """Instances the killed worker held leases on when it died."""
    turn_takeover: list[float] = field(default_factory=list)
    """Seconds from a kill to the next applied turn of each instance the killed worker held."""
    task_takeover: list[float] = field(default_factory=list)
    """Seconds from a kill to the re-run of each activity the killed worker had started."""

    @staticmethod
    def spread(values: list[float]) -> str:
        """min / median / max, or 'none'."""
        if not values:
            return "none"
        return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} s"


def _check_history(iid: str, state: dict[str, Any], n: int) -> None:
    """Each step exactly once: scheduled once, completed once, in order; one start, one end."""
    history = state["history"]
    assert state["status"] == "COMPLETED", f"{iid} ended {state['status']}: {state['failure']}"
    assert state["output"] == expected_output(n), (
        f"{iid}: output {state['output']}, expected {expected_output(n)}"
    )
    assert state["seqs"] == list(range(len(history))), f"{iid}: history sequence numbers {state['seqs']}"
    assert state["history_length"] == len(history), (
        f"{iid}: history_length {state['history_length']} but {len(history)} events"
    )
    kinds = Counter(e.kind.value for e in history)
    assert kinds["WorkflowStarted"] == 1, f"{iid}: {kinds['WorkflowStarted']} WorkflowStarted events"
    assert kinds["WorkflowCompleted"] == 1, f"{iid}: {kinds['WorkflowCompleted']} WorkflowCompleted events"
    assert history[-1].kind.value == "WorkflowCompleted", f"{iid}: the history does not end with completion"
    assert kinds["TaskFailed"] == 0, f"{iid}: a step failed: {history}"
    scheduled = [e.task_id for e in history if e.kind.value == "TaskScheduled"]
    completed = [e.task_id for e in history if e.kind.value == "TaskCompleted"]
    assert scheduled == list(range(STEPS)), (
        f"{iid}: tasks scheduled {scheduled}, expected each of 0..{STEPS - 1} once"
    )
    assert sorted(completed) == list(range(STEPS)), f"{iid}: tasks completed {completed}, expected each once"
    position = {(e.kind.value, e.task_id): k for k, e in enumerate(history)}
    for task in range(STEPS):
        assert position[("TaskScheduled", task)] < position[("TaskCompleted", task)], (
            f"{iid}: task {task} completed before it was scheduled"
        )
        assert {e.name for e in history if e.task_id == task and e.kind.value == "TaskScheduled"} == {"step"}


def _check_turns(iid: str, turns: list[Turn], length: int) -> None:
    """Applied turns chain: each starts from the history the previous one left; none forks."""
    running = 0
    for k, turn in enumerate(turns):
        assert not turn.reset, f"{iid}: turn {k} reset the history"
        assert turn.base == running, (
            f"{iid}: turn {k} (worker {turn.owner}) was applied on a history of {turn.base} events, "
            f"but the history had {running}: two turns were applied from one state "
            f"(turns: {[(t.base, t.added, t.owner) for t in turns]})"
        )
        running += turn.added
    assert running == length, f"{iid}: the turn log adds up to {running} events, the history has {length}"


def check_fleet(fleet: Fleet) -> Figures:
    """Check every instance, the journal and the turn log; return the figures to report."""
    instances, turns = fleet.collect()
    figures = Figures(turns=len(turns))
    expected = {instance_id(n): n for n in range(fleet.instances)}
    assert set(instances) == set(expected), (
        f"instances missing: {sorted(set(expected) - set(instances))[:10]}, "
        f"unexpected: {sorted(set(instances) - set(expected))[:10]}"
    )
    by_instance: dict[str, list[Turn]] = defaultdict(list)
    for turn in turns:
        by_instance[turn.instance_id].append(turn)
    for iid, n in expected.items():
        _check_history(iid, instances[iid], n)
        _check_turns(iid, by_instance[iid], len(instances[iid]["history"]))

    killed = fleet.killed
    runs: dict[tuple[str, int], list[Journal]] = defaultdict(list)
    for line in fleet.journal():
        assert line.instance_id in expected and 0 <= line.task_id < STEPS, (
            f"an activity ran for no step: {line}"
        )
        assert line.attempt == 1, f"a step was retried although it never fails: {line}"
        runs[(line.instance_id, line.task_id)].append(line)
    missing = [(iid, task) for iid in expected for task in range(STEPS) if (iid, task) not in runs]
    assert not missing, f"steps that completed but whose activity never ran: {missing[:10]}"
    for executions in runs.values():
        figures.executions += len(executions)
        if len(executions) > 1:
            figures.run_twice += 1
            figures.max_runs = max(figures.max_runs, len(executions))
            if not any(e.pid in killed for e in executions[:-1]):
                figures.repeats_without_kill += 1
        for pid, at in killed.items():
            if any(e.pid == pid for e in executions):
                later = [e.at - at for e in executions if e.pid != pid and e.at > at]
                if later:
                    figures.task_takeover.append(min(later))

    for iid, iid_turns in by_instance.items():
        pairs = list(itertools.pairwise(t.pid for t in iid_turns))
        figures.handovers += sum(1 for a, b in pairs if a != b)
        figures.live_handovers += sum(1 for a, b in pairs if a != b and a not in killed and b not in killed)
        figures.instances_moved += len({t.pid for t in iid_turns}) > 1
        for pid, at in killed.items():
            after = [t for t in iid_turns if t.at > at]
            assert not any(t.pid == pid for t in after), (
                f"{iid}: a turn applied by worker {pid} after its death"
            )
            if iid in fleet.orphans.get(pid, ()):
                # Leased instances are unfinished, so each must have been taken over.
                assert after, f"{iid}: held by worker {pid} when it was killed, and never taken over"
                figures.orphans += 1
                figures.turn_takeover.append(after[0].at - at)
    return figures


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
