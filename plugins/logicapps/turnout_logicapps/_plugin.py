"""Registers ``workflow.azure.logicapps`` through Turnout's plugin hook.

Importing this module stays cheap (every Turnout run imports every installed
plugin): the Azure SDK is imported only when a component is built.
"""

from __future__ import annotations

from pydantic import BaseModel

from turnout import ComponentContext, ComponentRegistry, ComponentType, WorkflowComponent, hookimpl

from ._metadata import LogicAppsMetadata

DISTRIBUTION = "turnout-logicapps"
COMPONENT_TYPE = "workflow.azure.logicapps"


def _create_component(metadata: BaseModel, context: ComponentContext) -> WorkflowComponent:
    """Build one component from its validated metadata; Azure is first called on the first request."""
    from ._component import LogicAppsComponent

    assert isinstance(metadata, LogicAppsMetadata)  # the registry validated it with our model
    return LogicAppsComponent.from_metadata(metadata, context)


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """The Azure Logic Apps adapter's one component type."""
    registry.register(
        ComponentType(
            type=COMPONENT_TYPE,
            metadata_model=LogicAppsMetadata,
            factory=_create_component,
            distribution=DISTRIBUTION,
            description="Workflows run as Azure Logic Apps (Consumption) runs, through the Azure SDK.",
        )
    )
