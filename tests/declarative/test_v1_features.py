"""Interpreter features the corpus does not cover, each on a small definition of our own."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import turnout
from turnout.declarative import Settings, load_definition, register

from .conftest import Runner, fault_of
from .http_stub import HttpStub

S = turnout.RuntimeStatus


def doc(name: str, body: str, *, use: str = "") -> str:
    return f"document: {{dsl: '1.0.3', namespace: test, name: {name}, version: '1.0.0'}}\n{use}{body}"


async def test_data_flow_context_and_descriptors(run: Runner) -> None:
    text = doc(
        "data-flow",
        """
input:
  from: .order
do:
  - remember:
      set:
        total: ${ .price * .quantity }
      export:
        as: '{ total: .total }'
  - describe:
      input:
        from: '{ item: .total }'
      set:
        fromContext: ${ $context.total }
        task: ${ $task.reference }
        name: ${ $task.name }
        input: ${ $input }
        rawWorkflowInput: ${ $workflow.input.order.price }
        runtime: ${ $runtime.name }
      output:
        as: '. + { raw: $task.output.task }'
output:
  as: '{ result: ., context: $context }'
""",
    )
    state = await run(text, {"order": {"price": 5, "quantity": 3}})
    assert state.output == {
        "result": {
            "fromContext": 15,
            "task": "/do/1/describe",
            "name": "describe",
            "input": {"item": 15},
            "rawWorkflowInput": 5,
            "runtime": "Turnout",
            "raw": "/do/1/describe",
        },
        "context": {"total": 15},
    }


async def test_then_exit_leaves_only_the_enclosing_do(run: Runner) -> None:
    text = doc(
        "exit",
        """
do:
  - inner:
      do:
        - one: {set: {steps: ['one']}, then: exit}
        - skipped: {set: {steps: ['skipped']}}
  - after:
      set:
        steps: '${ .steps + ["after"] }'
""",
    )
    assert (await run(text)).output == {"steps": ["one", "after"]}


async def test_for_with_names_while_and_if(run: Runner) -> None:
    text = doc(
        "loop",
        """
