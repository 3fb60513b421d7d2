"""The engine's workers: turns of workflow instances, activities, and their commits.

Three loops on the runtime's event loop:

- the *turn loop* takes instances with visible inbox messages, runs one turn
  of each (hot runs come from the in-memory cache; others replay their
  history), and commits the whole batch in one transaction;
- the *activity loop* claims activity tasks and runs them (``def`` ones on a
  thread pool, ``async def`` ones on the loop), at most N at a time;
- the *result flusher* delivers finished activities' results to their
  instances in batches, or schedules their retries.

The store is the source of truth at every step: a process killed at any
instant leaves work that the next one finds (messages, unclaimed tasks) and
finishes. Activities run at least once; each workflow step takes effect once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from turnout import (
    ActivityContext,
    EngineError,
    FailureDetails,
    RetryPolicy,
    RuntimeStatus,
    WorkflowNotRegistered,
    Workflows,
    WorkflowState,
)
from turnout._serialization import coerce, dumps, loads
from turnout._tracing import enabled as tracing
from turnout._tracing import in_current_context, span

from ._events import EXECUTION_SCOPED, Event, Kind
from ._executor import WorkflowRun, failure_of
from ._store import (
    ActivityOutcome,
    ActivityTask,
    InstanceRow,
    Message,
    Store,
    TurnCommit,
    TurnWork,
)
from ._threads import ThreadRunner
from ._turns import TurnOutcome, apply_turn, outgoing

log = logging.getLogger("turnout.builtin")

POLL_INTERVAL = 1.0
"""Longest sleep between looks at the store, for work written by other processes."""


class RemoteWorkers(Protocol):
    """Workers outside this process that run what the local registry lacks (the gRPC sidecar).

    A remote turn is prepared in the turn loop (like a local one), then run in
    a task of its own while the loop goes on; its commit goes through the
    store exactly as a local turn's.
    """

    def serves_workflow(self, name: str) -> bool:
        """Whether instances of workflow ``name`` run remotely."""

    def serves_activity(self, name: str) -> bool:
        """Whether activity ``name`` runs remotely."""

    def has_workers(self) -> bool:
        """Whether a worker is connected now."""

    def prepare(self, work: TurnWork, now: float) -> Any:
        """The turn to run, or None when every message stays buffered.

        The turn's ``needs_worker`` says whether a worker must run it (pause,
        resume and terminate are applied without one).
        """

    async def run(self, turn: Any) -> tuple[TurnCommit, TurnOutcome | None] | None:
        """The turn's commit, without its outgoing tasks and messages, and where it left the instance.

        None when no worker took the turn.
        """

    async def run_activity(self, task: ActivityTask) -> tuple[str | None, FailureDetails | None] | None:
        """The activity's result (JSON text), or its failure; None when no worker took it."""


@dataclasses.dataclass
class _Hot:
    """An instance with activities outstanding, and its row as of its last commit in this process."""

    row: InstanceRow
    tasks: set[int] = dataclasses.field(default_factory=set)
    """Row ids of its tasks whose results have not come back here."""


