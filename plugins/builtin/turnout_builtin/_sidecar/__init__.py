"""The Durable Task sidecar protocol over the built-in engine, so Dapr's workflow SDKs run on Turnout.

- ``_servicer``: ``TaskHubSidecarService`` (Dapr's lineage of the protocol).
- ``_translate``: the engine's history events as Durable Task history events,
  and a worker's actions back as the engine's events.
- ``_dispatch``: remote turns and activities, as the engine runs them.
- ``_hub``: connected workers and the work items waiting for them.

Needs the ``grpc`` extra (``pip install 'turnout[grpc]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnout import AsyncRuntime

from ._hub import WorkerHub, expected_attach

__all__ = ["grpc_services"]


def grpc_services(runtime: AsyncRuntime) -> list[tuple[Any, Callable[[Any, Any], None]]]:
    """The sidecar service for ``runtime``, and the adder that puts it on a gRPC server.

    Called before the runtime opens its components, it arranges for every
    built-in component opened afterwards to send the workflows and
    activities it does not host to the connected workers; called after, it
    attaches the components already open.
    """
    from .._component import BuiltinWorkflowComponent
    from ._protos import service
    from ._servicer import SidecarServicer

    hub = WorkerHub()
    attached: list[BuiltinWorkflowComponent] = []

    def attach(component: Any) -> None:
        if isinstance(component, BuiltinWorkflowComponent) and component not in attached:
            component.serve_remote(hub)
            attached.append(component)

    expected_attach.set(attach)
    for component in runtime.workflow_components().values():
        attach(component)

    def served() -> BuiltinWorkflowComponent:
        if not attached:
            from turnout import Unsupported

            raise Unsupported(
                "workflow (none loaded)",
                "the Durable Task sidecar protocol",
                "it needs a workflow.builtin component; declare one in the resources",
            )
        return next((c for c in attached if c.name == "dapr"), attached[0])

    return [(SidecarServicer(hub, served), service.add_TaskHubSidecarServiceServicer_to_server)]
