"""``make demo``: run the order workflow twice, once from component YAML and once with none.

1. ``components/`` declares a ``workflow.builtin`` component named ``orders``
   whose state is a ``state.sqlite`` file, ``.turnout/orders.db``. The demo
   starts an order, waits until the workflow says it awaits approval, approves
   it, and prints the result and the instance's history. The same component
   also runs a Serverless Workflow definition, ``definitions/shipping-quote.yaml``,
   started by its name like any workflow.
2. The same workflow with no YAML at all: ``turnout.Runtime(workflows=wf)``
   runs the built-in engine on ``./.turnout/dapr.db``.

Run it from anywhere: the files land under examples/.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import turnout

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from order_workflow import APPROVAL_EVENT, process_order, wf  # noqa: E402 - after the path is set

ORDER: dict[str, Any] = {
    "customer": "ada@example.com",
    "items": [
        {"sku": "TEAPOT", "quantity": 1, "unit_price": 35.0},
        {"sku": "CUP", "quantity": 4, "unit_price": 6.5},
        {"sku": "TRAY", "quantity": 1, "unit_price": 12.0},
    ],
}


def wait_for_stage(
    client: turnout.WorkflowClient, instance_id: str, stage: str, timeout: float = 15.0
) -> None:
    """Poll the custom status the workflow publishes until it reaches ``stage``."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(instance_id)
        assert state is not None
        if isinstance(state.custom_status, dict) and state.custom_status.get("stage") == stage:
            return
        if state.runtime_status.is_terminal:
            raise SystemExit(f"{instance_id} ended {state.runtime_status} before '{stage}': {state.failure}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{instance_id} did not reach '{stage}' within {timeout:g}s ({state.custom_status})"
            )
        time.sleep(0.02)


def print_history(events: list[turnout.HistoryEvent]) -> None:
    """Kind, name, task id and time since the start, one line each (turn markers left out)."""
    shown = [e for e in events if e.kind != "TurnStarted"]
    names = {e.task_id: e.name for e in shown if e.task_id is not None and e.name}
    start = shown[0].timestamp
    for event in shown:
        ms = (event.timestamp - start).total_seconds() * 1000
        name = event.name or names.get(event.task_id, "")
        task = f"#{event.task_id}" if event.task_id is not None else ""
        print(f"  {ms:6.0f} ms  {event.kind:<24} {name:<18} {task}".rstrip())


def run_order(client: turnout.WorkflowClient, order_id: str, approver: str) -> turnout.WorkflowState:
    """Start an order, approve it when the workflow asks, and wait for the outcome."""
    instance_id = client.start(process_order, {**ORDER, "order_id": order_id}, instance_id=order_id)
    print(f"started {instance_id}")
    wait_for_stage(client, instance_id, "awaiting approval")
    print(f"  {instance_id} is awaiting approval: raising '{APPROVAL_EVENT}'")
    client.raise_event(instance_id, APPROVAL_EVENT, approver)
    state = client.wait(instance_id, timeout=30)
    print(f"  {instance_id} {state.runtime_status}")
    return state


def main() -> int:
    """Both runs; exit status 0 when both orders shipped."""
    os.chdir(HERE)  # so .turnout/ lands in examples/ wherever the demo is started from
    suffix = uuid.uuid4().hex[:6]

    print("== 1. components/: workflow.builtin 'orders' on state.sqlite .turnout/orders.db ==")
    with turnout.Runtime(resources="components", workflows=wf) as rt:
        orders = rt.client("orders")
        state = run_order(orders, f"order-1001-{suffix}", approver="alice")
        print("result:")
        print("  " + json.dumps(state.output, indent=2).replace("\n", "\n  "))
        print("history:")
        print_history(orders.history(state.instance_id))
        print()
        print("== 1b. a declarative workflow on the same component: definitions/shipping-quote.yaml ==")
        quote_id = orders.start("shipping-quote", {**ORDER, "country": "DE"})
        quote = orders.wait(quote_id, timeout=30)
        print(f"  {quote.workflow_name} {quote.runtime_status}: {json.dumps(quote.output)}")
    first = state

    print()
    print("== 2. no YAML: turnout.Runtime(workflows=wf) -> built-in engine on .turnout/dapr.db ==")
    with turnout.Runtime(workflows=wf) as rt:
        state = run_order(rt.client(), f"order-1002-{suffix}", approver="bob")
        output = state.output or {}
        print(
            f"result: {output.get('status')}, approved by {output.get('approved_by')}, "
            f"tracking {', '.join(output.get('tracking', []))}"
        )

    shipped = all((s.output or {}).get("status") == "shipped" for s in (first, state))
    shipped = shipped and quote.runtime_status is turnout.RuntimeStatus.COMPLETED
    print()
    print("both orders shipped" if shipped else "an order did not ship")
    return 0 if shipped else 1


if __name__ == "__main__":
    sys.exit(main())
