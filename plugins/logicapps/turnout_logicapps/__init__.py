"""Turnout adapter for Azure Logic Apps: the ``workflow.azure.logicapps`` component type.

Installed as the ``turnout-logicapps`` distribution and found through the
``turnout.plugins`` entry point; the core never imports it.
"""

from ._metadata import LogicAppsMetadata

__all__ = ["LogicAppsMetadata"]
