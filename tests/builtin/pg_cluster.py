"""A throwaway PostgreSQL cluster for tests that stop, restart or crash the server.

Tests must never stop the machine's shared server (127.0.0.1:5432): this
helper runs ``initdb`` into a temporary folder and ``pg_ctl`` on a free
loopback port, and removes both afterwards. ``initdb`` refuses to run as root,
so as root every command runs as the ``postgres`` user through ``runuser``
(see /work/shared/reference/services.md). The temporary folder sits directly
under /tmp because pytest's ``tmp_path`` (mode 0700, owned by root) is not
reachable by that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT = 60
"""Seconds ``pg_ctl -w`` waits for the server to accept connections (crash recovery included)."""


def find_bin() -> Path | None:
    """The folder with initdb and pg_ctl: ``$PG_BIN``, the newest /usr/lib/postgresql/*/bin, or PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(str(Path(found).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _version(folder: str) -> int:
    try:
        return int(Path(folder).parent.name)
    except ValueError:
        return 0


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One throwaway cluster: created by :meth:`create`, removed by :meth:`destroy`."""

    def __init__(self, bin_dir: Path, folder: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = port
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def conninfo(self) -> str:
        """libpq connection string of the cluster's ``postgres`` database over TCP."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT + 30)
        if done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}\n"
                f"{self.server_log()}"
            )
        return done

    def server_log(self) -> str:
        """The tail of the server's log, for failure messages."""
        try:
            return "server log (tail):\n" + "\n".join(self.log.read_text().splitlines()[-20:])
        except OSError:
            return "(no server log)"

    def create(self) -> None:
        """initdb with trust auth; the settings favour speed (no fsync: the OS survives our crashes)."""
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT), *args, action
        )

    def start(self) -> None:
        """Start and wait until it accepts connections (after crash recovery, if any)."""
        self._pg_ctl("start", "-o", self._options())

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clean shutdown, sessions ended; ``immediate``: a crash, recovery at the next start."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: stop (``mode``) and start again on the same port."""
        self._pg_ctl("restart", "-m", mode, "-o", self._options())

    def running(self) -> bool:
        """Whether the postmaster runs (``pg_ctl status``)."""
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0

    def postmaster(self) -> int:
        """The server's main process, by pid."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def children(self) -> list[int]:
        """The postmaster's children (backends, checkpointer, WAL writer...), by pid."""
        postmaster = self.postmaster()
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The command may hold spaces and brackets: the fields after the last ')' are plain.
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    found.append(int(Path(stat).parent.name))
        return found

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every server process stopped (SIGSTOP) for the block: its kernel still acknowledges
        packets and keepalives, but nothing answers. Continued (SIGCONT) however the block ends."""
        stopped: list[int] = []
        try:
            # The postmaster first: stopped, it starts no backend that the list would miss.
            postmaster = self.postmaster()
            os.kill(postmaster, signal.SIGSTOP)
            stopped.append(postmaster)
            for pid in self.children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stop the server if it runs (a crash stop: nothing in it is kept) and remove the folder."""
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PgCluster]:
    """A started cluster on a free loopback port, stopped and removed on exit.

    Raises LookupError when the PostgreSQL server binaries are not installed
    (the caller turns that into a skip, or a failure in CI).
    """
    bin_dir = find_bin()
    if bin_dir is None:
        raise LookupError("the PostgreSQL server binaries (initdb, pg_ctl) are not installed; set PG_BIN")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise LookupError("running as root, and there is no 'postgres' user to run initdb as") from None
    folder = Path(tempfile.mkdtemp(prefix="turnout-pg-", dir="/tmp"))
    cluster = PgCluster(bin_dir, folder, free_port())
    try:
        cluster.create()
        for attempt in range(3):
            try:
                cluster.start()
                break
            except RuntimeError:
                # Another process took the free port between the look and the bind: try another.
                if attempt == 2 or cluster.running():
                    raise
                cluster.port = free_port()
        yield cluster
    finally:
        cluster.destroy()


def wait_accepting(conninfo: str, timeout: float = 30.0) -> float:
    """Seconds until a new connection to ``conninfo`` succeeds (the server is up)."""
    import psycopg

    began = time.monotonic()
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return time.monotonic() - began
        except psycopg.Error:
            if time.monotonic() - began > timeout:
                raise
            time.sleep(0.05)
