"""Turnout adapter for Azure Logic Apps: the ``workflow.azure.logicapps`` component type.

Installed as the ``turnout-logicapps`` distribution and found through the
``turnout.plugins`` entry point; the core never imports it.

The component class and the status table are imported on first use, not here:
every Turnout run imports this package (through its plugin module), and only
those that build a Logic Apps component should pay for importing the Azure SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._metadata import LogicAppsMetadata

if TYPE_CHECKING:
    from ._component import LogicAppNotFound, LogicAppsComponent
    from ._status import STATUS_TABLE

__all__ = ["STATUS_TABLE", "LogicAppNotFound", "LogicAppsComponent", "LogicAppsMetadata"]

_LAZY = {
    "LogicAppsComponent": "._component",
    "LogicAppNotFound": "._component",
    "STATUS_TABLE": "._status",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
