"""A workflow app written with the official Dapr SDK (``dapr.ext.workflow``), unchanged, for Turnout.

Run as ``python sdk_app.py`` it connects its worker to ``DAPR_GRPC_ENDPOINT``,
prints ``worker ready`` and serves until SIGTERM (or until it is killed);
``python sdk_app.py run NAME INPUT`` starts one instance with the SDK's
client, waits for it and prints its status and output.
``SLOW_ACTIVITY_GATE`` names a file: the ``gated`` activity waits until it
exists (a worker that is killed mid-activity never sees it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import dapr.ext.workflow as wf

runtime = wf.WorkflowRuntime()
attempts: dict[str, int] = {}


@runtime.activity(name="add_one")
def add_one(ctx: wf.WorkflowActivityContext, value: int) -> int:
    return value + 1


@runtime.activity(name="square")
def square(ctx: wf.WorkflowActivityContext, value: int) -> int:
    return value * value


@runtime.activity(name="flaky")
def flaky(ctx: wf.WorkflowActivityContext, key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] < 3:
        raise RuntimeError(f"attempt {attempts[key]} fails on purpose")
    return f"{key} after {attempts[key]} attempts"


@runtime.activity(name="gated")
def gated(ctx: wf.WorkflowActivityContext, value: str) -> str:
    gate = os.environ.get("SLOW_ACTIVITY_GATE")
    if gate:
        print(f"gated activity started: {value}", flush=True)
        while not Path(gate).exists():
            time.sleep(0.05)  # a worker that is killed here never returns
    return f"{value} done by {os.getpid()}"


@runtime.workflow(name="chain")
def chain(ctx: wf.DaprWorkflowContext, value: int):  # type: ignore[no-untyped-def]
    first = yield ctx.call_activity(add_one, input=value)
    second = yield ctx.call_activity(add_one, input=first)
    third = yield ctx.call_activity(square, input=second)
    return third


@runtime.workflow(name="fan_out")
def fan_out(ctx: wf.DaprWorkflowContext, values: list[int]):  # type: ignore[no-untyped-def]
    results = yield wf.when_all([ctx.call_activity(square, input=v) for v in values])
    return sum(results)


@runtime.workflow(name="timer")
def timer(ctx: wf.DaprWorkflowContext, seconds: float):  # type: ignore[no-untyped-def]
    started = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (ctx.current_utc_datetime - started).total_seconds()


@runtime.workflow(name="approval")
def approval(ctx: wf.DaprWorkflowContext, order: str):  # type: ignore[no-untyped-def]
    decision = yield ctx.wait_for_external_event("approve")
    return {"order": order, "decision": decision}


@runtime.workflow(name="child")
def child(ctx: wf.DaprWorkflowContext, value: int):  # type: ignore[no-untyped-def]
    result = yield ctx.call_activity(add_one, input=value)
    return result * 10


@runtime.workflow(name="parent")
def parent(ctx: wf.DaprWorkflowContext, value: int):  # type: ignore[no-untyped-def]
    results = yield wf.when_all(
        [ctx.call_child_workflow(child, input=value), ctx.call_child_workflow(child, input=value + 1)]
    )
    return results


@runtime.workflow(name="retrying")
def retrying(ctx: wf.DaprWorkflowContext, key: str):  # type: ignore[no-untyped-def]
    policy = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=3)
    return (yield ctx.call_activity(flaky, input=key, retry_policy=policy))


@runtime.workflow(name="waiting")
def waiting(ctx: wf.DaprWorkflowContext, _: object):  # type: ignore[no-untyped-def]
    ctx.set_custom_status("waiting for go")
    value = yield ctx.wait_for_external_event("go")
    done = yield ctx.call_activity(add_one, input=value)
    return done


@runtime.workflow(name="slow")
def slow(ctx: wf.DaprWorkflowContext, value: str):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(gated, input=value))


@runtime.workflow(name="parent_of_local")
def parent_of_local(ctx: wf.DaprWorkflowContext, value: int):  # type: ignore[no-untyped-def]
    # "tripled" is registered in the server's process (local_flows.py), not here.
    return (yield ctx.call_child_workflow("tripled", input=value))


@runtime.workflow(name="patched")
def patched(ctx: wf.DaprWorkflowContext, _: object):  # type: ignore[no-untyped-def]
    path = "new" if ctx.is_patched("faster-path") else "old"
    value = yield ctx.wait_for_external_event("go")  # a second turn replays the first
    again = "new" if ctx.is_patched("faster-path") else "old"
    return f"{path}/{again}/{value}"


@runtime.workflow(name="counter")
def counter(ctx: wf.DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    if n < 3:
        yield ctx.call_activity(add_one, input=n)
        ctx.continue_as_new(n + 1)
        return None
    return n


@runtime.workflow(name="deadline")
def deadline(ctx: wf.DaprWorkflowContext, seconds: float):  # type: ignore[no-untyped-def]
    try:
        answer = yield ctx.wait_for_external_event("answer", timeout=timedelta(seconds=seconds))
    except Exception as exc:  # the SDK's timeout error
        return f"no answer ({type(exc).__name__})"
    return f"answer: {answer}"


def run(name: str, value: str) -> None:
    """Start one instance, wait for it, print its status and output (a client, not a worker)."""
    client = wf.DaprWorkflowClient()
    try:
        instance_id = client.schedule_new_workflow(name, input=json.loads(value))
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=60)
        assert state is not None
        print(f"{state.runtime_status.name} {state.serialized_output}", flush=True)
    finally:
        client.close()


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        run(sys.argv[2], sys.argv[3])
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime.start()
    print("worker ready", flush=True)
    try:
        stop.wait()
    finally:
        runtime.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
