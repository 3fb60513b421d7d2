"""Registers ``workflow.aws.stepfunctions`` through Turnout's plugin hook.

The metadata is complete and validated today; the engine calls are a later
issue. Until they land the factory refuses to build a component, so that
nothing pretends to run a workflow it cannot run.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pydantic import BaseModel

from turnout import ComponentContext, ComponentError, ComponentRegistry, ComponentType, hookimpl

from ._metadata import StepFunctionsMetadata

DISTRIBUTION = "turnout-aws-stepfunctions"
COMPONENT_TYPE = "workflow.aws.stepfunctions"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a source tree that is not installed
        return "unknown"


def _create_component(metadata: BaseModel, context: ComponentContext) -> object:
    """Refuse clearly: the metadata is valid, but this version cannot talk to AWS Step Functions yet."""
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
    """The AWS Step Functions adapter's one component type."""
    registry.register(
        ComponentType(
            type=COMPONENT_TYPE,
            metadata_model=StepFunctionsMetadata,
            factory=_create_component,
            distribution=DISTRIBUTION,
            description="Workflows run as AWS Step Functions state machine executions "
            "(engine calls: not yet implemented).",
        )
    )
