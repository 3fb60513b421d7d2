"""Turnout adapter for Temporal: the ``workflow.temporal`` component type.

Installed as the ``turnout-temporal`` distribution and found through the
``turnout.plugins`` entry point; the core never imports it.
"""

from ._metadata import TemporalMetadata

__all__ = ["TemporalMetadata"]
