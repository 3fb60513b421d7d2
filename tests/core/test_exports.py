"""A snapshot of ``turnout.__all__``, so that every change to the public API is deliberate.

Adding a name: add it to EXPECTED_EXPORTS in the same change. Removing one:
move it to EXPECTED_INTENTIONALLY_REMOVED_EXPORTS, so that it cannot come back
by accident (Temporal's tests/test_workflow_exports.py does the same).
"""

from __future__ import annotations

import inspect

import turnout

EXPECTED_EXPORTS = {
    # the management API
    "AsyncRuntime",
    "AsyncWorkflowClient",
    "Runtime",
    "WorkflowClient",
    # the workflow-component interface and its models
    "WorkflowComponent",
    "Feature",
    "FailureDetails",
    "HistoryEvent",
    "ListQuery",
    "RuntimeStatus",
    "StartRequest",
    "TERMINAL_STATUSES",
    "WorkflowDefinition",
    "WorkflowPage",
    "WorkflowState",
    # plugins
    "ComponentContext",
    "ComponentKind",
    "ComponentRegistry",
    "ComponentType",
    "hookimpl",
    "hookspec",
    # errors
    "ComponentError",
    "ComponentErrors",
    "DefinitionExists",
    "DefinitionNotFound",
    "ComponentNotFound",
    "EngineError",
    "InstanceExists",
    "InstanceNotFound",
    "InvalidArgument",
    "InvalidState",
    "TurnoutError",
    "Unsupported",
    "WaitTimeout",
    "WorkflowNotRegistered",
    # workflow as code
    "ActivityContext",
    "EventTimeoutError",
    "NonDeterminismError",
    "RetryPolicy",
    "Task",
    "TaskFailedError",
    "WorkflowCancelled",
    "WorkflowContext",
    "Workflows",
    "when_all",
    "when_any",
    # metadata
    "__version__",
}

EXPECTED_INTENTIONALLY_REMOVED_EXPORTS: set[str] = set()


def test_exports_match_the_snapshot() -> None:
    exported = set(turnout.__all__)
    added = sorted(exported - EXPECTED_EXPORTS)
    removed = sorted(EXPECTED_EXPORTS - exported)
    assert not added and not removed, (
        f"turnout.__all__ changed: added {added}, removed {removed}; "
        "update EXPECTED_EXPORTS in tests/core/test_exports.py if this is deliberate"
    )


def test_removed_names_stay_removed() -> None:
    back = sorted(EXPECTED_INTENTIONALLY_REMOVED_EXPORTS & set(turnout.__all__))
    assert not back, f"names removed on purpose are exported again: {back}"
    assert not (EXPECTED_EXPORTS & EXPECTED_INTENTIONALLY_REMOVED_EXPORTS)


def test_all_has_no_duplicates_and_every_name_resolves() -> None:
    assert len(turnout.__all__) == len(set(turnout.__all__))
    for name in turnout.__all__:
        assert hasattr(turnout, name), f"turnout.__all__ names {name}, which turnout does not define"


def test_public_classes_and_functions_have_docstrings() -> None:
    undocumented = [
        name
        for name in turnout.__all__
        if (inspect.isclass(getattr(turnout, name)) or inspect.isfunction(getattr(turnout, name)))
        and not inspect.getdoc(getattr(turnout, name))
    ]
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_no_public_name_outside_all() -> None:
    """Everything else lives in underscore modules; a public attribute missing from __all__ is a slip."""
    stray = [
        name
        for name in dir(turnout)
        if not name.startswith("_")
        and name not in turnout.__all__
        and not inspect.ismodule(getattr(turnout, name))
    ]
    assert not stray, f"public names not in turnout.__all__: {stray}"
