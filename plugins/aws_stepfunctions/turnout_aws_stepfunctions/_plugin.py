"""Registers ``workflow.aws.stepfunctions`` through Turnout's plugin hook.

Kept cheap to import (every Turnout run imports every installed plugin): boto3
and the component module are imported only when a component is built.
"""

from __future__ import annotations

from pydantic import BaseModel

from turnout import ComponentContext, ComponentRegistry, ComponentType, WorkflowComponent, hookimpl

from ._metadata import StepFunctionsMetadata

DISTRIBUTION = "turnout-aws-stepfunctions"
COMPONENT_TYPE = "workflow.aws.stepfunctions"


def _create_component(metadata: BaseModel, context: ComponentContext) -> WorkflowComponent:
    """Build the component; reading the ASL files of ``definitions`` happens here, connecting in open()."""
    from ._component import StepFunctionsComponent

    assert isinstance(metadata, StepFunctionsMetadata)  # the registry validated it with this model
    return StepFunctionsComponent(
        metadata, name=context.name, file=context.file, working_dir=context.working_dir
    )


@hookimpl
def turnout_register_components(registry: ComponentRegistry) -> None:
    """The AWS Step Functions adapter's one component type."""
    registry.register(
        ComponentType(
            type=COMPONENT_TYPE,
            metadata_model=StepFunctionsMetadata,
            factory=_create_component,
            distribution=DISTRIBUTION,
            description="Workflows run as AWS Step Functions state machine executions (Standard "
            "workflows): start, get, list, terminate, raise event (task-token callbacks) and history.",
        )
    )
