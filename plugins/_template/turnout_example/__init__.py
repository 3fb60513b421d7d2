"""Template for a Turnout adapter: ``workflow.example``, an in-memory teaching engine.

Copy ``plugins/_template`` to ``plugins/<engine>`` and rename as its README
says. The package exports the metadata model (for documentation and schema
tools) and the component class. The component is imported lazily: Turnout
imports this package for every run that loads plugins, and a real adapter's
component module pulls in its engine's SDK, which only the runs that use the
engine should pay for.
"""

from typing import TYPE_CHECKING, Any

from ._metadata import Behaviour, ExampleMetadata

if TYPE_CHECKING:
    from ._component import ExampleWorkflowComponent

__all__ = ["Behaviour", "ExampleMetadata", "ExampleWorkflowComponent"]


def __getattr__(name: str) -> Any:
    if name == "ExampleWorkflowComponent":
        from ._component import ExampleWorkflowComponent

        return ExampleWorkflowComponent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
