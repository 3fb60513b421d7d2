"""Turnout adapter for Temporal: the ``workflow.temporal`` component type.

Installed as the ``turnout-temporal`` distribution and found through the
``turnout.plugins`` entry point; the core never imports it.

The component class and the status table are imported on first use, not here:
every Turnout run imports this package (through its plugin module), and only
those that build a Temporal component should pay for importing temporalio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._metadata import TemporalMetadata

if TYPE_CHECKING:
    from ._component import TemporalWorkflowComponent
    from ._mapping import STATUS_MAP

__all__ = ["STATUS_MAP", "TemporalMetadata", "TemporalWorkflowComponent"]

_LAZY = {"TemporalWorkflowComponent": "._component", "STATUS_MAP": "._mapping"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
