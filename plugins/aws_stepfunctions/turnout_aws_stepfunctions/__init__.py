"""Turnout adapter for AWS Step Functions: the ``workflow.aws.stepfunctions`` component type.

Installed as the ``turnout-aws-stepfunctions`` distribution and found through the
``turnout.plugins`` entry point; the core never imports it.
"""

from ._metadata import StepFunctionsMetadata

__all__ = ["StepFunctionsMetadata"]
