"""``raise_event`` of the Logic Apps component: Turnout's HTTP Webhook convention.

The event name is the name of an HTTP Webhook action; its subscribe body
carries ``"callbackUrl": "@{listCallbackUrl()}"``; the event's data is POSTed
to that URL, which the component reads back from the action's recorded inputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.logic.models import WorkflowRun

from turnout import (
    EngineError,
    InvalidArgument,
)

from ._azure import COMPONENT_TYPE
from ._core import CALLBACK_URL_PROPERTY, FINISHED_ACTIONS, LogicAppsBase, RunRef
from ._status import runtime_status

log = logging.getLogger("turnout.logicapps")


def _all_actions(actions: dict[str, Any] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every action of a definition, inside scopes, conditions, loops and switches too."""
    for name, action in (actions or {}).items():
        if not isinstance(action, dict):
            continue
        yield name, action
        branches = [action, action.get("else") or {}, action.get("default") or {}]
        branches += [case for case in (action.get("cases") or {}).values() if isinstance(case, dict)]
        for branch in branches:
            yield from _all_actions(branch.get("actions"))


def _find_action(actions: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    return next((action for found, action in _all_actions(actions) if found == name), None)


def _webhook_names(actions: dict[str, Any] | None) -> list[str]:
    return sorted(name for name, action in _all_actions(actions) if action.get("type") == "HttpWebhook")


class EventsMixin(LogicAppsBase):
    """``raise_event`` and the definitions it reads."""

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """POST ``data`` to the callback URL of the HTTP Webhook action named ``name`` (see the docs).

        Waits (up to ``event_timeout``) for the action to start waiting. An
        event for a run that has finished, or for an action that already got
        its callback, is dropped, as Dapr drops events nobody waits for.
        """
        ref, run = await self._run_or_fail(instance_id, "raise_event")
        definition = await self._definition(ref.workflow, run)
        action = _find_action(definition.get("actions"), name)
        if action is None or action.get("type") != "HttpWebhook":
            hooks = ", ".join(_webhook_names(definition.get("actions"))) or "none"
            raise InvalidArgument(
                "event name",
                name,
                f"the name of an HTTP Webhook action of Logic App '{ref.workflow}' "
                f"(its webhook actions: {hooks})",
            )
        subscribe_body = ((action.get("inputs") or {}).get("subscribe") or {}).get("body")
        if not isinstance(subscribe_body, dict) or CALLBACK_URL_PROPERTY not in subscribe_body:
            raise InvalidArgument(
                "event name",
                name,
                f'an HTTP Webhook action whose subscribe body has "{CALLBACK_URL_PROPERTY}": '
                '"@{listCallbackUrl()}" (Turnout\'s event convention); '
                f"action '{name}' of Logic App '{ref.workflow}' has none",
            )
        deadline = time.monotonic() + self._event_timeout
        delay = 0.02
        while True:
            if await self._deliver(instance_id, ref, name, data):
                return
            if time.monotonic() >= deadline:
                raise EngineError(
                    COMPONENT_TYPE,
                    "raise_event",
                    f"action '{name}' of run '{ref.run}' ({instance_id}) did not wait for its callback "
                    f"within {self._event_timeout:g}s; raise the event again once the run reaches it",
                    retryable=True,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _deliver(self, instance_id: str, ref: RunRef, name: str, data: Any) -> bool:
        """One try: True when delivered or dropped, False to look again."""
        run = await self._run(instance_id, ref, "raise_event")
        status = runtime_status(run.status) if run is not None else None
        if run is None or status is None or status.is_terminal:
            log.info("event %r for %s dropped: its run has finished", name, instance_id)
            return True
        try:
            async with self._azure("raise_event"):
                action = await self.client.workflow_run_actions.get(self._group, ref.workflow, ref.run, name)
        except EngineError as exc:
            if isinstance(exc.__cause__, ResourceNotFoundError):
                return False  # the run has not reached the action yet
            raise
        if str(action.status or "").lower() in FINISHED_ACTIONS:
            log.info("event %r for %s dropped: the action has ended %s", name, instance_id, action.status)
            return True
        link = action.inputs_link.uri if action.inputs_link is not None else None
        if not link:
            return False  # not subscribed yet
        inputs = await self._data.request("GET", str(link), "raise_event")
        if inputs.status != 200:
            return False
        try:
            content = inputs.json() or {}
        except ValueError:
            return False
        url = ((content.get("subscribe") or {}).get("body") or {}).get(CALLBACK_URL_PROPERTY)
        if not isinstance(url, str) or not url:
            raise EngineError(
                COMPONENT_TYPE,
                "raise_event",
                f"the subscribe body of action '{name}' has no {CALLBACK_URL_PROPERTY} at run time",
                retryable=False,
            )
        answer = await self._data.request("POST", url, "raise_event", body=data, has_body=True)
        if 200 <= answer.status < 300:
            return True
        if answer.status in (404, 409):
            return False  # look again: it may have ended (dropped) or not be waiting yet
        raise EngineError(
            COMPONENT_TYPE,
            "raise_event",
            f"the callback of action '{name}' answered HTTP {answer.status} {answer.error()}",
            retryable=answer.status in (408, 429) or answer.status >= 500,
        )

    async def _definition(self, workflow: str, run: WorkflowRun) -> dict[str, Any]:
        """The definition of the Logic App version the run runs (versions never change)."""
        version = run.workflow.name if run.workflow is not None and run.workflow.name else None
        key = (workflow, str(version))
        if key not in self._definitions:
            async with self._azure("raise_event"):
                if version:
                    found = await self.client.workflow_versions.get(self._group, workflow, version)
                else:
                    found = await self.client.workflows.get(self._group, workflow)
            definition = found.definition if isinstance(found.definition, dict) else {}
            if not version:
                return definition
            self._definitions[key] = definition
        return self._definitions[key]
