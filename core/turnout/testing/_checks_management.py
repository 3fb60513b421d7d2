"""Conformance checks of the optional operations, each gated by the feature that offers it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .._errors import (
    DefinitionExists,
    DefinitionNotFound,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    TurnoutError,
)
from .._models import Feature, RuntimeStatus
from ._harness import Conformance
from ._workflows import child_instance_id

START_DELAY = 1.5
"""Seconds ahead that scheduled starts are set: long enough to see PENDING, short for the suite."""

# Operation -> (feature, call on an instance id) for the unknown-id checks.
OPERATIONS: dict[str, tuple[Feature, Callable[[Any, str], Awaitable[Any]]]] = {
    "terminate": (Feature.TERMINATE, lambda c, i: c.terminate(i, "conformance")),
    "cancel": (Feature.CANCEL, lambda c, i: c.cancel(i, "conformance")),
    "raise_event": (Feature.RAISE_EVENT, lambda c, i: c.raise_event(i, "go", 1)),
    "pause": (Feature.PAUSE, lambda c, i: c.pause(i, "conformance")),
    "resume": (Feature.PAUSE, lambda c, i: c.resume(i, "conformance")),
    "purge": (Feature.PURGE, lambda c, i: c.purge(i)),
    "history": (Feature.HISTORY, lambda c, i: c.history(i)),
}


class ManagementChecks:
    """Terminate, cancel, events, pause and resume, purge, list, history and scheduled starts."""

    @pytest.mark.parametrize("operation", list(OPERATIONS))
    async def test_unknown_instance_raises_not_found(self, conformance: Conformance, operation: str) -> None:
        """Every operation on an id that was never started raises InstanceNotFound naming the id."""
        feature, call = OPERATIONS[operation]
        conformance.requires(feature)
        instance_id = conformance.new_id("unknown")
        with pytest.raises(InstanceNotFound) as caught:
            await call(conformance.client, instance_id)
        assert caught.value.instance_id == instance_id

    # -- terminate and cancel -----------------------------------------------------------

    async def test_terminate(self, conformance: Conformance) -> None:
        """terminate ends a running instance TERMINATED, without an output."""
        conformance.requires(Feature.TERMINATE)
        instance_id = await conformance.start("sleeper")
        running = await conformance.running(instance_id)
        await conformance.client.terminate(instance_id, "conformance: stop")
        state = await conformance.finish(instance_id, RuntimeStatus.TERMINATED)
        assert state.failure is None
        assert state.last_updated_at >= running.last_updated_at
        assert state.custom_status is None, "workflow code ran on terminate (the sleeper's cancel handler)"

    async def test_terminate_paused_instance(self, conformance: Conformance) -> None:
        """A paused instance can be terminated."""
        conformance.requires(Feature.TERMINATE, Feature.PAUSE)
        instance_id = await conformance.start("sleeper")
        await conformance.running(instance_id)
        await conformance.client.pause(instance_id)
        await conformance.eventually(
            instance_id, lambda s: s.runtime_status is RuntimeStatus.SUSPENDED, "SUSPENDED after pause"
        )
        await conformance.client.terminate(instance_id, "conformance: stop while paused")
        await conformance.finish(instance_id, RuntimeStatus.TERMINATED)

    async def test_terminate_scheduled_instance(self, conformance: Conformance) -> None:
        """An instance still waiting for its start_at can be terminated, and then never runs."""
        conformance.requires(Feature.TERMINATE, Feature.START_AT)
        instance_id = await conformance.start("echo", "never", start_at=timedelta(seconds=START_DELAY))
        await conformance.client.terminate(instance_id, "conformance: not needed after all")
        state = await conformance.finish(instance_id, RuntimeStatus.TERMINATED)
        assert state.output is None

    async def test_terminate_finished_instance_keeps_its_status(self, conformance: Conformance) -> None:
        """terminate of a finished instance changes nothing (it may raise InvalidState or do nothing)."""
        conformance.requires(Feature.TERMINATE)
        instance_id = await conformance.start("echo", "done")
        await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        with contextlib.suppress(InvalidState):
            await conformance.client.terminate(instance_id, "too late")
        state = await conformance.client.get(instance_id)
        assert state is not None
        assert (state.runtime_status, state.output) == (RuntimeStatus.COMPLETED, "done")

    async def test_terminate_stops_children(self, conformance: Conformance) -> None:
        """terminate of a parent terminates its running child too (Dapr's recursive terminate)."""
        conformance.requires(Feature.TERMINATE)
        sleeper = conformance.target.role("sleeper")
        parent_id = await conformance.start("parent", {"workflow": sleeper})
        child_id = child_instance_id(parent_id)
        await conformance.eventually(
            child_id, lambda s: s.runtime_status is RuntimeStatus.RUNNING, "the child started"
        )
        await conformance.client.terminate(parent_id, "conformance: stop the family")
        await conformance.finish(parent_id, RuntimeStatus.TERMINATED)
        await conformance.finish(child_id, RuntimeStatus.TERMINATED)

    async def test_cancel(self, conformance: Conformance) -> None:
        """cancel ends a running instance CANCELED."""
        conformance.requires(Feature.CANCEL)
        instance_id = await conformance.start("sleeper")
        await conformance.running(instance_id)
        await conformance.client.cancel(instance_id, "conformance: cancel")
        state = await conformance.finish(instance_id, RuntimeStatus.CANCELED)
        assert state.custom_status == {"cancelled": "conformance: cancel"}, (
            "the workflow did not get to handle its cancellation (its custom status is not set)"
        )

    # -- external events ----------------------------------------------------------------

    async def test_raise_event_delivers_data(self, conformance: Conformance) -> None:
        """An event raised to a waiting instance delivers its data to the workflow."""
        conformance.requires(Feature.RAISE_EVENT)
        instance_id = await conformance.start("waiter")
        await conformance.running(instance_id)
        data = {"approved": True, "by": "conformance"}
        await conformance.client.raise_event(instance_id, conformance.target.event_name, data)
        state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        assert state.output == data

    async def test_raise_event_before_the_wait_is_buffered(self, conformance: Conformance) -> None:
        """An event raised before the workflow waits for it is kept until it does.

        With scheduled starts the event is raised while the instance is still
        PENDING, so it certainly comes before the wait; otherwise it is raised
        right after start.
        """
        conformance.requires(Feature.RAISE_EVENT)
        scheduled = Feature.START_AT in conformance.features
        start_at = datetime.now(UTC) + timedelta(seconds=START_DELAY) if scheduled else None
        instance_id = await conformance.start("waiter", start_at=start_at)
        await conformance.client.raise_event(instance_id, conformance.target.event_name, "early")
        await conformance.client.raise_event(instance_id, conformance.target.event_name, "later")
        if start_at is not None and datetime.now(UTC) < start_at:
            state = await conformance.client.get(instance_id)
            assert state is not None and state.runtime_status is RuntimeStatus.PENDING
        state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        assert state.output == "early", "events of one name are not delivered first in, first out"

    # -- pause and resume ---------------------------------------------------------------

    async def test_pause_and_resume(self, conformance: Conformance) -> None:
        """pause makes a running instance SUSPENDED; resume makes it RUNNING and it then completes."""
        conformance.requires(Feature.PAUSE)
        with_event = conformance.target.waiter is not None and Feature.RAISE_EVENT in conformance.features
        instance_id = await conformance.start("waiter" if with_event else "sleeper")
        running = await conformance.running(instance_id)
        await conformance.client.pause(instance_id, "conformance: pause")
        paused = await conformance.eventually(
            instance_id, lambda s: s.runtime_status is RuntimeStatus.SUSPENDED, "SUSPENDED after pause"
        )
        assert paused.last_updated_at >= running.last_updated_at
        await conformance.client.resume(instance_id, "conformance: resume")
        await conformance.eventually(
            instance_id, lambda s: s.runtime_status is RuntimeStatus.RUNNING, "RUNNING after resume"
        )
        if with_event:
            await conformance.client.raise_event(instance_id, conformance.target.event_name, "resumed")
            state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
            assert state.output == "resumed"

    async def test_event_raised_while_paused_waits_for_resume(self, conformance: Conformance) -> None:
        """A paused instance runs no code: an event raised meanwhile is handled after resume."""
        conformance.requires(Feature.PAUSE, Feature.RAISE_EVENT)
        instance_id = await conformance.start("waiter")
        await conformance.running(instance_id)
        await conformance.client.pause(instance_id)
        await conformance.eventually(
            instance_id, lambda s: s.runtime_status is RuntimeStatus.SUSPENDED, "SUSPENDED after pause"
        )
        await conformance.client.raise_event(instance_id, conformance.target.event_name, "while paused")
        state = await conformance.client.get(instance_id)
        assert state is not None and state.runtime_status is RuntimeStatus.SUSPENDED, (
            f"a paused instance handled an event (status {state and state.runtime_status})"
        )
        await conformance.client.resume(instance_id)
        state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        assert state.output == "while paused"

    async def test_purge_paused_instance_is_invalid(self, conformance: Conformance) -> None:
        """A paused instance has not finished: purge raises InvalidState."""
        conformance.requires(Feature.PAUSE, Feature.PURGE)
        instance_id = await conformance.start("sleeper")
        await conformance.running(instance_id)
        await conformance.client.pause(instance_id)
        await conformance.eventually(
            instance_id, lambda s: s.runtime_status is RuntimeStatus.SUSPENDED, "SUSPENDED after pause"
        )
        with pytest.raises(InvalidState):
            await conformance.client.purge(instance_id)

    async def test_pause_finished_instance_is_invalid(self, conformance: Conformance) -> None:
        """pause of a finished instance raises InvalidState."""
        conformance.requires(Feature.PAUSE)
        instance_id = await conformance.start("echo")
        await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        with pytest.raises(InvalidState) as caught:
            await conformance.client.pause(instance_id)
        assert caught.value.instance_id == instance_id

    async def test_operations_apply_promptly(self, conformance: Conformance) -> None:
        """On an idle engine that acts at once, each call shows its effect within the target's latency.

        Only checked when the target sets ``latency``: it catches lost
        wake-ups, where a change waits for the engine's next poll.
        """
        latency = conformance.target.latency
        if latency is None:
            pytest.skip(f"{conformance.target.component_type} target sets no latency to check")
        client = conformance.client
        event = conformance.target.event_name
        timings: dict[str, float] = {}

        async def timed(step: str, call: Callable[[], Awaitable[Any]]) -> None:
            began = time.monotonic()
            await call()
            timings[step] = time.monotonic() - began

        def status_is(*statuses: RuntimeStatus) -> Callable[[Any], bool]:
            return lambda state: state.runtime_status in statuses

        echo = await conformance.start("echo", 1)
        await timed("start, then COMPLETED", lambda: conformance.wait(echo))
        features = conformance.features
        if conformance.target.waiter is not None and Feature.RAISE_EVENT in features:
            waiter = await conformance.start("waiter")
            await conformance.running(waiter)

            async def raise_and_finish(instance_id: str, data: str) -> None:
                await client.raise_event(instance_id, event, data)
                await conformance.finish(instance_id, RuntimeStatus.COMPLETED)

            await timed("raise_event, then COMPLETED", lambda: raise_and_finish(waiter, "now"))
            if Feature.PAUSE in features:
                paused = await conformance.start("waiter")
                await conformance.running(paused)

                async def pause_and_see(instance_id: str) -> None:
                    await client.pause(instance_id)
                    await conformance.eventually(instance_id, status_is(RuntimeStatus.SUSPENDED), "SUSPENDED")

                await timed("pause, then SUSPENDED", lambda: pause_and_see(paused))
                await client.raise_event(paused, event, "buffered")

                async def resume_and_finish(instance_id: str) -> None:
                    await client.resume(instance_id)
                    await conformance.finish(instance_id, RuntimeStatus.COMPLETED)

                await timed(
                    "resume after an event raised while paused, then COMPLETED",
                    lambda: resume_and_finish(paused),
                )
        if Feature.TERMINATE in features:
            sleeper = await conformance.start("sleeper")
            await conformance.running(sleeper)

            async def terminate_and_see(instance_id: str) -> None:
                await client.terminate(instance_id)
                await conformance.finish(instance_id, RuntimeStatus.TERMINATED)

            await timed("terminate, then TERMINATED", lambda: terminate_and_see(sleeper))
        slow = {step: round(seconds, 3) for step, seconds in timings.items() if seconds > latency}
        assert not slow, f"slower than the target's latency of {latency:g}s: {slow} (all: {timings})"

    # -- purge --------------------------------------------------------------------------

    async def test_purge_finished_instance(self, conformance: Conformance) -> None:
        """purge deletes a finished instance: get returns None and its id can be used again."""
        conformance.requires(Feature.PURGE)
        instance_id = conformance.new_id()
        await conformance.start("echo", 1, instance_id=instance_id)
        await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        await conformance.client.purge(instance_id)
        assert await conformance.client.get(instance_id) is None
        if Feature.HISTORY in conformance.features:
            with pytest.raises(InstanceNotFound):
                await conformance.client.history(instance_id)
        if Feature.LIST in conformance.features:
            listed = await _collect(lambda token: conformance.client.list(limit=2, page_token=token))
            assert instance_id not in {s.instance_id for s in listed}, "list still shows a purged instance"
        await conformance.start("echo", 2, instance_id=instance_id)
        state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        assert state.output == 2

        failed = await conformance.start("failing")
        await conformance.finish(failed, RuntimeStatus.FAILED)
        await conformance.client.purge(failed)
        assert await conformance.client.get(failed) is None

    async def test_purge_running_instance_is_invalid(self, conformance: Conformance) -> None:
        """purge of a running instance raises InvalidState and leaves it running."""
        conformance.requires(Feature.PURGE)
        instance_id = await conformance.start("sleeper")
        await conformance.running(instance_id)
        with pytest.raises(InvalidState) as caught:
            await conformance.client.purge(instance_id)
        assert caught.value.instance_id == instance_id
        state = await conformance.client.get(instance_id)
        assert state is not None and state.runtime_status is RuntimeStatus.RUNNING

    async def test_purge_removes_children(self, conformance: Conformance) -> None:
        """purge of a finished parent deletes its children too."""
        conformance.requires(Feature.PURGE)
        echo = conformance.target.role("echo")
        parent_id = await conformance.start("parent", {"workflow": echo, "input": 1})
        await conformance.finish(parent_id, RuntimeStatus.COMPLETED)
        child_id = child_instance_id(parent_id)
        assert await conformance.client.get(child_id) is not None
        await conformance.client.purge(parent_id)
        assert await conformance.client.get(parent_id) is None
        assert await conformance.client.get(child_id) is None

    # -- list ---------------------------------------------------------------------------

    async def test_list_filters(self, conformance: Conformance) -> None:
        """list filters by workflow name and by status; every item matches its filters."""
        conformance.requires(Feature.LIST)
        echo = conformance.target.role("echo")
        done = [await conformance.start("echo", n) for n in range(3)]
        for instance_id in done:
            await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        running = None
        if conformance.target.sleeper is not None:
            running = await conformance.start("sleeper")
            await conformance.running(running)
        client = conformance.client

        by_name = await _collect(lambda token: client.list(workflow_name=echo, limit=2, page_token=token))
        assert set(done) <= {s.instance_id for s in by_name}
        assert all(s.workflow_name == echo for s in by_name)

        completed = await _collect(
            lambda token: client.list(status=RuntimeStatus.COMPLETED, limit=2, page_token=token)
        )
        assert set(done) <= {s.instance_id for s in completed}
        assert all(s.runtime_status is RuntimeStatus.COMPLETED for s in completed)

        if running is not None:
            assert running not in {s.instance_id for s in completed}
            active = await _collect(
                lambda token: client.list(
                    status=[RuntimeStatus.RUNNING, RuntimeStatus.PENDING], limit=2, page_token=token
                )
            )
            assert running in {s.instance_id for s in active}
            assert not set(done) & {s.instance_id for s in active}
            assert all(s.runtime_status in (RuntimeStatus.RUNNING, RuntimeStatus.PENDING) for s in active)

        everything = await _collect(lambda token: client.list(limit=2, page_token=token))
        assert set(done) | ({running} if running else set()) <= {s.instance_id for s in everything}

    async def test_list_paging(self, conformance: Conformance) -> None:
        """Pages of ``limit`` items, followed by next_page_token, cover every instance once, newest first."""
        conformance.requires(Feature.LIST)
        echo = conformance.target.role("echo")
        started = []
        for n in range(5):
            instance_id = await conformance.start("echo", n)
            await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
            started.append(instance_id)
        pages = []
        token = None
        while True:
            page = await conformance.client.list(workflow_name=echo, limit=2, page_token=token)
            assert len(page.items) <= 2, f"a page of limit 2 has {len(page.items)} items"
            pages.append(page.items)
            token = page.next_page_token
            if token is None:
                break
            assert len(pages) <= 10_000, "paging does not end"
        seen = [state.instance_id for items in pages for state in items]
        assert len(seen) == len(set(seen)), f"paging returned duplicates: {seen}"
        assert set(started) <= set(seen), f"paging missed {set(started) - set(seen)}"
        assert len(pages) >= 3, "5 instances in pages of 2 came in fewer than 3 pages"
        # Only this check's instances: on a shared server, others may start meanwhile.
        mine = [state for items in pages for state in items if state.instance_id in started]
        assert [s.instance_id for s in mine] == started[::-1], "list is not newest first"

    async def test_list_is_newest_first(self, conformance: Conformance) -> None:
        """list orders by creation, newest first, whatever order the instances finished in."""
        conformance.requires(Feature.LIST, Feature.TERMINATE)
        sleeper = conformance.target.role("sleeper")
        started = []
        for n in range(3):
            instance_id = await conformance.start("sleeper", n)
            await conformance.running(instance_id)
            started.append(instance_id)
        for instance_id in reversed(started):  # the oldest finishes last
            await conformance.client.terminate(instance_id, "conformance: list order")
            await conformance.finish(instance_id, RuntimeStatus.TERMINATED)
        listed = await _collect(
            lambda token: conformance.client.list(workflow_name=sleeper, limit=2, page_token=token)
        )
        mine = [state.instance_id for state in listed if state.instance_id in started]
        assert mine == started[::-1], (
            "list is not newest first (by created_at): the instances were created in the order "
            f"{started} and finished in the reverse order, and list gave {mine}"
        )

    # -- history ------------------------------------------------------------------------

    async def test_history_is_ordered(self, conformance: Conformance) -> None:
        """A finished instance's history is non-empty and oldest first."""
        conformance.requires(Feature.HISTORY)
        role = "activity" if conformance.target.activity is not None else "echo"
        instance_id = await conformance.start(role, 1)
        state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        events = await conformance.client.history(instance_id)
        assert events, "the history of a completed instance is empty"
        sequences = [e.sequence for e in events]
        assert sequences == sorted(set(sequences)), f"sequences are not increasing: {sequences}"
        # Timestamps say when each event happened (a task result may be older than the turn
        # that recorded it, as in the Durable Task Framework), so only their range is checked.
        skew = timedelta(seconds=conformance.target.clock_skew)
        for event in events:
            assert event.kind, f"event {event.sequence} has no kind"
            assert event.timestamp.tzinfo is not None, f"event {event.sequence} has a naive timestamp"
            assert state.created_at - skew <= event.timestamp <= state.last_updated_at + skew, (
                f"event {event.sequence} ({event.kind}) at {event.timestamp} is outside the instance's "
                f"life ({state.created_at} to {state.last_updated_at})"
            )

    # -- declarative definitions --------------------------------------------------------

    async def test_stored_definition_starts_by_name(self, conformance: Conformance) -> None:
        """A stored definition starts by its name, at its latest version; versions never change.

        Instances keep the version they started with (its ``name@version``
        workflow); storing a version again with other content is refused, and a
        bad document is refused before anything is stored, naming where it is bad.
        """
        conformance.requires(Feature.DEFINITIONS)
        client = conformance.client
        name = f"conformance-{uuid.uuid4().hex[:12]}"
        first = await client.put_definition(_definition(name, "1.0.0", "one"))
        assert (first.name, first.version, first.dialect) == (name, "1.0.0", "1.0")
        assert first.workflow_name == f"{name}@1.0.0"
        old = await client.start(name, {"n": 1})
        await client.put_definition(_definition(name, "2.0.0", "two"))
        assert (await client.put_definition(_definition(name, "2.0.0", "two"))).version == "2.0.0"
        new = await client.start(name, {"n": 2})
        old_state = await conformance.finish(old, RuntimeStatus.COMPLETED)
        new_state = await conformance.finish(new, RuntimeStatus.COMPLETED)
        assert old_state.output == {"says": "one", "got": {"n": 1}}
        assert old_state.workflow_name == f"{name}@1.0.0"
        assert new_state.output == {"says": "two", "got": {"n": 2}}
        assert new_state.workflow_name == f"{name}@2.0.0"
        latest = await client.get_definition(name)
        assert latest.version == "2.0.0" and latest.document == _definition(name, "2.0.0", "two")
        assert (await client.get_definition(name, "1.0.0")).document == _definition(name, "1.0.0", "one")
        listed = [(d.name, d.version) for d in await client.list_definitions() if d.name == name]
        assert listed == [(name, "1.0.0"), (name, "2.0.0")]
        with pytest.raises(DefinitionExists):
            await client.put_definition(_definition(name, "1.0.0", "changed"))
        with pytest.raises(DefinitionNotFound):
            await client.get_definition(f"{name}-missing")
        bad = _definition(name, "3.0.0", "three").replace("set:", "sett:")
        with pytest.raises(InvalidArgument, match="/do/0/answer"):
            await client.put_definition(bad)
        assert [d.version for d in await client.list_definitions() if d.name == name] == ["1.0.0", "2.0.0"]

    # -- scheduled starts ---------------------------------------------------------------

    async def test_start_at_keeps_the_instance_pending(self, conformance: Conformance) -> None:
        """An instance started with start_at stays PENDING until then, and runs after it."""
        conformance.requires(Feature.START_AT)
        start_at = datetime.now(UTC) + timedelta(seconds=START_DELAY)
        tolerance = conformance.target.clock_skew
        instance_id = await conformance.start("echo", "later", start_at=start_at)
        # Each look records when get returned: a look that returned before start_at
        # and saw anything but PENDING proves the instance started early.
        observed = []
        deadline = time.monotonic() + START_DELAY + conformance.target.timeout
        while True:
            state = await conformance.client.get(instance_id)
            assert state is not None
            observed.append((datetime.now(UTC), state.runtime_status))
            if state.runtime_status is not RuntimeStatus.PENDING:
                break
            assert time.monotonic() < deadline, "the scheduled instance never started"
            await asyncio.sleep(0.05)  # polling with a deadline: each look is checked above
        assert observed[0][1] is RuntimeStatus.PENDING, f"scheduled instance was {observed[0][1]} at once"
        started_seen_at = observed[-1][0]
        assert started_seen_at >= start_at - timedelta(seconds=tolerance), (
            f"the instance left PENDING at {started_seen_at}, before its start_at {start_at}"
        )
        state = await conformance.finish(instance_id, RuntimeStatus.COMPLETED)
        assert state.output == "later"
        if state.scheduled_start_at is not None:
            assert abs((state.scheduled_start_at - start_at).total_seconds()) <= tolerance


async def _collect(fetch: Callable[[str | None], Awaitable[Any]]) -> list[Any]:
    items: list[Any] = []
    token = None
    for _ in range(10_000):
        page = await fetch(token)
        items.extend(page.items)
        token = page.next_page_token
        if token is None:
            return items
    raise TurnoutError("list paging did not end after 10,000 pages")


def _definition(name: str, version: str, says: str) -> str:
    """A Serverless Workflow 1.0 document whose output names its version and echoes the input."""
    return (
        f"document: {{dsl: '1.0.0', namespace: conformance, name: {name}, version: '{version}'}}\n"
        "do:\n"
        "  - answer:\n"
        "      set:\n"
        f"        says: {says}\n"
        "        got: ${ . }\n"
    )
