"""The built-in durable engine: event-sourced workflows on SQLite (or PostgreSQL), in-process.

It is registered through the ``turnout.plugins`` entry point like any adapter
and imports nothing from ``turnout`` that an outside plugin could not.
"""

from ._component import BuiltinWorkflowComponent
from ._metadata import BuiltinMetadata, PostgresMetadata, SqliteMetadata

__all__ = ["BuiltinMetadata", "BuiltinWorkflowComponent", "PostgresMetadata", "SqliteMetadata"]
