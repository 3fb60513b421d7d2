"""Metadata of ``workflow.aws.stepfunctions`` components: validation, documentation and JSON schema.

Authentication uses the names every Dapr AWS component uses (``region``,
``endpoint``, ``accessKey``, ``secretKey``, ``sessionToken``, ``assumeRoleArn``,
``sessionName``); with none of the credentials set, the AWS SDK's default
chain applies (environment, shared config, instance or pod role).

Errors follow :mod:`turnout.metadata`'s conventions: each names what was
expected, and a rule between fields is reported on one field.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from turnout.metadata import invalid, missing

_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_STATE_MACHINE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"stateMachine:(?P<name>[^:\s]{1,80})(?::(?P<qualifier>[^:\s]{1,80}))?$"
)
_EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:[^:]*:[^:]*:(?:execution|express):")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_ARN_SHAPE = "arn:aws:states:<region>:<account>:stateMachine:<name>"


def check_region(value: str) -> str:
    """An AWS region name such as ``us-east-1``, ``eu-central-2`` or ``us-gov-west-1``."""
    if not _REGION.match(value):
        case = " in lower case" if _REGION.match(value.lower()) else ""
        raise invalid("aws_region", "an AWS region such as 'us-east-1' or 'eu-west-2'{case}", case=case)
    return value


def check_role_arn(value: str) -> str:
    """An IAM role ARN (``arn:aws:iam::<account>:role/<name>``)."""
    if not _ROLE_ARN.match(value):
        raise invalid("role_arn", "an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return value


def _check_state_machine_arn(value: str, info: ValidationInfo) -> str:
    match = _STATE_MACHINE_ARN.match(value)
    if match is None:
        if _EXECUTION_ARN.match(value):
            raise invalid(
                "state_machine_arn",
                "the ARN of a state machine ({shape}), not of an execution",
                shape=_ARN_SHAPE,
            )
        raise invalid("state_machine_arn", "a state machine ARN ({shape})", shape=_ARN_SHAPE)
    region = info.data.get("region")  # absent when the region itself was refused
    if region is not None and match.group("region") != region:
        raise invalid(
            "state_machine_arn",
            "a state machine in the component's region {region} (this one is in {other}); "
            "use one component per region",
            region=region,
            other=match.group("region"),
        )
    return value


StateMachineArn = Annotated[str, AfterValidator(_check_state_machine_arn)]
"""A state machine ARN (``arn:aws:states:<region>:<account>:stateMachine:<name>[:<qualifier>]``)."""


class StepFunctionsMetadata(BaseModel):
    """``workflow.aws.stepfunctions``: workflows run as AWS Step Functions state machine executions."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    region: str = Field(description="AWS region of the state machines, e.g. 'us-east-1'. Required.")
    endpoint: str | None = Field(
        default=None,
        description="Step Functions endpoint URL instead of AWS's own, e.g. 'http://127.0.0.1:5000' for "
        "moto or LocalStack; a value without a scheme gets https://.",
    )
    access_key: str | None = Field(
        default=None,
        alias="accessKey",
        description="AWS access key id (with secretKey); unset: the AWS SDK's default credential chain.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        alias="secretKey",
        description="AWS secret access key that goes with accessKey; reference it with secretKeyRef.",
    )
    session_token: SecretStr | None = Field(
        default=None,
        alias="sessionToken",
        description="AWS session token of temporary credentials (with accessKey and secretKey).",
    )
    assume_role_arn: str | None = Field(
        default=None,
        alias="assumeRoleArn",
        description="IAM role to assume (through STS) for every Step Functions call, as in Dapr's AWS "
        "components, e.g. 'arn:aws:iam::123456789012:role/turnout'.",
    )
    session_name: str | None = Field(
        default=None,
        alias="sessionName",
        description="Session name used when assuming assumeRoleArn; 'turnout' by default.",
    )
    role_arn: str | None = Field(
        default=None,
        alias="roleArn",
        description="IAM execution role that the state machines created from 'definitions' run as "
        "(Step Functions' CreateStateMachine roleArn). Required with definitions.",
    )
    state_machines: dict[str, StateMachineArn] = Field(
        default_factory=dict,
        alias="stateMachines",
        description="Existing state machines by workflow name: a YAML mapping or a JSON object string, "
        'e.g. {"process_order": "arn:aws:states:us-east-1:123456789012:stateMachine:orders"}.',
    )
    definitions: list[str] = Field(
        default_factory=list,
        description="Amazon States Language files to create (or update) as state machines at start-up, "
        "one workflow per file: a list of paths or glob patterns, a JSON list string, or one glob "
        "string such as 'workflows/*.asl.json'. Relative to the working directory.",
    )

    raise_event_timeout: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        alias="raiseEventTimeout",
        description="Seconds raise_event waits for a .waitForTaskToken task of the event's name to be "
        "waiting, when none is yet (Step Functions cannot hold an event until a task waits for it); then "
        "it fails with InvalidState.",
    )

    @model_validator(mode="before")
    @classmethod
    def _unset_empty(cls, data: Any) -> Any:
        # Dapr treats an empty metadata value as "not set": the default applies.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        return check_region(value)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        text = value.strip()
        if "://" not in text:
            text = f"https://{text}"
        parts = urlsplit(text)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise invalid("endpoint", "an http(s) URL such as 'http://127.0.0.1:5000'")
        if parts.query or parts.fragment:
            raise invalid("endpoint", "an endpoint URL without a query or fragment")
        return text.rstrip("/")

    @field_validator("assume_role_arn", "role_arn")
    @classmethod
    def _check_role(cls, value: str) -> str:
        return check_role_arn(value)

    @field_validator("session_name")
    @classmethod
    def _check_session_name(cls, value: str) -> str:
        if not _SESSION_NAME.match(value):
            raise invalid("session_name", "a session name of 2-64 letters, digits or '+=,.@_-'")
        return value

    @field_validator("state_machines", mode="before")
    @classmethod
    def _parse_state_machines(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise invalid(
                    "state_machines",
                    "a mapping from workflow name to state machine ARN, in YAML or JSON ({reason})",
                    reason=str(exc),
                ) from None
        if not isinstance(value, dict):
            raise invalid("state_machines", "a mapping from workflow name to state machine ARN")
        if any(not str(name).strip() for name in value):
            raise invalid("state_machines", "a mapping whose workflow names are not empty")
        return value

    @field_validator("definitions", mode="before")
    @classmethod
    def _parse_definitions(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("["):
                return [text]
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise invalid("definitions", "a JSON list of paths ({reason})", reason=str(exc)) from None
        return value

    @field_validator("definitions")
    @classmethod
    def _check_definitions(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise invalid("definitions", "paths or glob patterns that are not empty")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        model = type(self).__name__
        if self.access_key is not None and self.secret_key is None:
            raise missing(model, "secretKey, which goes with accessKey", "secretKey")
        if self.secret_key is not None and self.access_key is None:
            raise missing(model, "accessKey, which goes with secretKey", "accessKey")
        if self.session_token is not None and self.access_key is None:
            raise missing(
                model, "accessKey and secretKey, which sessionToken goes with", "accessKey", "secretKey"
            )
        if self.session_name is not None and self.assume_role_arn is None:
            raise missing(model, "assumeRoleArn, the role that sessionName is a session of", "assumeRoleArn")
        if self.definitions and self.role_arn is None:
            raise missing(
                model, "roleArn, the IAM role that state machines from definitions run as", "roleArn"
            )
        return self
