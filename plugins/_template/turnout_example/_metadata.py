"""Metadata of ``workflow.example`` components.

TEMPLATE: rename ``ExampleMetadata`` and replace its fields with your engine's
settings. The model is at once the validation (a bad file is refused at
start-up with the field and the reason), the documentation (``turnout
components describe workflow.example`` prints each ``description``) and the
JSON schema (``ExampleMetadata.model_json_schema(by_alias=True)``). Keep
``extra="forbid"`` so that a misspelt field is refused, and give every field a
``description``: a test checks it.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError


class Behaviour(enum.StrEnum):
    """What an instance of a workflow does in the example engine."""

    ECHO = "echo"
    """Completes at once, with its input as its output."""
    FAIL = "fail"
    """Fails at once, with a message that names the workflow."""
    SLEEP = "sleep"
    """Stays RUNNING until it is terminated."""


class ExampleMetadata(BaseModel):
    """``workflow.example``: an in-memory teaching engine whose workflows have fixed behaviours."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # TEMPLATE: Dapr spells metadata names in camelCase; keep the Python name in
    # snake_case and give the Dapr name as the alias.
    workflows: dict[str, Behaviour] = Field(
        default_factory=lambda: {b.value: b for b in Behaviour},
        description="The workflows this engine knows, by name, each with its behaviour: 'echo' (completes "
        "with its input), 'fail' (fails) or 'sleep' (runs until terminated). A YAML mapping or a JSON "
        "object string; by default one workflow per behaviour, named after it.",
    )
    failure_message: str = Field(
        default="failed as configured",
        alias="failureMessage",
        min_length=1,
        description="Message of the failure that 'fail' workflows end with.",
    )

    # TEMPLATE: a validator's message says what was expected; Turnout prints it as
    # "invalid value '<what was written>': expected <message>", with the file and field.
    @field_validator("workflows", mode="before")
    @classmethod
    def _parse_workflows(cls, value: Any) -> Any:
        # Dapr metadata values are often strings, so a JSON object is accepted too.
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise PydanticCustomError(
                    "workflows", f"a mapping from workflow name to behaviour, in YAML or JSON ({exc})"
                ) from None
        return value

    @field_validator("workflows")
    @classmethod
    def _check_names(cls, value: dict[str, Behaviour]) -> dict[str, Behaviour]:
        if not value:
            raise PydanticCustomError("workflows", "at least one workflow")
        if any(not name.strip() for name in value):
            raise PydanticCustomError("workflows", "workflow names that are not empty")
        return value
