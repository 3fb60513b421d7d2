"""OpenTelemetry tracing, when ``opentelemetry-api`` is installed; nothing at all otherwise.

A span per management call, per workflow turn and per activity, linked
parent to child: the trace context of ``start`` (a W3C ``traceparent``) is
stored with the instance, so its turns continue the caller's trace, and each
activity continues the trace of the turn that scheduled it. Exporting is the
application's choice (the OpenTelemetry SDK and the usual ``OTEL_*``
variables); with no SDK configured the API's spans are no-ops.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

Carrier = dict[str, str]

# OpenTelemetry's API modules, once in use (tracing is optional: pip install 'turnout[tracing]').
trace: Any = None
propagate: Any = None

_seen_provider = False


def _api_in_use() -> bool:
    """Whether OpenTelemetry's API is in use, imported here only once it is.

    Importing it costs every process start about 15 ms, for nothing unless a
    tracer provider is set, and setting one imports the API first (an
    application's own code, or ``opentelemetry-instrument`` before it runs);
    a provider named in the environment is the one case left to import it for.
    """
    global trace, propagate
    if "opentelemetry.trace" not in sys.modules and not _provider_named_in_environment():
        return False
    api = _import_api()
    if api is None:
        return False
    trace, propagate = api
    return True


@functools.cache
def _import_api() -> tuple[Any, Any] | None:
    # Once: a provider named in the environment without the API installed would otherwise
    # try the import again on every step of every workflow.
    try:
        from opentelemetry import propagate as api_propagate
        from opentelemetry import trace as api_trace
    except ImportError:
        return None
    return api_trace, api_propagate


def enabled() -> bool:
    """Whether spans are recorded: the API is installed and the application set a tracer provider.

    Until an SDK provider is set, OpenTelemetry's spans would be no-ops: skipping
    them entirely keeps the engine's hot path free of their cost. Asked on every
    step of every workflow, so the answer is cheap: a provider, once set, is
    never unset; until then only the environment variable that names one (read
    by OpenTelemetry, which looks it up in os.environ each time) costs a lookup.
    """
    global _seen_provider
    if _seen_provider:
        return True
    if trace is None and not _api_in_use():
        return False
    if getattr(trace, "_TRACER_PROVIDER", True) is None and not _provider_named_in_environment():
        return False  # the common case, without OpenTelemetry's own environment lookups
    _seen_provider = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _seen_provider


@functools.cache
def _provider_named_in_environment() -> bool:
    # Read once (a miss in os.environ costs a raised KeyError, on every step of every
    # workflow): OpenTelemetry, too, reads it once, when a tracer is first asked for.
    return "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def current_carrier() -> Carrier | None:
    """The current trace context as W3C headers (``traceparent``...), or None when there is none."""
    if not enabled():
        return None
    carrier: Carrier = {}
    propagate.inject(carrier)
    return carrier or None


_NO_SPAN = contextlib.nullcontext()


def span(
    name: str, *, parent: Carrier | None = None, attributes: dict[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name``, child of ``parent`` (a stored carrier) or of the current span.

    Without tracing, one shared no-op: asked for on every turn and activity, a
    generator-based context manager of its own cost a few percent of the engine's time.
    """
    if not enabled():
        return _NO_SPAN
    return _span(name, parent, attributes)


@contextlib.contextmanager
def _span(name: str, parent: Carrier | None, attributes: dict[str, Any] | None) -> Iterator[Any]:
    context = propagate.extract(parent) if parent else None
    tracer = trace.get_tracer("turnout")
    with tracer.start_as_current_span(name, context=context, attributes=attributes) as current:
        yield current


@contextlib.contextmanager
def continued(carrier: Carrier) -> Iterator[None]:
    """Make the trace in ``carrier`` (W3C headers of a request) current while the block runs."""
    if not enabled() or "traceparent" not in carrier:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


def in_current_context(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """``fn(*args)`` bound to the current context, for a thread pool (spans stay linked)."""
    context = contextvars.copy_context()  # taken now, on the caller's side
    return lambda: context.run(fn, *args)
