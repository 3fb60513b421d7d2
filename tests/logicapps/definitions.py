"""Logic Apps definitions the tests deploy: the conformance roles and a few more.

Each is a Consumption workflow definition (schema 2016-06-01) with a manual
Request trigger, as a user would write in code view. The Turnout output is the
definition output named ``output``; events arrive through HTTP Webhook actions
whose subscribe body carries ``"callbackUrl": "@{listCallbackUrl()}"``.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#"
FAILURE_CODE = "ConformanceFailure"
FAILURE_MESSAGE = "conformance: failing on purpose"


def definition(
    actions: dict[str, Any],
    outputs: dict[str, Any] | None = None,
    *,
    trigger: str = "manual",
    concurrency: int | None = None,
) -> dict[str, Any]:
    """A definition with one Request trigger named ``trigger``."""
    request: dict[str, Any] = {"type": "Request", "kind": "Http", "inputs": {"schema": {}}}
    if concurrency is not None:
        request["runtimeConfiguration"] = {"concurrency": {"runs": concurrency}}
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "triggers": {trigger: request},
        "actions": actions,
        "outputs": outputs or {},
    }


def webhook(subscribe_uri: str, run_after: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """An HTTP Webhook action that follows Turnout's event convention."""
    return {
        "type": "HttpWebhook",
        "inputs": {
            "subscribe": {
                "method": "POST",
                "uri": subscribe_uri,
                "body": {"callbackUrl": "@{listCallbackUrl()}", "run": "@{workflow().run.name}"},
            },
            "unsubscribe": {"method": "POST", "uri": subscribe_uri + "/unsubscribe"},
        },
        "runAfter": run_after or {},
    }


def echo() -> dict[str, Any]:
    """Completes at once with its input as its output."""
    return definition({}, {"output": {"type": "Object", "value": "@triggerBody()"}})


def waiter(sink: str, event: str = "go") -> dict[str, Any]:
    """Waits for the event (an HTTP Webhook action named after it) and completes with its data."""
    return definition({event: webhook(sink)}, {"output": {"type": "Object", "value": f"@body('{event}')"}})


def sleeper() -> dict[str, Any]:
    """Stays Running for an hour (a Wait action) unless cancelled."""
    return definition(
        {"Sleep": {"type": "Wait", "inputs": {"interval": {"count": 1, "unit": "Hour"}}, "runAfter": {}}}
    )


def failing() -> dict[str, Any]:
    """Fails at once: a Terminate action with runStatus Failed and a runError."""
    return definition(
        {
            "Fail": {
                "type": "Terminate",
                "inputs": {
                    "runStatus": "Failed",
                    "runError": {"code": FAILURE_CODE, "message": FAILURE_MESSAGE},
                },
                "runAfter": {},
            }
        }
    )


def responder() -> dict[str, Any]:
    """Answers the trigger request synchronously with a Response action, then composes a result."""
    return definition(
        {
            "Reply": {
                "type": "Response",
                "kind": "Http",
                "inputs": {"statusCode": 200, "body": {"accepted": "@triggerBody()?['order']"}},
                "runAfter": {},
            },
            "Total": {
                "type": "Compose",
                "inputs": {
                    "order": "@triggerBody()?['order']",
                    "note": "total for @{triggerBody()?['order']}",
                },
                "runAfter": {"Reply": ["Succeeded"]},
            },
        },
        {"output": {"type": "Object", "value": "@outputs('Total')"}},
    )


def two_outputs() -> dict[str, Any]:
    """No output named ``output``: Turnout shows every output by name."""
    return definition(
        {},
        {
            "first": {"type": "String", "value": "one"},
            "second": {"type": "Int", "value": 2},
        },
    )


def failing_action() -> dict[str, Any]:
    """A Compose that fails on the input ``{"text": "not json"}``: the run fails with ActionFailed."""
    return definition(
        {
            "Broken": {
                "type": "Compose",
                "inputs": "@json(triggerBody()?['text'])",
                "runAfter": {"Start": ["Succeeded"]},
            },
            "Start": {"type": "Compose", "inputs": "start", "runAfter": {}},
            "After": {"type": "Compose", "inputs": "after", "runAfter": {"Broken": ["Succeeded"]}},
        }
    )


def approval(sink: str) -> dict[str, Any]:
    """Two events in a row (``manager``, then ``finance``); the output has both answers."""
    return definition(
        {
            "manager": webhook(sink),
            "finance": webhook(sink, {"manager": ["Succeeded"]}),
        },
        {
            "output": {
                "type": "Object",
                "value": {"manager": "@body('manager')", "finance": "@body('finance')"},
            }
        },
    )


def timed_webhook(sink: str, timeout: str) -> dict[str, Any]:
    """An HTTP Webhook action with a time limit: unanswered, it times out and the run fails."""
    action = webhook(sink)
    action["limit"] = {"timeout": timeout}
    return definition({"go": action})


def queued() -> dict[str, Any]:
    """One run at a time (trigger concurrency 1): a second run waits, queued, as 'Waiting'."""
    return definition(
        {"Sleep": {"type": "Wait", "inputs": {"interval": {"count": 1, "unit": "Hour"}}, "runAfter": {}}},
        concurrency=1,
    )


def self_cancelling() -> dict[str, Any]:
    """Ends itself with a Terminate action whose runStatus is Cancelled."""
    return definition({"Stop": {"type": "Terminate", "inputs": {"runStatus": "Cancelled"}, "runAfter": {}}})
