"""Registers ``workflow.temporal`` through Turnout's plugin hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from turnout import ComponentContext, ComponentRegistry, ComponentType, hookimpl

from ._metadata import TemporalMetadata

if TYPE_CHECKING:
    from ._component import TemporalWorkflowComponent

COMPONENT_TYPE = "workflow.temporal"

DISTRIBUTION = "turnout-temporal"


def _create_component(metadata: BaseModel, context: ComponentContext) -> TemporalWorkflowComponent:
    """Build the component; it connects when the runtime opens it."""
    from ._component import TemporalWorkflowComponent  # temporalio is imported only when used

    assert isinstance(metadata, TemporalMetadata)
    return TemporalWorkflowComponent.from_metadata(metadata, context)


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """The Temporal adapter's one component type."""
    registry.register(
        ComponentType(
            type=COMPONENT_TYPE,
            metadata_model=TemporalMetadata,
            factory=_create_component,
            distribution=DISTRIBUTION,
            description="Workflows run by a Temporal cluster or Temporal Cloud; with hostWorker, "
            "this process also runs the turnout.Workflows code on Temporal.",
        )
    )
