"""The registry of component types that plugins fill through their hooks.

A plugin registers, per type, a pydantic model of its metadata (which is the
validation, the documentation and the JSON schema at once) and a factory that
builds the component from validated metadata.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ._errors import ComponentError

if TYPE_CHECKING:
    from ._workflows import Workflows


class ComponentKind(enum.StrEnum):
    """The building block a component type belongs to (the part of ``spec.type`` before the dot)."""

    WORKFLOW = "workflow"
    STATE = "state"
    SECRET_STORE = "secretstores"

    @classmethod
    def of(cls, component_type: str) -> ComponentKind | None:
        """The kind of a type name such as ``state.sqlite``, or None for an unknown category."""
        prefix = component_type.split(".", 1)[0]
        try:
            return cls(prefix)
        except ValueError:
            return None


@dataclass
class ComponentContext:
    """What a factory may use besides its metadata.

    ``resolve`` returns another, already created component by name (a workflow
    component finds its state store this way); ``workflows`` is the
    application's registry of workflow code, if any.
    """

    name: str
    component_type: str
    file: str | None
    working_dir: Path
    workflows: Workflows | None
    resolve: Callable[[str, ComponentKind], Any]


Factory = Callable[[BaseModel, ComponentContext], Any]


@dataclass(frozen=True)
class ComponentType:
    """One registered type: ``workflow.temporal``, ``state.sqlite`` and so on."""

    type: str
    metadata_model: type[BaseModel]
    factory: Factory
    distribution: str
    """The distribution that provides it (``turnout-temporal``), shown to users."""
    description: str = ""
    aliases: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("v1",)

    @property
    def kind(self) -> ComponentKind:
        """The building block, from the type's prefix."""
        kind = ComponentKind.of(self.type)
        assert kind is not None  # checked at registration
        return kind


# Types that Turnout knows of but whose plugin may not be installed: the
# message for an unknown type names the distribution to install.
KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "workflow.temporal": "turnout-temporal",
    "workflow.aws.stepfunctions": "turnout-aws-stepfunctions",
    "workflow.azure.logicapps": "turnout-logicapps",
}


@dataclass
class ComponentRegistry:
    """Component types by name (aliases included), as the loaded plugins registered them."""

    _types: dict[str, ComponentType] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def register(self, component_type: ComponentType) -> None:
        """Add a type; a name registered twice is a plugin bug and is refused."""
        if ComponentKind.of(component_type.type) is None:
            kinds = ", ".join(k.value for k in ComponentKind)
            raise ValueError(f"component type '{component_type.type}' must start with one of: {kinds}")
        for name in (component_type.type, *component_type.aliases):
            if name in self._types or name in self._aliases:
                existing = self.lookup(name)
                raise ValueError(
                    f"component type '{name}' is registered twice "
                    f"(by {existing.distribution} and {component_type.distribution})"
                )
        self._types[component_type.type] = component_type
        for alias in component_type.aliases:
            self._aliases[alias] = component_type.type

    def lookup(self, name: str) -> ComponentType:
        """The type registered under ``name`` (case-insensitive, aliases included).

        Raises ComponentError naming the distribution to install and the
        installed types.
        """
        key = name.lower()
        key = self._aliases.get(key, key)
        found = self._types.get(key)
        if found is not None:
            return found
        installed = ", ".join(sorted(self.names())) or "none"
        hint = ""
        if key in KNOWN_DISTRIBUTIONS:
            hint = f"install its plugin with 'pip install {KNOWN_DISTRIBUTIONS[key]}'; "
        raise ComponentError(
            f"unknown component type '{name}': {hint}installed types are: {installed}",
            field="spec.type",
        )

    def names(self) -> list[str]:
        """Every registered name, aliases included."""
        return [*self._types, *self._aliases]

    def __iter__(self) -> Iterator[ComponentType]:
        return iter(sorted(self._types.values(), key=lambda t: t.type))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return key in self._types or key in self._aliases
