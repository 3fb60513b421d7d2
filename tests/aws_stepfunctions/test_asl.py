"""State machines with each kind of ASL state, run through the adapter to the outputs the ASL spec prescribes.

moto interprets the definitions; the adapter starts them, waits for them
(polling DescribeExecution with a deadline) and reads their results back,
so each case checks the whole path: definition file -> state machine ->
execution -> Turnout state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from turnout import RuntimeStatus

from .conftest import MotoServer, callback_task, deployed, finish, unique


@dataclass(frozen=True)
class Case:
    """A state machine, an input, and what the spec says comes out."""

    definition: dict[str, Any]
    input: Any
    status: RuntimeStatus
    output: Any = None
    error: str | None = None
    check: Callable[[Any, str], None] | None = None


def pass_output(output: Any, instance_id: str) -> None:
    assert output == {
        "order": {"id": 7},
        "init": {"id": 7, "fixed": "x", "name": instance_id},
        "const": [1, 2],
    }


CHOICE = {
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
                {
                    "And": [
                        {"Variable": "$.kind", "IsPresent": True},
                        {"Not": {"Variable": "$.kind", "StringEquals": "basic"}},
                    ],
                    "Next": "Special",
                },
            ],
            "Default": "NoRoute",
        },
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.route", "End": True},
        "Special": {"Type": "Pass", "Result": "special", "ResultPath": "$.route", "End": True},
        "NoRoute": {"Type": "Fail", "Error": "NoRoute", "Cause": "no rule matched"},
    },
}

PARALLEL = {
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "A",
                    "States": {"A": {"Type": "Pass", "Parameters": {"a.$": "$.x"}, "End": True}},
                },
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": True}}},
            ],
            "End": True,
        }
    },
}

PARALLEL_CATCH = {
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": True}}},
                {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "Custom", "Cause": "branch"}}},
            ],
            "Catch": [{"ErrorEquals": ["Custom"], "ResultPath": "$.caught", "Next": "Recovered"}],
            "End": True,
        },
        "Recovered": {"Type": "Pass", "End": True},
    },
}

MAP = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "tag.$": "$.tag"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Double",
                "States": {
                    "Double": {
                        "Type": "Pass",
                        "Parameters": {
                            "i.$": "$.i",
                            "double.$": "States.MathAdd($.v, $.v)",
                            "tag.$": "$.tag",
                        },
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.out",
            "End": True,
        }
    },
}

RETRY_CATCH = {
    "StartAt": "Get",
    "States": {
        "Get": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
            "Parameters": {"TableName": "turnout-no-such-table", "Key": {"id": {"S": "1"}}},
            "Retry": [
                {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1, "BackoffRate": 1}
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Recovered"}],
            "End": True,
        },
        "Recovered": {
            "Type": "Pass",
            "Parameters": {"caught.$": "$.err.Error", "orig.$": "$.orig"},
            "End": True,
        },
    },
}

CASES = {
    "pass": Case(
        {
            "StartAt": "Init",
            "States": {
                "Init": {
                    "Type": "Pass",
                    "Parameters": {"id.$": "$.order.id", "fixed": "x", "name.$": "$$.Execution.Name"},
                    "ResultPath": "$.init",
                    "Next": "Const",
                },
                "Const": {"Type": "Pass", "Result": [1, 2], "ResultPath": "$.const", "End": True},
            },
        },
        {"order": {"id": 7}},
        RuntimeStatus.COMPLETED,
        check=pass_output,
    ),
    "paths": Case(
        {
            "StartAt": "Pick",
            "States": {
                "Pick": {
                    "Type": "Pass",
                    "InputPath": "$.data",
                    "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"},
                    "ResultPath": "$.result",
                    "OutputPath": "$.result",
                    "End": True,
                }
            },
        },
        {"data": {"a": 2, "b": 3}, "other": 1},
        RuntimeStatus.COMPLETED,
        {"sum": 5},
    ),
    "wait-seconds-path": Case(
        {
            "StartAt": "Nap",
            "States": {
                "Nap": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Done"},
                "Done": {"Type": "Succeed"},
            },
        },
        {"delay": 1},
        RuntimeStatus.COMPLETED,
        {"delay": 1},
    ),
    "choice-numeric": Case(CHOICE, {"n": 42}, RuntimeStatus.COMPLETED, {"n": 42, "route": "big"}),
    "choice-and-not": Case(
        CHOICE, {"n": 1, "kind": "vip"}, RuntimeStatus.COMPLETED, {"n": 1, "kind": "vip", "route": "special"}
    ),
    "choice-default-fail": Case(CHOICE, {"n": 1, "kind": "basic"}, RuntimeStatus.FAILED, error="NoRoute"),
    "parallel": Case(PARALLEL, {"x": 5}, RuntimeStatus.COMPLETED, [{"a": 5}, "b"]),
    "parallel-catch": Case(
        PARALLEL_CATCH,
        {"x": 1},
        RuntimeStatus.COMPLETED,
        {"x": 1, "caught": {"Error": "Custom", "Cause": "branch"}},
    ),
    "map": Case(
        MAP,
        {"items": [1, 2, 3], "tag": "t"},
        RuntimeStatus.COMPLETED,
        {
            "items": [1, 2, 3],
            "tag": "t",
            "out": [
                {"i": 0, "double": 2, "tag": "t"},
                {"i": 1, "double": 4, "tag": "t"},
                {"i": 2, "double": 6, "tag": "t"},
            ],
        },
    ),
    "retry-catch": Case(
        RETRY_CATCH,
        {"orig": 1},
        RuntimeStatus.COMPLETED,
        {"caught": "DynamoDb.ResourceNotFoundException", "orig": 1},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_asl_state_kinds(moto_server: MotoServer, tmp_path: Path, case: str) -> None:
    spec = CASES[case]
    name = unique(case)
    async with deployed(moto_server, tmp_path, {name: spec.definition}) as client:
        instance_id = await client.start(name, spec.input)
        state = await finish(client, instance_id, spec.status)
        if spec.check is not None:
            spec.check(state.output, instance_id)
        else:
            assert state.output == spec.output
        if spec.error is not None:
            assert state.failure is not None and state.failure.error_type == spec.error
        if case == "wait-seconds-path":  # the engine's own clock: the Wait state really waited
            assert (state.last_updated_at - state.created_at).total_seconds() >= 1.0
        if case == "retry-catch":  # one retry: the task was scheduled twice
            kinds = [event.kind for event in await client.history(instance_id)]
            assert kinds.count("TaskScheduled") == 2, kinds


async def test_wait_for_task_token_over_sqs(moto_server: MotoServer, tmp_path: Path) -> None:
    """The task sends its token over SQS; raise_event finds it in the history and completes the task."""
    sqs = moto_server.client("sqs")
    queue = sqs.create_queue(QueueName=unique("tokens"))["QueueUrl"]
    name = unique("callback")
    definition = {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.stage", "Next": "approve"},
            "approve": callback_task(queue, ResultPath="$.answer", Next="Done"),
            "Done": {"Type": "Succeed"},
        },
    }
    async with deployed(moto_server, tmp_path, {name: definition}) as client:
        instance_id = await client.start(name, {"order": 9})
        await client.raise_event(instance_id, "approve", {"approved": True})
        state = await finish(client, instance_id, RuntimeStatus.COMPLETED)
        assert state.output == {"order": 9, "stage": "ready", "answer": {"approved": True}}
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1, messages
    body = json.loads(messages[0]["Body"])
    assert body["input"] == {"order": 9, "stage": "ready"}
    assert body["TaskToken"]  # the same token the adapter read from the history
