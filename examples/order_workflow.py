"""An order workflow, written once and run by any engine behind Turnout.

It shows the authoring API end to end: typed input (a pydantic model),
activities, a retry policy (``charge`` fails its first attempt on purpose),
a durable timer, an external approval raced against a timeout with
``when_any``, a fan-out with ``when_all``, and custom status updates that a
client can poll ("awaiting approval", ...).

Workflow code is replayed from its history, so it must be deterministic: the
clock, random numbers and I/O belong in activities. Activities may run more
than once after a crash, so they should be idempotent.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

import turnout

wf = turnout.Workflows()

APPROVAL_EVENT = "approved"
CHARGE_RETRY = turnout.RetryPolicy(max_attempts=3, first_retry_interval=timedelta(milliseconds=100))


class Item(BaseModel):
    """One line of an order."""

    sku: str
    quantity: int = Field(gt=0)
    unit_price: float = Field(ge=0)


class Order(BaseModel):
    """What a client passes to ``start``; the workflow receives it as this model."""

    order_id: str
    customer: str
    items: list[Item]
    approval_timeout_s: float = 24 * 3600


@wf.activity
def validate(ctx: turnout.ActivityContext, order: Order) -> float:
    """Check the order and return its total; a ValueError fails the workflow at once."""
    if not order.items:
        raise ValueError(f"order {order.order_id} has no items")
    return round(sum(i.quantity * i.unit_price for i in order.items), 2)


@wf.activity
def charge(ctx: turnout.ActivityContext, payment: dict[str, Any]) -> str:
    """Charge the card. The first attempt fails on purpose, to show the engine's durable retry."""
    if ctx.attempt == 1:
        print(f"  charge: attempt {ctx.attempt} failed (gateway timeout, on purpose); the engine retries")
        raise ConnectionError("payment gateway timed out")
    print(f"  charge: attempt {ctx.attempt} succeeded, {payment['amount']:.2f} charged")
    return f"rcpt-{payment['order_id']}"


@wf.activity
def reserve_inventory(ctx: turnout.ActivityContext, order: Order) -> str:
    """Hold the stock until the order ships."""
    return f"res-{order.order_id}-{sum(i.quantity for i in order.items)}"


@wf.activity
def ship(ctx: turnout.ActivityContext, item: Item) -> str:
    """Ship one item; returns its tracking number (one activity per item, in parallel)."""
    return f"TRK-{item.sku}-{item.quantity}"


@wf.workflow
def process_order(
    ctx: turnout.WorkflowContext, order: Order
) -> Generator[turnout.Task[Any], Any, dict[str, Any]]:
    """Validate, charge, reserve, wait for approval (or give up), then ship every item."""
    ctx.set_custom_status({"stage": "validating"})
    total = yield ctx.call_activity(validate, input=order)

    ctx.set_custom_status({"stage": "charging", "total": total})
    receipt = yield ctx.call_activity(
        charge, input={"order_id": order.order_id, "amount": total}, retry=CHARGE_RETRY
    )
    reservation = yield ctx.call_activity(reserve_inventory, input=order)

    # A durable timer: it survives restarts (e.g. a fraud-check cool-down).
    yield ctx.create_timer(timedelta(milliseconds=200))

    ctx.set_custom_status({"stage": "awaiting approval", "total": total})
    approval = ctx.wait_for_external_event(APPROVAL_EVENT)
    timeout = ctx.create_timer(timedelta(seconds=order.approval_timeout_s))
    winner = yield turnout.when_any([approval, timeout])
    if winner is not approval:
        ctx.set_custom_status({"stage": "expired"})
        return {"order_id": order.order_id, "status": "expired", "receipt": receipt}

    approved_by = approval.get_result()
    ctx.set_custom_status({"stage": "shipping", "approved_by": approved_by})
    tracking = yield turnout.when_all([ctx.call_activity(ship, input=item) for item in order.items])

    ctx.set_custom_status({"stage": "done"})
    return {
        "order_id": order.order_id,
        "status": "shipped",
        "total": total,
        "receipt": receipt,
        "reservation": reservation,
        "approved_by": approved_by,
        "tracking": tracking,
    }


KILOS_PER_UNIT = {"TEAPOT": 1.2, "CUP": 0.25, "TRAY": 0.8}


@wf.activity
def weigh(ctx: turnout.ActivityContext, item: dict[str, Any]) -> float:
    """Kilograms of one order line: the `weigh` function that definitions/shipping-quote.yaml calls."""
    return round(KILOS_PER_UNIT.get(item["sku"], 1.0) * item["quantity"], 3)
