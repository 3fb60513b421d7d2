"""How a Logic Apps run status reads as a Turnout runtime status: one exhaustive table.

Every value of the SDK's ``WorkflowStatus`` enum is here (a test checks it
against ``azure.mgmt.logic.models.WorkflowStatus``), each with the reason for
its mapping, which the documentation's table repeats.
"""

from __future__ import annotations

from collections.abc import Iterable

from turnout import RuntimeStatus

STATUS_TABLE: dict[str, tuple[RuntimeStatus, str]] = {
    "Running": (
        RuntimeStatus.RUNNING,
        "the run is executing its actions (a webhook action waiting included)",
    ),
    "Waiting": (
        RuntimeStatus.PENDING,
        "the run is queued behind the trigger's concurrency limit and has not started its actions",
    ),
    "Succeeded": (RuntimeStatus.COMPLETED, "the run finished without an unhandled failure"),
    "Failed": (
        RuntimeStatus.FAILED,
        "an action failed and nothing handled it, or a Terminate action said Failed",
    ),
    "Cancelled": (
        RuntimeStatus.TERMINATED,
        "the run was cancelled (Turnout's terminate) or ended itself with a Terminate action: "
        "no compensation ran",
    ),
    "TimedOut": (RuntimeStatus.FAILED, "the run went past its time limit; failure.error_type says TimedOut"),
    "Skipped": (
        RuntimeStatus.CANCELED,
        "the run ended without running its actions (not by a caller), so it did not complete its work",
    ),
    "Suspended": (
        RuntimeStatus.SUSPENDED,
        "a platform state (for example a suspended subscription); no API suspends a run",
    ),
    "Aborted": (
        RuntimeStatus.FAILED,
        "the run stopped because of a problem outside it (an outage, a lapsed subscription)",
    ),
    "Paused": (RuntimeStatus.SUSPENDED, "a platform state; Logic Apps has no API to pause a run"),
    "Ignored": (RuntimeStatus.CANCELED, "the run was set aside by the service without running its actions"),
    "NotSpecified": (
        RuntimeStatus.PENDING,
        "the service has not given a status yet; Turnout reads it as not started",
    ),
    "Faulted": (RuntimeStatus.FAILED, "the run hit an internal fault of the service"),
}
"""Logic Apps run status -> (Turnout runtime status, why)."""

_BY_LOWER = {name.lower(): status for name, (status, _why) in STATUS_TABLE.items()}


def runtime_status(status: str | None) -> RuntimeStatus | None:
    """The Turnout status of a Logic Apps run status (case-insensitive); None for one not in the table."""
    if status is None:
        return None
    return _BY_LOWER.get(str(status).lower())


def logic_statuses(statuses: Iterable[RuntimeStatus]) -> list[str]:
    """Every Logic Apps status that reads as one of ``statuses``, in the table's order."""
    wanted = set(statuses)
    return [name for name, (status, _why) in STATUS_TABLE.items() if status in wanted]
