"""Plugin discovery: pluggy hooks, loaded from the ``turnout.plugins`` entry points.

The built-in engine registers through the same entry point as every outside
adapter. ``TURNOUT_PLUGINS`` (a comma-separated list of entry-point names)
restricts what loads; tests set it so that stray installed plugins never leak
into a run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from ._registry import ComponentRegistry

if TYPE_CHECKING:
    from ._runtime import AsyncRuntime

PROJECT = "turnout"
ENTRY_POINT_GROUP = "turnout.plugins"
PLUGINS_ENV = "TURNOUT_PLUGINS"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

log = logging.getLogger("turnout.plugins")


class HookSpecs:
    """The hooks a Turnout plugin may implement."""

    @hookspec
    def turnout_register_components(self, registry: ComponentRegistry) -> None:
        """Register the plugin's component types with ``registry.register(ComponentType(...))``."""

    @hookspec
    def turnout_grpc_services(
        self, runtime: AsyncRuntime
    ) -> list[tuple[Any, Callable[[Any, Any], None]]] | None:
        """gRPC services the plugin serves beside the core's, when ``turnout serve --grpc-port`` runs.

        Returns ``(servicer, add_to_server)`` pairs, ``add_to_server(servicer, server)``
        being the generated adder of the service (``add_FooServicer_to_server``);
        None when the plugin serves none. ``runtime`` is the server's
        :class:`~turnout.AsyncRuntime`; the hook is called before the runtime
        opens its components, so that a plugin can prepare them (look the
        components up when a call comes, not in the hook). A servicer may
        have an ``async def aclose()``: it is awaited when the server stops,
        before the calls in flight get their grace period (end endless server
        streams there).
        """


def allowed_plugins() -> set[str] | None:
    """Entry-point names allowed by ``TURNOUT_PLUGINS``, or None when it is unset (all load)."""
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def plugin_manager(*, extra_plugins: tuple[object, ...] = ()) -> pluggy.PluginManager:
    """A plugin manager with the installed plugins (as allowed) and ``extra_plugins`` registered."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    allowed = allowed_plugins()
    if allowed is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for name in sorted(allowed):
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    for plugin in extra_plugins:
        pm.register(plugin)
    return pm


def load_registry(*, extra_plugins: tuple[object, ...] = ()) -> ComponentRegistry:
    """Every component type the loaded plugins register."""
    pm = plugin_manager(extra_plugins=extra_plugins)
    registry = ComponentRegistry()
    pm.hook.turnout_register_components(registry=registry)
    log.debug("component types: %s", ", ".join(sorted(registry.names())))
    return registry
