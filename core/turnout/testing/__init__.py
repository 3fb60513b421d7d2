"""Testing helpers for Turnout plugins: the workflow-component conformance suite.

A plugin's test module subclasses :class:`WorkflowComponentSuite` and defines
a ``target`` fixture that yields a :class:`ConformanceTarget`; every check
then runs against the plugin's component, gated by the features it declares.
See docs/testing.md. Needs pytest and pytest-asyncio (``turnout[test]``).
"""

from ._harness import Conformance
from ._suite import WorkflowComponentSuite
from ._target import ROLES, ConformanceTarget, in_ci, missing_server, open_client
from ._workflows import (
    ACTIVITY,
    CUSTOM_STATUS,
    ECHO,
    EVENT_NAME,
    FAILING,
    FAILURE_MESSAGE,
    PARENT,
    SLEEPER,
    WAITER,
    child_instance_id,
    conformance_workflows,
)

__all__ = [
    "ACTIVITY",
    "CUSTOM_STATUS",
    "ECHO",
    "EVENT_NAME",
    "FAILING",
    "FAILURE_MESSAGE",
    "PARENT",
    "ROLES",
    "SLEEPER",
    "WAITER",
    "Conformance",
    "ConformanceTarget",
    "WorkflowComponentSuite",
    "child_instance_id",
    "conformance_workflows",
    "in_ci",
    "missing_server",
    "open_client",
]
