"""Worker process for the crash test: runs a 10-step workflow on a SQLite file until killed or done.

The test (test_crash.py) starts this script, kills it with SIGKILL at a point
measured in journal lines, and starts it again on the same folder. The script
is therefore written to be restarted at any instant:

- instances have fixed ids, and starting one that exists is not an error;
- every activity execution appends one line to the journal (fsync'd) before it
  does its work, so the test can count executions, including repeated ones;
- the external event "go" is raised by this script when an instance shows
  that it waits for it (custom status ``waiting for go``). A marker file is
  written before the raise and another after it, so a restarted worker does
  not raise twice when it was killed after the raise committed;
- once every instance has finished, the states and histories are written to
  ``report.json`` (atomically) and the script exits 0; on a stuck instance it
  writes the report anyway and exits 3.

Usage: ``crash_worker.py DIR INSTANCES`` (DIR holds .turnout/, the journal,
markers and the report).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import turnout

WAITING = "waiting for go"
DEADLINE = 45.0
"""Seconds a worker gives its instances to finish before it reports them stuck."""
REDELIVERY_GRACE = 3.0
"""Seconds a restarted worker waits for an event raised by its predecessor to show in the history."""

RETRY = turnout.RetryPolicy(max_attempts=3, first_retry_interval=timedelta(milliseconds=10))

wf = turnout.Workflows()


def _journal(ctx: turnout.ActivityContext) -> None:
    """One line per execution, on disk before the activity does anything else."""
    line = f"{ctx.instance_id} {ctx.task_id} {ctx.attempt} {ctx.activity_name} {os.getpid()}\n"
    fd = os.open(os.environ["CRASH_JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@wf.activity
def step(ctx: turnout.ActivityContext, x: int) -> int:
    """A trivial step; a short pause widens the window in which a kill lands mid-activity."""
    _journal(ctx)
    time.sleep(0.002)
    return x + 1


@wf.activity
def charge(ctx: turnout.ActivityContext, x: int) -> int:
    """Fails on its first attempt on purpose, so retries are crossed by kills too."""
    _journal(ctx)
    if ctx.attempt == 1:
        raise ConnectionError("card processor unavailable (first attempt fails on purpose)")
    return x * 2


@wf.workflow
def child(ctx: turnout.WorkflowContext, x: int) -> Generator[turnout.Task[Any], Any, int]:
    """Two activities in a child instance."""
    a = yield ctx.call_activity(step, input=x)
    b = yield ctx.call_activity(step, input=a)
    return b


@wf.workflow
def ten_steps(ctx: turnout.WorkflowContext, x: int) -> Generator[turnout.Task[Any], Any, dict[str, Any]]:
    """Activities, a retried activity, a timer, a child, an event, a fan-out: 10 steps in all."""
    a = yield ctx.call_activity(step, input=x)  # task 0
    b = yield ctx.call_activity(charge, input=a, retry=RETRY)  # task 1
    yield ctx.create_timer(timedelta(milliseconds=50))  # task 2
    c = yield ctx.call_child_workflow(child, input=b)  # task 3
    d = yield ctx.call_activity(step, input=c)  # task 4
    ctx.set_custom_status(WAITING)
    go = yield ctx.wait_for_external_event("go")
    ctx.set_custom_status("fanning out")
    parts = yield turnout.when_all([ctx.call_activity(step, input=d + i) for i in range(3)])  # tasks 5-7
    e = yield ctx.call_activity(step, input=sum(parts) + go)  # task 8
    ctx.set_custom_status("done")
    return {"a": a, "b": b, "c": c, "d": d, "go": go, "parts": parts, "e": e}


def expected_output(x: int, go: int) -> dict[str, Any]:
    """What ``ten_steps(x)`` returns when the event carries ``go``."""
    a = x + 1
    b = a * 2
    c = b + 2
    d = c + 1
    parts = [d + i + 1 for i in range(3)]
    return {"a": a, "b": b, "c": c, "d": d, "go": go, "parts": parts, "e": sum(parts) + go + 1}


def instance_ids(count: int) -> list[str]:
    """The fixed ids of a run's instances (inputs are their index times 10)."""
    return [f"crash-{n}" for n in range(count)]


def event_value(instance_id: str) -> int:
    """The payload of the "go" event for an instance."""
    return 100 + int(instance_id.rsplit("-", 1)[1])


class EventRaiser:
    """Raises "go" once per instance, across restarts, using marker files around the raise."""

    def __init__(self, client: turnout.WorkflowClient, folder: Path) -> None:
        self.client = client
        self.folder = folder
        self.folder.mkdir(exist_ok=True)
        self.born = time.monotonic()

    def _marker(self, instance_id: str, stage: str) -> Path:
        return self.folder / f"{instance_id}.{stage}"

    def _in_history(self, instance_id: str) -> bool:
        return any(e.kind == "EventRaised" for e in self.client.history(instance_id))

    def offer(self, instance_id: str) -> None:
        """Called while the instance waits for the event."""
        raised, raising = self._marker(instance_id, "raised"), self._marker(instance_id, "raising")
        if raised.exists():
            return
        if raising.exists():
            # A predecessor was killed around its raise: the event may sit in the inbox.
            if self._in_history(instance_id):
                _touch(raised)
                return
            if time.monotonic() - self.born < REDELIVERY_GRACE:
                return
        _touch(raising)
        self.client.raise_event(instance_id, "go", event_value(instance_id))
        _touch(raised)


def _touch(path: Path) -> None:
    with open(path, "w") as handle:
        handle.flush()
        os.fsync(handle.fileno())


def report(client: turnout.WorkflowClient, ids: list[str]) -> dict[str, Any]:
    """States and histories of the instances and their children."""
    out: dict[str, Any] = {}
    todo = list(ids)
    while todo:
        iid = todo.pop(0)
        state = client.get(iid)
        if state is None:
            out[iid] = None
            continue
        history = client.history(iid)
        out[iid] = {
            "status": state.runtime_status.value,
            "output": state.output,
            "failure": state.failure.model_dump() if state.failure else None,
            "custom_status": state.custom_status,
            "history": [[e.kind, e.name, e.task_id] for e in history],
        }
        todo.extend(
            e.data["instance_id"]
            for e in history
            if e.kind == "ChildWorkflowScheduled" and e.data.get("instance_id")
        )
    return out


def main(folder: Path, count: int) -> int:
    """Run the instances to the end; 0 when all finished, 3 when some were stuck."""
    os.environ["CRASH_JOURNAL"] = str(folder / "journal.txt")
    ids = instance_ids(count)
    with turnout.Runtime(workflows=wf, working_dir=folder) as rt:
        client = rt.client()
        for n, iid in enumerate(ids):
            with contextlib.suppress(turnout.InstanceExists):  # started by a predecessor
                client.start(ten_steps, n * 10, instance_id=iid)
        _touch(folder / f"ready-{os.getpid()}")  # the engine has taken over: a kill point for the test
        raiser = EventRaiser(client, folder / "events")
        pending = set(ids)
        deadline = time.monotonic() + DEADLINE
        while pending and time.monotonic() < deadline:
            for iid in sorted(pending):
                state = client.get(iid)
                assert state is not None
                if state.runtime_status.is_terminal:
                    pending.discard(iid)
                elif state.custom_status == WAITING:
                    raiser.offer(iid)
            if pending:
                time.sleep(0.005)
        data = report(client, ids)
    tmp = folder / "report.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(folder / "report.json")
    return 3 if pending else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