class Engine:
    """Runs the turns and activities of one store's instances in this process."""

    def __init__(
        self,
        store: Store,
        workflows: Workflows,
        *,
        max_activities: int = 64,
        batch_size: int = 256,
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.max_activities = max_activities
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._cache: OrderedDict[str, WorkflowRun] = OrderedDict()
        self._watchers: dict[str, list[asyncio.Queue[RuntimeStatus | WorkflowState | None]]] = {}
        self._turn_wakeup = asyncio.Event()
        self._activity_wakeup = asyncio.Event()
        self._flush_wakeup = asyncio.Event()
        self._results: list[ActivityOutcome] = []
        # Instances whose visible messages all stay buffered (paused ones): skipped
        # until a new message for them arrives, so the turn loop does not spin.
        self._parked: set[str] = set()
        # Instances whose last turn the store refused with an error of its own (not a lost
        # database): id -> (refusals in a row, monotonic time before which none is tried).
        self._refused: dict[str, tuple[int, float]] = {}
        # Wake-ups that arrive while a batch of turns is being computed: an instance
        # woken meanwhile is not parked by that batch (its new message came too late for it).
        self._woken: set[str] = set()
        self._woken_all = False
        # Instances being started (see starting) that a message may have reached meanwhile.
        self._woken_starting: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()
        # Row ids of the tasks this worker runs or holds the result of: the locks it renews.
        self._held: set[int] = set()
        self._reserved = 0  # activity slots held for tasks being committed locked by this worker
        self._waiting_for_room = False  # the activity loop waits for a runner to finish
        # The next due time of a message or task, as far as known (see _next_due).
        self._due: float | None = None
        self._due_known = False
        self._due_checked = 0.0
        self._due_asking = False
        self._due_meanwhile: float | None = None
        self._due_epoch = 0
        self._loops: list[asyncio.Task[None]] = []
        self._threads = ThreadRunner(max_activities, "turnout-activity")
        self.find_workflow: Callable[[str], Awaitable[None]] | None = None
        """Registers a workflow this process lacks, if it can (a definition stored by another worker)."""
        self.remote: RemoteWorkers | None = None
        """Set by the gRPC sidecar: what is not registered here runs on its workers."""
        self._remote_busy: set[str] = set()
        self._remote_turns: set[asyncio.Task[None]] = set()
        # Instances whose turn is being computed or committed by this process (by the turn
        # loop or by the result flusher): one turn at a time per instance.
        self._busy: set[str] = set()
        self._deferred: set[str] = set()  # claimed while busy: to be turned once the other turn is in
        # Instances with activities running here, as their last commit left them: a result
        # for one of them is applied at once and committed with the task's deletion (see
        # _direct_turns), rather than sent through the inbox to be turned later.
        self._hot: dict[str, _Hot] = {}
        self._starts: list[TurnWork] = []  # first turns of instances started here (see started)
        self._starting: dict[str, int] = {}  # instances being started here, which claims leave alone
        self._claim_wanted = True  # whether the turn loop's next pass asks the store for messages
        self.stats = {"turns": 0, "replays": 0, "activities": 0, "commits": 0}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Take over work left by dead processes and start the loops."""
        await self.store.recover(self.owner)
        loop = asyncio.get_running_loop()
        self.store.listen(lambda changed: loop.call_soon_threadsafe(self._on_notify, changed), tag=self.owner)
        self._loops = [
            asyncio.create_task(self._guard(self._turn_loop), name="turnout-turns"),
            asyncio.create_task(self._guard(self._activity_loop), name="turnout-activities"),
            asyncio.create_task(self._guard(self._flush_loop), name="turnout-results"),
            asyncio.create_task(self._guard(self._heartbeat_loop), name="turnout-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop the loops; running activities are abandoned and run again by the next worker."""
        for task in [*self._loops, *self._running, *self._remote_turns]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._running, *self._remote_turns, return_exceptions=True)
        self._loops.clear()
        self._running.clear()
        self._remote_turns.clear()
        if self._results:
            # Results already computed are delivered rather than recomputed.
            with contextlib.suppress(Exception):
                await self.store.finish_tasks(self.owner, self._results)
            self._results = []
        # Hand everything over at once rather than when the leases expire.
        with contextlib.suppress(Exception):
            await self.store.release_all(self.owner)
        self._threads.shutdown()
        self._watchers.clear()
        self._hot.clear()
        self._held.clear()

    async def _guard(self, loop_fn: Any) -> None:
        # A loop that dies would stall every instance: log, back off, go on. Each loop
        # leaves the engine consistent when it fails (see _run_turns and _flush_loop).
        delay = 0.05
        while True:
            started = time.monotonic()
            try:
                await loop_fn()
                return
            except asyncio.CancelledError:
                raise
            except EngineError as exc:
                if not exc.retryable:
                    raise
                # The database went away (a restart, a network cut): expected, and retried.
                log.warning("turnout engine loop %s: %s; retrying in %.2fs", loop_fn.__name__, exc, delay)
            except Exception:
                log.exception("turnout engine loop %s failed; restarting it", loop_fn.__name__)
            if time.monotonic() - started > 30:
                delay = 0.05  # it ran well for a while: this is a new failure, not the same one
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_notify(self, changed: list[str] | None) -> None:
        # Another worker committed: its messages may be for us, and waiters of the
        # instances whose status it changed must look (their new status is unknown here);
        # it may have written timers too, so the next due time is asked of the store again.
        self._forget_due()
        self.wake()
        self._activity_wakeup.set()
        self._notify(dict.fromkeys(self._watchers if changed is None else changed))

    def wake(self, instance_id: str | None = None) -> None:
        """New messages were written (for ``instance_id``, if known): look for turns now."""
        if instance_id is None:
            self._parked.clear()
            self._woken_all = True
            self._woken_starting.update(self._starting)
        else:
            self._unpark([instance_id])
        self._want_turns()

    def _want_turns(self) -> None:
        """Messages may be waiting in the store: the turn loop claims them at its next pass."""
        self._claim_wanted = True
        self._turn_wakeup.set()

    def starting(self, instance_id: str) -> None:
        """This process is creating the instance and will run its first turn (:meth:`started`).

        Until then no claim takes it: a claim could otherwise find its start
        message between the commit and the call to :meth:`started`, and both
        would run the first turn.
        """
        self._starting[instance_id] = self._starting.get(instance_id, 0) + 1

    def not_starting(self, instance_id: str) -> None:
        """The creation failed (or the first turn ran): claims may take the instance again."""
        left = self._starting.get(instance_id, 0) - 1
        if left > 0:
            self._starting[instance_id] = left
            return
        self._starting.pop(instance_id, None)
        if instance_id in self._woken_starting:
            self._woken_starting.discard(instance_id)
            self.wake(instance_id)  # a message came while claims left it alone: look now

    def started(self, row: InstanceRow, start: Event, message_id: int) -> None:
        """An instance this process just created, leased to it: its first turn needs no claim.

        The start message is in the store already, so if this process dies
        before the turn, the lease expires and any worker claims it.
        """
        self._starts.append(
            TurnWork(instance=row, instance_id=row.instance_id, messages=[(message_id, start)], history=[])
        )
        self._turn_wakeup.set()

    async def create_started(self, row: InstanceRow, start: Event, replace: bool) -> None:
        """Create an instance and its first turn, run here, in one transaction.

        A start and its first step cost one commit instead of two (a start
        message, then a turn that consumes it). The caller waits for the first
        turn's code as well, as it would for a DBOS workflow's first step. The
        instance is leased to this worker: if it dies before the tasks it locked
        are done, the leases expire and any worker takes them over.
        """
        iid = row.instance_id
        run = WorkflowRun(self.workflows, iid)
        run.replay([])
        commit, run = apply_turn(row, run, [start], [], {}, row.created_at)
        assert commit is not None, "a start is always consumed"
        self.starting(iid)  # claims leave it alone until the run is cached here
        try:
            reserved = self._reserve_tasks([commit])
            try:
                if replace:
                    self.forget([iid])
                await self.store.create_instance(
                    row, start, row.created_at, replace, lease_to=self.owner, first_turn=commit
                )
            finally:
                self._reserved -= reserved
            await self._committed([commit], {iid: run}, {iid: row}, [], row.created_at)
        finally:
            self.not_starting(iid)

    def _unpark(self, instance_ids: Collection[str]) -> None:
        self._parked.difference_update(instance_ids)
        self._woken.update(instance_ids)
        if self._starting:
            self._woken_starting.update(i for i in instance_ids if i in self._starting)

    def _park(self, instance_id: str) -> None:
        if not self._woken_all and instance_id not in self._woken:
            self._parked.add(instance_id)

    def expect(self, at: float) -> None:
        """This process wrote something that becomes visible at ``at``: a timer, a retry, a late start."""
        if self._due_asking:
            self._due_meanwhile = at if self._due_meanwhile is None else min(self._due_meanwhile, at)
        elif self._due_known and (self._due is None or at < self._due):
            self._due = at

    def _forget_due(self) -> None:
        """Another process may have written timers: the next sleep asks the store."""
        self._due_known = False
        self._due_epoch += 1

    def _expect_messages(self, messages: list[Message], now: float) -> None:
        later = [m.visible_at for m in messages if m.visible_at > now]
        if later:
            self.expect(min(later))

    async def _next_due(self, now: float) -> float | None:
        """When the next message or task falls due, for a loop about to sleep.

        The store is asked at most once a poll interval, and again once the due
        time it gave has passed; in between, what this process wrote itself
        (:meth:`expect`) keeps the answer current. So an idle loop does not
        query the store each time it sleeps, in the way of the work at hand.
        """
        fresh = time.monotonic() - self._due_checked < POLL_INTERVAL
        if not (self._due_known and fresh and (self._due is None or self._due > now)):
            # What this process writes while the store answers may be missing from the
            # answer: it is kept aside and folded in. A notification meanwhile leaves the
            # answer unknown, to be asked again at the next sleep.
            epoch = self._due_epoch
            self._due_asking, self._due_meanwhile = True, None
            try:
                due = await self.store.next_due(now)
            finally:
                self._due_asking = False
            self._due_checked = time.monotonic()
            known = [d for d in (due, self._due_meanwhile) if d is not None]
            self._due = min(known) if known else None
            self._due_known = epoch == self._due_epoch
        return self._due

    async def _sleep(self, wakeup: asyncio.Event) -> None:
        if wakeup.is_set():
            return  # woken already: no need to ask the store when the next timer falls due
        now = time.time()
        due = await self._next_due(now)
        timeout = POLL_INTERVAL if due is None else min(POLL_INTERVAL, max(due - now, 0.0))
        if wakeup.is_set():
            return
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that races with the wake-up, and stop() would then hang.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await wakeup.wait()

    # -- watching instances --------------------------------------------------------------

    def watch(self, instance_id: str) -> asyncio.Queue[RuntimeStatus | WorkflowState | None]:
        """A queue of the instance's new statuses, one per commit that changes it, until unwatched.

        None means the status changed but is not known here (another process).
        """
        queue: asyncio.Queue[RuntimeStatus | WorkflowState | None] = asyncio.Queue()
        self._watchers.setdefault(instance_id, []).append(queue)
        return queue

    def known_state(self, instance_id: str) -> WorkflowState | None:
        """The instance's state as this worker's last commit left it, while it runs here; else None.

        Only this worker commits turns of an instance it leases, so that state is
        the stored one; were the lease lost, the new owner's commits notify, and
        a waiter reads the store then.
        """
        hot = self._hot.get(instance_id)
        return hot.row.to_state() if hot is not None else None

    def unwatch(self, instance_id: str, queue: asyncio.Queue[RuntimeStatus | WorkflowState | None]) -> None:
        """Forget a watcher that is no longer waited on."""
        queues = self._watchers.get(instance_id)
        if queues and queue in queues:
            queues.remove(queue)
            if not queues:
                del self._watchers[instance_id]

    def _news(self, row: InstanceRow | None, commit: TurnCommit) -> RuntimeStatus | WorkflowState:
        """What watchers of a committed instance learn: its final state, or else its new status.

        A final state is the row as the commit left it, so a waiter needs no
        read of the store (for many waiters, that read was most of the work).
        """
        if row is None or not commit.status.is_terminal or commit.instance_id not in self._watchers:
            return commit.status
        return dataclasses.replace(
            row,
            status=commit.status,
            output=commit.output,
            failure=commit.failure,
            custom_status=commit.custom_status,
            last_updated_at=commit.last_updated_at,
            workflow_name=commit.workflow_name or row.workflow_name,
        ).to_state()

    def _notify(self, statuses: Mapping[str, RuntimeStatus | WorkflowState | None]) -> None:
        for iid, status in statuses.items():
            for queue in self._watchers.get(iid, ()):
                queue.put_nowait(status)

    def forget(self, instance_ids: Collection[str]) -> None:
        """Drop cached runs (after a purge or replace)."""
        for iid in instance_ids:
            self._cache.pop(iid, None)
            self._hot.pop(iid, None)

    # -- turns ---------------------------------------------------------------------------

    async def _turn_loop(self) -> None:
        while True:
            self._turn_wakeup.clear()
            # A wake-up from here on may bring a message this pass does not see (it reads
            # only what is visible at ``now``): such an instance must not be parked by it.
            self._woken.clear()
            self._woken_all = False
            now = time.time()
            starts, self._starts = self._starts[: self.batch_size], self._starts[self.batch_size :]
            if starts:
                try:
                    await self._run_turns(starts, now)
                finally:
                    for work in starts:
                        self.not_starting(work.instance_id)
                if self._starts:
                    self._turn_wakeup.set()  # more starts than one batch: the next pass takes them
            if self._claim_wanted or not starts:
                self._claim_wanted = False
                # The cache is consulted from the store's thread: a run evicted meanwhile is
                # caught below (no history was read for it) and replayed.
                works = await self.store.claim_turns(
                    self.owner,
                    now,
                    self.batch_size,
                    self._parked | self._remote_busy | self._busy | set(self._starting) | self._resting(),
                    self._cache.__contains__,
                )
                # One whose start began while the store answered is left to that start.
                mine = [w for w in works if w.instance_id not in self._starting]
                if mine:
                    await self._run_turns(mine, now)
                if len(works) == self.batch_size:
                    # A full batch: more may be waiting. Yield first: a store may answer
                    # without ever suspending (SQLite does), and the other loops must run.
                    self._claim_wanted = True
                    await asyncio.sleep(0)
                    continue
            # Everything visible was taken (a shorter batch): what comes next wakes this loop
            # (a commit here, a notification, a timer that falls due), so it sleeps, rather
            # than asking the store again at once and finding nothing.
            await self._sleep(self._turn_wakeup)
            if not self._turn_wakeup.is_set():
                self._claim_wanted = True  # a timer fell due, or it is time to poll
                self._parked.clear()  # a quiet poll: look again at what others may have sent

    async def _run_turns(self, works: list[TurnWork], now: float) -> None:
        if self.find_workflow is not None:
            for work in works:
                row = work.instance
                if row is not None and not self.workflows.has_workflow(row.workflow_name):
                    await self.find_workflow(row.workflow_name)
        if self.remote is not None:
            works = await self._hand_over(self.remote, works, now)
        # An instance the result flusher turned meanwhile waits for that turn to be in.
        self._deferred.update(w.instance_id for w in works if w.instance_id in self._busy)
        works = [w for w in works if w.instance_id not in self._busy]
        if not works:
            return
        ids = [work.instance_id for work in works]
        self._busy.update(ids)
        try:
            await self._turn_and_commit(works, now)
        finally:
            self._busy.difference_update(ids)

    async def _turn_and_commit(self, works: list[TurnWork], now: float) -> None:
        for work in works:
            run = self._cache.get(work.instance_id)
            row = work.instance
            if row is None or work.history is not None:
                continue
            # Evicted while the store was read, or overtaken by another worker: replay.
            if run is None or run.history_length != row.history_length:
                self._cache.pop(work.instance_id, None)
                work.history = await self.store.load_history(work.instance_id)
        commits: list[TurnCommit] = []
        runs: dict[str, WorkflowRun | None] = {}
        rows: dict[str, InstanceRow | None] = {}
        try:
            for work in works:
                commit, run = self._turn(work, now)
                if commit is None:
                    self._park(work.instance_id)
                    if run is not None:
                        self._cache[work.instance_id] = run
                else:
                    commits.append(commit)
                    runs[work.instance_id] = run
                    rows[work.instance_id] = work.instance
        except BaseException:
            for work in works:  # the cached runs may be ahead of the store now
                self._cache.pop(work.instance_id, None)
                self._hot.pop(work.instance_id, None)
            raise
        await self._commit(commits, runs, rows, now)

    async def _commit(
        self,
        commits: list[TurnCommit],
        runs: Mapping[str, WorkflowRun | None],
        rows: Mapping[str, InstanceRow | None],
        now: float,
    ) -> list[TurnCommit]:
        """Commit a batch of turns computed here, then start what they scheduled.

        Returns the turns the store refused (see _store_commit): nothing of them
        was written, and their instances rest before this worker tries them again.
        """
        if not commits:
            return []
        reserved = self._reserve_tasks(commits)
        try:
            stale, refused = await self._store_commit(commits)
        except BaseException:
            for commit in commits:  # the cached runs may be ahead of the store now
                self._cache.pop(commit.instance_id, None)
                self._hot.pop(commit.instance_id, None)
            raise
        finally:
            self._reserved -= reserved
        for commit, error in refused:
            iid = commit.instance_id
            self._cache.pop(iid, None)
            self._hot.pop(iid, None)
            count = self._refused.get(iid, (0, 0.0))[0] + 1
            self._refused[iid] = (count, time.monotonic() + min(2.0 ** (count - 1), 60.0))
            log.error(
                "turnout: the store refused a turn of %s (%d in a row); it is tried again later",
                iid,
                count,
                exc_info=error,
            )
        if refused:
            gone = {id(c) for c, _ in refused}
            commits = [c for c in commits if id(c) not in gone]
        if self._refused:
            for commit in commits:
                self._refused.pop(commit.instance_id, None)
        await self._committed(commits, runs, rows, stale, now)
        return [c for c, _ in refused]

    async def _store_commit(
        self, commits: list[TurnCommit]
    ) -> tuple[list[str], list[tuple[TurnCommit, Exception]]]:
        """The store's commit of a batch: the stale instances, and the turns it refused, with why.

        A batch the store fails for a reason of its own (a value it cannot
        keep, a bug), not because the database went away, is tried again one
        turn at a time: one turn it cannot take must not hold back the others
        of its batch, forever, as it would if the whole batch were retried.
        """
        try:
            return await self.store.commit_turns(self.owner, commits), []
        except EngineError as exc:
            if exc.retryable:
                raise  # the database went away: the whole batch is retried when it is back
            error: Exception = exc
        except Exception as exc:
            error = exc
        if len(commits) == 1:
            return [], [(commits[0], error)]
        stale: list[str] = []
        refused: list[tuple[TurnCommit, Exception]] = []
        for commit in commits:
            try:
                alone_stale, alone_refused = await self._store_commit([commit])
            except EngineError as lost:
                # The database went away meanwhile: this one waits, like a refused one.
                alone_stale, alone_refused = [], [(commit, lost)]
            stale += alone_stale
            refused += alone_refused
        return stale, refused

    def _resting(self) -> set[str]:
        """Instances whose last turn the store refused, until their time to be tried again."""
        if not self._refused:
            return set()
        now = time.monotonic()
        return {iid for iid, (_, until) in self._refused.items() if until > now}

    async def _committed(
        self,
        commits: list[TurnCommit],
        runs: Mapping[str, WorkflowRun | None],
        rows: Mapping[str, InstanceRow | None],
        stale: list[str],
        now: float,
    ) -> None:
        """After a commit: cache the runs, start the tasks locked for this worker, tell who waits."""
        self.stats["commits"] += 1
        self.stats["turns"] += len(commits)
        wake_activities = wake_turns = False
        for commit in commits:
            iid = commit.instance_id
            run = runs[iid]
            fresh = iid not in stale
            launched = [new.claimed() for new in commit.tasks if new.locked and new.id is not None]
            if not fresh or run is None or commit.status.is_terminal or commit.reset_history:
                self._cache.pop(iid, None)
                self._hot.pop(iid, None)
            else:
                self._cache[iid] = run
                self._cache.move_to_end(iid)
                self._advance_hot(rows.get(iid), commit)
            if fresh:
                for task in launched:
                    self._launch(task)
            wake_activities = wake_activities or any(not new.locked for new in commit.tasks)
            if commit.messages:
                self._unpark([m.instance_id for m in commit.messages])
                self._expect_messages(commit.messages, now)
                wake_turns = True
            if commit.terminate_children is not None:
                self._parked.clear()
                wake_turns = True
            wake_turns = wake_turns or bool(commit.children) or not fresh
        evicted = []
        while len(self._cache) > self.cache_size:
            evicted.append(self._cache.popitem(last=False)[0])
        for iid in evicted:
            self._hot.pop(iid, None)
        if evicted:
            await self.store.release(self.owner, evicted)
        if self._watchers:
            self._notify(
                {
                    c.instance_id: self._news(rows.get(c.instance_id), c)
                    for c in commits
                    if c.status_changed and c.instance_id not in stale
                }
            )
        if wake_activities:
            self._activity_wakeup.set()
        if wake_turns:
            self._want_turns()

    def _advance_hot(self, row: InstanceRow | None, commit: TurnCommit) -> None:
        """Keep the row of an instance with activities outstanding as this commit left it.

        Its new tasks count whether this worker runs them at once (inserted
        locked) or claims them later: under load most wait for a free slot, and
        their results are applied here all the same if the instance is still
        this worker's. If another worker runs one, its result comes through the
        inbox and the entry goes with the next commit or the cache.
        """
        iid = commit.instance_id
        hot = self._hot.get(iid)
        new = [task.id for task in commit.tasks if task.id is not None]
        if row is None or (hot is None and not new):
            return
        after = dataclasses.replace(
            row,
            status=commit.status,
            output=commit.output,
            failure=commit.failure,
            custom_status=commit.custom_status,
            last_updated_at=commit.last_updated_at,
            history_length=commit.expected_history_length + len(commit.new_events),
            workflow_name=commit.workflow_name or row.workflow_name,
        )
        if hot is None:
            hot = self._hot[iid] = _Hot(after)
        hot.row = after
        hot.tasks.update(new)
        if not hot.tasks:
            del self._hot[iid]

    # -- remote turns (the gRPC sidecar's workers) -------------------------------------------

    async def _hand_over(self, remote: RemoteWorkers, works: list[TurnWork], now: float) -> list[TurnWork]:
        """Start the turns of remote workflows in tasks of their own; the local ones are returned."""
        local = []
        unserved = []
        for work in works:
            row = work.instance
            if row is None or row.status.is_terminal or not remote.serves_workflow(row.workflow_name):
                local.append(work)
                continue
            turn = remote.prepare(work, now)
            if turn is None:
                self._park(work.instance_id)  # a paused instance: its messages stay buffered
                continue
            if turn.needs_worker and not remote.has_workers():
                # No worker here: another process sharing the store may have some, so the
                # instance is let go rather than held until one connects (which wakes us).
                self._park(work.instance_id)
                unserved.append(work.instance_id)
                continue
            self._remote_busy.add(work.instance_id)  # one turn at a time per instance
            runner = asyncio.create_task(self._remote_turn(remote, row, turn))
            self._remote_turns.add(runner)
            runner.add_done_callback(self._remote_turns.discard)
        if unserved:
            await self.store.release(self.owner, unserved)
        return local

    async def _remote_turn(self, remote: RemoteWorkers, row: InstanceRow, turn: Any) -> None:
        iid = row.instance_id
        try:
            answer = await remote.run(turn)
            if answer is None:
                # No worker took it: let the instance go (another process may have workers);
                # a worker that connects here wakes the engine.
                self._park(iid)
                self._remote_busy.discard(iid)
                await self.store.release(self.owner, [iid])
                return
            commit, outcome = answer
            if outcome is not None:
                outgoing(row, outcome, commit, commit.last_updated_at)
                commit.status_changed = commit.status is not row.status
            stale = await self.store.commit_turns(self.owner, [commit])
            self.stats["commits"] += 1
            self.stats["turns"] += 1
            if not stale:
                self._committed_remote(commit)
        except asyncio.CancelledError:
            self._remote_busy.discard(iid)
            raise
        except Exception:
            # Nothing was committed: the messages stay in the inbox and are turned again at the
            # next look at the store (not at once: a turn that fails each time must not spin).
            self._remote_busy.discard(iid)
            log.exception("turnout remote turn of %s failed; it will be turned again", iid)
            return
        self._remote_busy.discard(iid)
        self.wake(iid)  # messages that came while the worker ran the turn

    def _committed_remote(self, commit: TurnCommit) -> None:
        # What _run_turns does after a commit, for one remote turn (there is no cached run).
        if commit.tasks:
            self._activity_wakeup.set()
        if commit.messages:
            self._unpark([m.instance_id for m in commit.messages])
            self._expect_messages(commit.messages, time.time())
        if commit.terminate_children is not None:
            self._parked.clear()
        if commit.status_changed:
            self._notify({commit.instance_id: commit.status})

    # -- computing a turn: messages in, a commit out (no I/O) ---------------------------------

    def _turn(self, work: TurnWork, now: float) -> tuple[TurnCommit | None, WorkflowRun | None]:
        """One turn of one instance: pure computation, no I/O."""
        row = work.instance
        ids = [message_id for message_id, _ in work.messages]
        if row is None or row.status.is_terminal:
            if not ids:
                return None, None
            status = row.status if row is not None else RuntimeStatus.PENDING
            return (
                TurnCommit(
                    instance_id=work.instance_id,
                    expected_history_length=row.history_length if row is not None else -1,
                    consumed=ids,
                    new_events=[],
                    status=status,
                    last_updated_at=row.last_updated_at if row is not None else now,
                    output=row.output if row is not None else None,
                    failure=row.failure if row is not None else None,
                    custom_status=row.custom_status if row is not None else None,
                ),
                None,
            )
        stale_ids: list[int] = []
        events: list[Event] = []
        id_of: dict[int, int] = {}
        for message_id, event in work.messages:
            if event.kind in EXECUTION_SCOPED and event.execution_id != row.execution_id:
                stale_ids.append(message_id)  # a result for an execution that has ended
                continue
            events.append(event)
            id_of[id(event)] = message_id
        run = self._cache.get(row.instance_id)
        if run is None:
            run = WorkflowRun(self.workflows, row.instance_id)
            run.replay(work.history or [])
            if work.history:
                self.stats["replays"] += 1
        return apply_turn(row, run, events, stale_ids, id_of, now)

    # -- leases ---------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        # Leases and task locks live while this process does; renewed well before expiry.
        interval = min(self.store.lease_seconds / 3, 60.0)
        while True:
            await asyncio.sleep(interval)
            await self.store.heartbeat(self.owner, time.time(), self._held)

    # -- activities ----------------------------------------------------------------------

    def _reserve_tasks(self, commits: list[TurnCommit]) -> int:
        """Mark the new tasks this worker has room to run at once: they are inserted locked by it.

        That saves each a claim (a transaction and a trip through the activity
        loop); the rest wait in the store for whichever worker claims them.
        """
        free = self.max_activities - len(self._running) - self._reserved
        reserved = 0
        for commit in commits:
            for new in commit.tasks:
                if reserved >= free:
                    break
                new.locked = True
                reserved += 1
        self._reserved += reserved
        return reserved

    async def _activity_loop(self) -> None:
        while True:
            self._activity_wakeup.clear()
            free = self.max_activities - len(self._running) - self._reserved
            if free <= 0:
                self._waiting_for_room = True
                try:
                    await self._activity_wakeup.wait()
                finally:
                    self._waiting_for_room = False
                continue
            tasks = await self.store.claim_tasks(self.owner, time.time(), free)
            for task in tasks:
                self._launch(task)
            if len(tasks) < free:  # all that was due is taken: wait for more (as the turn loop does)
                await self._sleep(self._activity_wakeup)

    def _launch(self, task: ActivityTask) -> None:
        hot = self._hot.get(task.instance_id)
        if hot is not None:
            hot.tasks.add(task.id)
        self._held.add(task.id)
        runner = asyncio.create_task(self._run_activity(task))
        self._running.add(runner)
        runner.add_done_callback(self._activity_done)

    def _activity_done(self, runner: asyncio.Task[None]) -> None:
        self._running.discard(runner)
        if self._waiting_for_room:  # otherwise the loop looks again when new tasks are written
            self._activity_wakeup.set()

    async def _run_activity(self, task: ActivityTask) -> None:
        attributes = {"turnout.instance_id": task.instance_id, "turnout.task_id": task.task_id}
        with span(f"activity {task.name}", parent=task.trace, attributes=attributes):
            remote = self.remote
            if remote is not None and remote.serves_activity(task.name):
                outcome = await self._call_remote_activity(remote, task)
            else:
                outcome = await self._call_activity(task)
        self.stats["activities"] += 1
        self._results.append(outcome)
        self._flush_wakeup.set()

    async def _call_activity(self, task: ActivityTask) -> ActivityOutcome:
        started = time.time()
        try:
            registered = self.workflows.get_activity(task.name)
            ctx = ActivityContext(
                instance_id=task.instance_id,
                task_id=task.task_id,
                attempt=task.attempt,
                activity_name=task.name,
                workflow_name=task.workflow_name,
            )
            args: list[Any] = [ctx]
            if registered.takes_input:
                args.append(coerce(loads(task.input), registered.input_type))
            if registered.is_async:
                value = await registered.fn(*args)
            else:
                # With tracing on, the thread runs in this context: the activity sees its span as current.
                call = (
                    in_current_context(registered.fn, *args) if tracing() else partial(registered.fn, *args)
                )
                value = await self._threads.run(call)
            message = Event(
                Kind.TASK_COMPLETED,
                time.time(),
                task_id=task.task_id,
                execution_id=task.execution_id,
                data=dumps(value, what=f"result of activity '{task.name}'"),
            )
            return ActivityOutcome(task, message=message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._failed(task, exc, started)

    async def _call_remote_activity(self, remote: RemoteWorkers, task: ActivityTask) -> ActivityOutcome:
        started = time.time()
        answer = await remote.run_activity(task)
        if answer is None:
            # No worker took it: released for another process, or for a worker that connects.
            # (This counts as an attempt: the store has no other way to put a task back.)
            return ActivityOutcome(task, retry_at=time.time() + POLL_INTERVAL)
        result, failure = answer
        if failure is not None:
            return self._failure_outcome(task, failure, started, retryable=True)
        message = Event(
            Kind.TASK_COMPLETED,
            time.time(),
            task_id=task.task_id,
            execution_id=task.execution_id,
            data=result,
        )
        return ActivityOutcome(task, message=message)

    def _failed(self, task: ActivityTask, exc: Exception, now: float) -> ActivityOutcome:
        return self._failure_outcome(
            task, failure_of(exc), now, retryable=not isinstance(exc, WorkflowNotRegistered)
        )

    def _failure_outcome(
        self, task: ActivityTask, failure: FailureDetails, now: float, *, retryable: bool
    ) -> ActivityOutcome:
        if task.retry and retryable:
            policy = RetryPolicy.model_validate(task.retry)
            elapsed = timedelta(seconds=now - task.first_attempt_at)
            if policy.allows(task.attempt + 1, failure.error_type, elapsed):
                delay = policy.delay_before(task.attempt + 1).total_seconds()
                return ActivityOutcome(task, retry_at=now + delay)
        details = {"failure": failure.model_dump(), "attempts": task.attempt}
        message = Event(
            Kind.TASK_FAILED,
            time.time(),
            task_id=task.task_id,
            execution_id=task.execution_id,
            details=details,
        )
        return ActivityOutcome(task, message=message)

    async def _flush_loop(self) -> None:
        while True:
            if not self._results:  # results put back by a failed flush are retried at once
                await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            batch, self._results = self._results, []
            if not batch:
                continue
            now = time.time()
            groups, plain = self._direct_groups(batch)
            if groups:
                try:
                    plain += await self._direct_turns(groups, now)
                except BaseException:
                    # Nothing was committed: the results go back, to be delivered at the next try.
                    self._results = [o for outcomes in groups.values() for o in outcomes] + self._results
                    self._results += plain
                    raise
            if plain:
                await self._deliver(plain)

    async def _deliver(self, batch: list[ActivityOutcome]) -> None:
        """Results (and retries) the flusher does not apply itself: through the store's inbox."""
        try:
            await self.store.finish_tasks(self.owner, batch)
        except BaseException:
            self._results = batch + self._results  # keep them for the next try
            raise
        self._held.difference_update(o.task.id for o in batch)
        delivered = [o.task.instance_id for o in batch if o.message is not None]
        self._unpark(delivered)
        if delivered:
            self._want_turns()
        retries = [o.retry_at for o in batch if o.retry_at is not None]
        if retries:
            self.expect(min(retries))
            self._activity_wakeup.set()

    def _direct_groups(
        self, batch: list[ActivityOutcome]
    ) -> tuple[dict[str, list[ActivityOutcome]], list[ActivityOutcome]]:
        """Sort results into those applied here at once (by instance) and those sent through the inbox.

        A result is applied here when this process holds its instance: the run is
        cached, in step with the row of its last commit here, and no other turn of
        it is under way. Anything else (a retry, a paused instance, an instance
        another worker took over) goes through the inbox as before.
        """
        groups: dict[str, list[ActivityOutcome]] = {}
        plain: list[ActivityOutcome] = []
        seen: set[int] = set()
        for outcome in batch:
            task = outcome.task
            if task.id in seen:
                # The same task ran twice here (its lock had lapsed and this worker claimed it
                # again): one result is enough, and the store keeps it to one in any case.
                continue
            seen.add(task.id)
            iid = task.instance_id
            hot = self._hot.get(iid)
            if hot is not None:
                hot.tasks.discard(task.id)
            run = self._cache.get(iid)
            if (
                outcome.message is None
                or hot is None
                or run is None
                or iid in self._busy
                or run.suspended
                or run.status.is_terminal
                or run.history_length != hot.row.history_length
                or task.execution_id != hot.row.execution_id
            ):
                plain.append(outcome)
            else:
                groups.setdefault(iid, []).append(outcome)
        for outcome in plain:
            iid = outcome.task.instance_id
            hot = self._hot.get(iid)
            if hot is not None and not hot.tasks and iid not in groups:
                del self._hot[iid]  # nothing of it runs here any more
        return groups, plain

    async def _direct_turns(
        self, groups: dict[str, list[ActivityOutcome]], now: float
    ) -> list[ActivityOutcome]:
        """Apply results to their cached runs and commit each turn with its tasks' deletion.

        One transaction per step, where the inbox takes two (deliver, then turn)
        and a claim between them. Returns the results to deliver through the
        inbox after all (a turn that applied nothing, or one the store refused).
        """
        commits: list[TurnCommit] = []
        runs: dict[str, WorkflowRun | None] = {}
        rows: dict[str, InstanceRow | None] = {}
        plain: list[ActivityOutcome] = []
        try:
            for iid, outcomes in groups.items():
                row = self._hot[iid].row
                events = [o.message for o in outcomes if o.message is not None]
                commit, run = apply_turn(row, self._cache[iid], events, [], {}, now)
                if commit is None:
                    plain += outcomes
                    continue
                commit.finished = outcomes
                commits.append(commit)
                runs[iid], rows[iid] = run, row
        except BaseException:
            for iid in groups:  # the cached runs may be ahead of the store now
                self._cache.pop(iid, None)
                self._hot.pop(iid, None)
            raise
        ids = list(runs)
        self._busy.update(ids)
        try:
            refused = {id(c) for c in await self._commit(commits, runs, rows, now)}
            self._held.difference_update(
                o.task.id for c in commits if id(c) not in refused for o in c.finished
            )
            # Not applied after all: the results go through the inbox, and the turn is
            # made again from there, once the instance has rested.
            plain += [o for c in commits if id(c) in refused for o in c.finished]
        finally:
            self._busy.difference_update(ids)
            deferred = self._deferred.intersection(ids)
            self._deferred -= deferred
            for iid in deferred:
                self.wake(iid)
        return plain
