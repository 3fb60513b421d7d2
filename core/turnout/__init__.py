"""Turnout: one management API for any workflow engine.

Declare a component in YAML, install the adapter plugin for its engine, and
start, get, list, wait, pause, resume, terminate, raise events and purge the
same way from Python, HTTP or the command line. With no configuration the
built-in durable engine runs on SQLite, in-process.
"""

from ._component import WorkflowComponent
from ._errors import (
    ComponentError,
    ComponentErrors,
    ComponentNotFound,
    DefinitionExists,
    DefinitionNotFound,
    EngineError,
    InstanceExists,
    InstanceNotFound,
    InvalidArgument,
    InvalidState,
    TurnoutError,
    Unsupported,
    WaitTimeout,
    WorkflowNotRegistered,
)
from ._models import (
    TERMINAL_STATUSES,
    FailureDetails,
    Feature,
    HistoryEvent,
    ListQuery,
    RuntimeStatus,
    StartRequest,
    WorkflowDefinition,
    WorkflowPage,
    WorkflowState,
)
from ._plugins import hookimpl, hookspec
from ._registry import ComponentContext, ComponentKind, ComponentRegistry, ComponentType
from ._runtime import AsyncRuntime, AsyncWorkflowClient, Runtime, WorkflowClient
from ._tasks import (
    EventTimeoutError,
    NonDeterminismError,
    RetryPolicy,
    Task,
    TaskFailedError,
    WorkflowCancelled,
    when_all,
    when_any,
)
from ._version import __version__
from ._workflows import ActivityContext, WorkflowContext, Workflows

__all__ = [
    "TERMINAL_STATUSES",
    "ActivityContext",
    "AsyncRuntime",
    "AsyncWorkflowClient",
    "ComponentContext",
    "ComponentError",
    "ComponentErrors",
    "ComponentNotFound",
    "ComponentKind",
    "ComponentRegistry",
    "ComponentType",
    "DefinitionExists",
    "DefinitionNotFound",
    "EngineError",
    "EventTimeoutError",
    "FailureDetails",
    "Feature",
    "HistoryEvent",
    "InstanceExists",
    "InstanceNotFound",
    "InvalidArgument",
    "InvalidState",
    "ListQuery",
    "NonDeterminismError",
    "RetryPolicy",
    "Runtime",
    "RuntimeStatus",
    "StartRequest",
    "Task",
    "TaskFailedError",
    "TurnoutError",
    "Unsupported",
    "WaitTimeout",
    "WorkflowCancelled",
    "WorkflowClient",
    "WorkflowComponent",
    "WorkflowContext",
    "WorkflowDefinition",
    "WorkflowNotRegistered",
    "WorkflowPage",
    "WorkflowState",
    "Workflows",
    "__version__",
    "hookimpl",
    "hookspec",
    "when_all",
    "when_any",
]
