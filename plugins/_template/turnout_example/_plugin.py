"""Registers ``workflow.example`` through Turnout's plugin hook.

This module is what the ``turnout.plugins`` entry point names. It registers
types and nothing else: importing it must stay cheap, because every Turnout
run imports every installed plugin. The component module (where a real
adapter imports its engine's SDK) is imported only when a component is built.

TEMPLATE: rename the type (``workflow.<engine>``, with dots for sub-names as in
``workflow.aws.stepfunctions``), the distribution and the description.
"""

from __future__ import annotations

from pydantic import BaseModel

from turnout import ComponentContext, ComponentRegistry, ComponentType, WorkflowComponent, hookimpl

from ._metadata import ExampleMetadata

DISTRIBUTION = "turnout-example"
COMPONENT_TYPE = "workflow.example"


def _create_component(metadata: BaseModel, context: ComponentContext) -> WorkflowComponent:
    """Build one component from its validated metadata (called once per component file entry)."""
    from ._component import ExampleWorkflowComponent

    assert isinstance(metadata, ExampleMetadata)  # the registry validated it with our model
    return ExampleWorkflowComponent.from_metadata(metadata, context)


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """The example engine's one component type."""
    registry.register(
        ComponentType(
            type=COMPONENT_TYPE,
            metadata_model=ExampleMetadata,
            factory=_create_component,
            distribution=DISTRIBUTION,
            description="A teaching example: an in-memory engine whose workflows echo, fail or sleep.",
        )
    )
