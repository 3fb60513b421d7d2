"""Registers ``workflow.temporal`` through Turnout's plugin hook.

The metadata is complete and validated today; the engine calls (start, get,
list, signal, pause, terminate, delete) are a later issue. Until they land the
factory refuses to build a component, so that nothing pretends to run a
workflow it cannot run.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel

from turnout import ComponentContext, ComponentError, ComponentRegistry, ComponentType, hookimpl

from ._metadata import TemporalMetadata

DISTRIBUTION = "turnout-temporal"
COMPONENT_TYPE = "workflow.temporal"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that is not installed
        return "unknown"


def _create_component(metadata: BaseModel, context: ComponentContext) -> object:
    """Refuse clearly: the metadata is valid, but this version cannot talk to Temporal yet."""
    raise ComponentError(
        f"the metadata is valid, but the {COMPONENT_TYPE} adapter's engine calls are not implemented "
        f"in this version yet ({DISTRIBUTION} {_version()}); use workflow.builtin until a release "
        "that implements them",
        file=context.file,
        component=context.name,
        field="spec.type",
    )


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """The Temporal adapter's one component type."""
    registry.register(
        ComponentType(
            type=COMPONENT_TYPE,
            metadata_model=TemporalMetadata,
            factory=_create_component,
            distribution=DISTRIBUTION,
            description="Workflows run by a Temporal cluster or Temporal Cloud "
            "(engine calls: not yet implemented).",
        )
    )
