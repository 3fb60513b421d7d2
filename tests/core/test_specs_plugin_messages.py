"""A plugin's own validation messages reach the user, and never with secret values in them."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

import turnout
from turnout._build import build_components
from turnout._plugins import load_registry
from turnout._specs import read_specs


class PairMetadata(BaseModel):
    """Two fields that only make sense together, checked by a rule on the whole model."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user: str | None = Field(default=None, description="User name.")
    password: str | None = Field(default=None, description="Password (a secret).")

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password go together")
        return self


class PairPlugin:
    @turnout.hookimpl
    def turnout_register_components(self, registry: turnout.ComponentRegistry) -> None:
        registry.register(
            turnout.ComponentType(
                type="state.pair", metadata_model=PairMetadata, factory=lambda m, c: m, distribution="tests"
            )
        )


COMPONENTS = """
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: env}
spec: {type: secretstores.local.env, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pair}
spec:
  type: state.pair
  version: v1
  metadata:
  - name: password
    secretKeyRef: {name: PAIR_PASSWORD, key: PAIR_PASSWORD}
auth: {secretStore: env}
"""


def test_a_model_rule_shows_its_message_but_no_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_PLUGINS", "secretstores")
    monkeypatch.setenv("PAIR_PASSWORD", "hunter2-very-secret")
    registry = load_registry(extra_plugins=(PairPlugin(),))
    file = tmp_path / "pair.yaml"
    file.write_text(COMPONENTS)
    with pytest.raises(turnout.ComponentError) as info:
        build_components(read_specs(file, registry), working_dir=tmp_path, workflows=None)
    message = str(info.value)
    assert "user and password go together" in message
    assert "component 'pair'" in message
    assert "hunter2" not in message