do:
  - sum:
      for: {each: n, at: i, in: .numbers}
      while: .total < 6
      do:
        - add:
            if: $n != 0
            set:
              total: ${ (.total // 0) + $n }
              last: ${ $i }
""",
    )
    state = await run(text, {"numbers": [1, 0, 2, 3, 4, 5]})
    assert state.output == {"total": 6, "last": 3}


async def test_fork_runs_branches_concurrently_and_keeps_their_order(run: Runner, stub: HttpStub) -> None:
    text = doc(
        "fan-out",
        """
do:
  - pets:
      fork:
        branches:
          - first:
              call: http
              with: {method: get, endpoint: 'https://petstore.swagger.io/v2/pet/1'}
          - second:
              call: http
              with: {method: get, endpoint: 'https://petstore.swagger.io/v2/pet/2'}
          - literal:
              set: {id: 0}
      output:
        as: '[.[].id]'
""",
    )
    assert (await run(text)).output == [1, 2, 0]


async def test_a_failing_branch_fails_the_fork(run: Runner) -> None:
    text = doc(
        "fork-fails",
        """
do:
  - pets:
      fork:
        branches:
          - ok:
              call: http
              with: {method: get, endpoint: 'https://petstore.swagger.io/v2/pet/1'}
          - missing:
              call: http
              with: {method: get, endpoint: 'https://petstore.swagger.io/v2/pet/404'}
""",
    )
    fault = fault_of(await run(text))
    assert (fault["status"], fault["instance"]) == (404, "/do/0/pets/fork/branches/1/missing")


CATCHING = """
use:
  errors:
    outOfStock:
      type: https://example.com/errors/out-of-stock
      status: 409
      title: Out of stock
"""


@pytest.mark.parametrize(
    ("stock", "expected"),
    [
        (0, {"handled": "Out of stock", "instance": "/do/0/attempt/try/0/check", "status": 409}),
        (5, {"stock": 5}),
    ],
)
async def test_try_catch_as_when_and_catch_do(run: Runner, stock: int, expected: Any) -> None:
    text = doc(
        "catching",
        """
do:
  - attempt:
      try:
        - check:
            if: .stock == 0
            raise: {error: outOfStock}
      catch:
        errors:
          with: {status: 409}
        as: problem
        when: .title == "Out of stock"
        exceptWhen: $problem.status == 500
        do:
          - report:
              set:
                handled: ${ $problem.title }
                instance: ${ $problem.instance }
                status: ${ $problem.status }
""",
        use=CATCHING,
    )
    assert (await run(text, {"stock": stock})).output == expected


async def test_an_error_the_filter_does_not_match_goes_through(run: Runner) -> None:
    text = doc(
        "not-caught",
        """
do:
  - attempt:
      try:
        - fail: {raise: {error: outOfStock}}
      catch:
        errors:
          with: {type: https://serverlessworkflow.io/spec/1.0.0/errors/communication}
""",
        use=CATCHING,
    )
    state = await run(text)
    assert state.failure is not None and state.failure.error_type == "https://example.com/errors/out-of-stock"
    assert fault_of(state)["instance"] == "/do/0/attempt/try/0/fail"


async def test_expression_errors_are_spec_faults(run: Runner) -> None:
    text = doc("bad-data", "do:\n  - pick:\n      set:\n        x: ${ .items[0] }\n")
    state = await run(text, {"items": "not a list"})
    fault = fault_of(state)
    assert state.failure is not None
    assert state.failure.error_type == "https://serverlessworkflow.io/spec/1.0.0/errors/expression"
    assert (fault["status"], fault["instance"]) == (400, "/do/0/pick/set/x")
    assert "Cannot index string" in fault["detail"]


async def test_functions_and_activities(running: Runner, settings: Settings) -> None:
    wf = turnout.Workflows()

    @wf.activity(name="discount")
    def discount(ctx: turnout.ActivityContext, order: dict[str, Any]) -> dict[str, Any]:
        if order["total"] < 0:
            raise ValueError("negative total")
        return {"total": order["total"] * 0.9}

    text = doc(
        "functions",
        """
do:
  - lookup:
      call: getPet
      with: {petId: 2}
  - reduce:
      call: discount
      with:
        total: 100
      output:
        as: '{ pet: $input.name, total: .total }'
""",
        use="""
use:
  functions:
    getPet:
      call: http
      with:
        method: get
        endpoint: https://petstore.swagger.io/v2/pet/{petId}
""",
    )
    failing = doc("failing-activity", "do:\n  - reduce:\n      call: discount\n      with: {total: -1}\n")
    async with running(text, failing, workflows=wf) as client:
        ok = await client.wait(await client.start("functions"), timeout=30)
        bad = await client.wait(await client.start("failing-activity"), timeout=30)
    assert ok.output == {"pet": "Rantanplan", "total": 90.0}
    fault = fault_of(bad)
    assert fault["type"] == "https://serverlessworkflow.io/spec/1.0.0/errors/runtime"
    assert fault["detail"] == "ValueError: negative total"
    assert fault["instance"] == "/do/0/reduce"


AUTH = """
use:
  authentications:
    petstoreToken:
      bearer:
        token: ${ .token }
    vault:
      basic:
        use: httpbinCredentials
"""


async def test_bearer_and_basic_from_secrets(running: Runner, stub: HttpStub, settings: Settings) -> None:
    text = doc(
        "auth",
        """
do:
  - bearer:
      call: http
      with:
        method: get
        endpoint: {uri: 'https://httpbin.org/bearer', authentication: {use: petstoreToken}}
      export:
        as: '{ token: .token }'
  - basic:
      call: http
      with:
        method: get
        endpoint: {uri: 'https://httpbin.org/basic-auth/ann/s3cret', authentication: {use: vault}}
      output:
        as: '{ user: .user, token: $context.token }'
""",
        use=AUTH,
    )
    with_secrets = settings.model_copy(
        update={"secrets": {"httpbinCredentials": {"username": "ann", "password": "s3cret"}}}
    )
    async with running(text, settings_=with_secrets) as client:
        iid = await client.start("auth", input={"token": "t-42"})
        state = await client.wait(iid, timeout=30)
        history = await client.history(iid)
    assert state.output == {"user": "ann", "token": "t-42"}
    recorded = json.dumps([event.model_dump(mode="json") for event in history])
    assert "httpbinCredentials" in recorded  # the secret's name travels to the activity...
    assert base64.b64encode(b"ann:s3cret").decode() not in recorded  # ...its value does not


async def test_wrong_credentials_are_a_communication_error(run: Runner) -> None:
    text = doc(
        "wrong-auth",
        """
do:
  - login:
      call: http
      with:
        method: get
        endpoint:
          uri: https://httpbin.org/basic-auth/ann/right
          authentication: {basic: {username: ann, password: wrong}}
""",
    )
    fault = fault_of(await run(text))
    assert (fault["type"], fault["status"]) == (
        "https://serverlessworkflow.io/spec/1.0.0/errors/communication",
        401,
    )


async def test_openapi_unknown_operation(run: Runner) -> None:
    text = doc(
        "openapi-unknown",
        """
do:
  - call:
      call: openapi
      with:
        document: {endpoint: 'https://petstore.swagger.io/v2/swagger.json'}
        operationId: deletePet
""",
    )
    fault = fault_of(await run(text))
    assert fault["type"].endswith("/errors/configuration")
    assert "no operationId 'deletePet'" in fault["detail"]


async def test_run_workflow_with_an_expression_input(running: Runner) -> None:
    parent = doc(
        "parent",
        "do:\n  - child:\n      run:\n        workflow:\n"
        "          {namespace: test, name: child, version: '1.0.0', input: '${ {n: .n} }'}\n",
    )
    child = doc("child", "do:\n  - double:\n      set:\n        doubled: ${ .n * 2 }\n")
    failing = doc(
        "failing-parent",
        "do:\n  - child:\n      run:\n        workflow: {name: child, version: '1', namespace: t}\n",
    )
    async with running(parent, child, failing) as client:
        ok = await client.wait(await client.start("parent", input={"n": 21}), timeout=30)
        bad = await client.wait(await client.start("failing-parent", input={"n": [1]}), timeout=30)
    assert ok.output == {"doubled": 42}
    fault = fault_of(bad)
    assert fault["type"].endswith("/errors/expression")
    assert fault["instance"] == "/do/0/double/set/doubled"  # the child's own pointer


LISTEN_CORRELATED = doc(
    "room-readings",
    """
do:
  - readings:
      listen:
        to:
          all:
            - with: {type: sensor.temperature, source: 'https://home/.*'}
              correlate:
                room: {from: .roomid}
            - with: {type: sensor.humidity}
              correlate:
                room: {from: .roomid}
        read: envelope
      output:
        as: '{ room: .[0].roomid, temperature: .[0].data, humidity: .[1].data }'
""",
)


async def test_listen_all_with_correlation_drops_other_rooms(running: Runner) -> None:
    def event(kind: str, room: str, value: float, source: str = "https://home/sensors") -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"{kind}-{room}",
            "source": source,
            "type": kind,
            "roomid": room,
            "data": value,
        }

    async with running(LISTEN_CORRELATED) as client:
        iid = await client.start("room-readings")
        await client.raise_event(
            iid, "sensor.temperature", event("sensor.temperature", "kitchen", 9, "https://x/y")
        )
        await client.raise_event(iid, "sensor.temperature", event("sensor.temperature", "attic", 21.5))
        await client.raise_event(iid, "sensor.humidity", event("sensor.humidity", "cellar", 80))  # other room
        await client.raise_event(iid, "sensor.humidity", event("sensor.humidity", "attic", 40))
        state = await client.wait(iid, timeout=30)
    assert state.output == {"room": "attic", "temperature": 21.5, "humidity": 40}


async def test_listen_any_until(running: Runner) -> None:
    text = doc(
        "until",
        """
do:
  - collect:
      listen:
        to:
          any:
            - with: {type: bid}
          until: 'map(.data.amount) | add >= 100'
        read: envelope
      output:
        as: 'map(.data.amount)'
""",
    )
    async with running(text) as client:
        iid = await client.start("until")
        for amount in (30, 50, 40, 99):
            await client.raise_event(
                iid, "bid", {"type": "bid", "source": "t", "id": str(amount), "data": {"amount": amount}}
            )
        state = await client.wait(iid, timeout=30)
    assert state.output == [30, 50, 40]


async def test_a_waiting_instance_survives_a_restart(tmp_path: Path, settings: Settings) -> None:
    """The interpreter is replay-safe: a new runtime rebuilds the instance from its history."""
    text = doc(
        "restart",
        """
do:
  - fetch:
      call: http
      with: {method: get, endpoint: 'https://petstore.swagger.io/v2/pet/1'}
  - approval:
      listen:
        to:
          one: {with: {type: approved}}
      output:
        as: '{ approvedBy: .by }'
      export:
        as: '{ approvedBy: .approvedBy }'
  - done:
      set:
        pet: ${ $input.approvedBy + " approved" }
        by: ${ $context.approvedBy }
""",
    )
    definition = load_definition(text)

    def registry() -> turnout.Workflows:
        wf = turnout.Workflows()
        register(wf, definition, settings=settings)
        return wf

    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()
        iid = await client.start("restart")
        await client.wait(iid, until=["RUNNING"], timeout=30)
    async with turnout.AsyncRuntime(workflows=registry(), working_dir=tmp_path) as rt:
        client = rt.client()
        await client.raise_event(iid, "approved", {"type": "approved", "data": {"by": "dana"}})
        state = await client.wait(iid, timeout=30)
    assert state.output == {"pet": "dana approved", "by": "dana"}


async def test_timeouts_race_a_durable_timer(run: Runner) -> None:
    text = doc(
        "timeouts",
        """
use:
  timeouts:
    brief:
      after: {milliseconds: 30}
do:
  - guarded:
      try:
        - approval:
            listen:
              to:
                one: {with: {type: never.sent}}
            timeout: brief
      catch:
        errors:
          with: {type: https://serverlessworkflow.io/spec/1.0.0/errors/timeout}
        as: late
        do:
          - note:
              set:
                timedOut: ${ $late.instance }
                status: ${ $late.status }
""",
    )
    assert (await run(text)).output == {"timedOut": "/do/0/guarded/try/0/approval", "status": 408}
    whole = doc("whole", "timeout: {after: PT0.03S}\ndo:\n  - wait: {wait: PT1H}\n")
    fault = fault_of(await run(whole))
    assert (fault["type"], fault["instance"]) == (
        "https://serverlessworkflow.io/spec/1.0.0/errors/timeout",
        "/",
    )


async def test_task_output_and_export_schemas(run: Runner) -> None:
    text = doc(
        "schemas",
        """
do:
  - count:
      set:
        n: ${ .n }
      output:
        schema:
          document: {type: object, properties: {n: {type: integer}}, required: [n]}
      export:
        as: '{ seen: .n }'
        schema:
          document: {type: object, properties: {seen: {type: integer, maximum: 10}}}
""",
    )
    assert (await run(text, {"n": 3})).output == {"n": 3}
    wrong_type = fault_of(await run(text, {"n": "three"}))
    assert (wrong_type["instance"], wrong_type["detail"]) == (
        "/do/0/count/output/schema",
        "/n: 'three' is not of type 'integer'",
    )
    too_big = fault_of(await run(text, {"n": 11}))
    assert too_big["instance"] == "/do/0/count/export/schema"


async def test_a_missing_secret_is_an_authorization_error(run: Runner) -> None:
    text = doc(
        "no-secret",
        """
do:
  - login:
      call: http
      with:
        method: get
        endpoint:
          uri: https://httpbin.org/basic-auth/ann/s3cret
          authentication: {basic: {use: nowhere}}
""",
    )
    fault = fault_of(await run(text))
    assert (fault["type"], fault["status"]) == (
        "https://serverlessworkflow.io/spec/1.0.0/errors/authorization",
        403,
    )
    assert fault["detail"] == "no secret named 'nowhere' is configured (Settings.secrets)"


async def test_emit_checks_the_event_it_builds(run: Runner) -> None:
    text = doc(
        "bad-event",
        "do:\n  - tell:\n      emit:\n        event:\n"
        "          with:\n            source: x\n            type: ${ .kind }\n",
    )
    fault = fault_of(await run(text, {"kind": None}))
    assert (fault["type"].rsplit("/", 1)[1], fault["instance"]) == (
        "validation",
        "/do/0/tell/emit/event/with/type",
    )


PORTABLE = """
document: {dsl: '1.0.3', namespace: test, name: portable, version: '1.0.0'}
use:
  retries:
    quick:
      delay: {milliseconds: 5}
      backoff: {linear: {}}
      limit: {attempt: {count: 4}}
do:
  - gather:
      fork:
        branches:
          - pet:
              try:
                - get:
                    call: http
                    with: {method: get, endpoint: 'https://petstore.swagger.io/v2/pet/{petId}'}
              catch:
                errors: {with: {status: 503}}
                retry: quick
          - signal:
              listen:
                to:
                  all:
                    - with: {type: approved}
                      correlate: {order: {from: .data.order, expect: '${ .order }'}}
          - pause:
              wait: {milliseconds: 20}
              output:
                as: '"waited"'
          - raced:
              fork:
                compete: true
                branches:
                  - slow: {wait: PT1H}
                  - fast: {set: {winner: fast}}
  - child:
      run:
        workflow: {namespace: test, name: portable-child, version: '1.0.0', input: '${ {pet: .[0].name} }'}
      timeout: {after: PT30S}
"""

PORTABLE_CHILD = """
document: {dsl: '1.0.3', namespace: test, name: portable-child, version: '1.0.0'}
do:
  - greet:
      set:
        greeting: ${ "Hello " + .pet }
        by: ${ $runtime.name }
"""


async def test_a_rich_definition_on_the_builtin_engine(running: Runner, stub: HttpStub) -> None:
    """The definition test_v1_temporal runs on Temporal, here on the built-in engine: same outcome."""
    stub.fail_next("/v2/pet/2", 503, 503)
    async with running(PORTABLE, PORTABLE_CHILD) as client:
        iid = await client.start("portable", input={"petId": 2, "order": "A-1"})
        await client.raise_event(iid, "approved", {"type": "approved", "data": {"order": "B-2"}})
        await client.raise_event(iid, "approved", {"type": "approved", "data": {"order": "A-1"}})
        state = await client.wait(iid, timeout=60)
    assert state.output == {"greeting": "Hello Rantanplan", "by": "Turnout"}
