"""``turnout serve --grpc-port``: Dapr's gRPC API beside the HTTP one, on the same runtime.

Two kinds of service share one ``grpc.aio`` server:

- the Dapr runtime's workflow RPCs (service ``dapr.proto.runtime.v1.Dapr``:
  ``StartWorkflowBeta1`` ... and their Alpha1 forms), answered here through
  the generic management API, so they work for every component type; the
  Dapr API's other RPCs answer UNIMPLEMENTED;
- the services plugins add through the ``turnout_grpc_services`` hook: the
  built-in engine serves the Durable Task sidecar protocol
  (``TaskHubSidecarService``) that ``dapr.ext.workflow`` speaks.

The API token (``dapr-api-token`` metadata), the TLS files and the largest
message (``--max-body-size``) are those of the HTTP server. Needs the
``grpc`` extra (``pip install 'turnout[grpc]'``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from dapr.proto.runtime.v1 import dapr_pb2_grpc, workflow_pb2
from google.protobuf import empty_pb2

from .._errors import ComponentNotFound, InstanceExists, InstanceNotFound, InvalidState, TurnoutError
from .._plugins import plugin_manager
from .._runtime import AsyncRuntime, AsyncWorkflowClient
from ._config import TOKEN_HEADER, ServerConfig
from ._errors import Unauthorized, error_body
from ._protocol import decode_payload, parse_time, state_to_json

log = logging.getLogger("turnout.server")

INSTALL_HINT = "pip install 'turnout[grpc]'"
START_TIME_OPTION = "dapr.workflow.start_time"
"""The start option that schedules a start (RFC 3339), as Dapr reads it."""

_GRPC_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def grpc_status(exc: BaseException, http_status: int) -> grpc.StatusCode:
    """The gRPC status of an error answered over HTTP with ``http_status`` (Dapr's table)."""
    if isinstance(exc, InstanceExists):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, InvalidState):
        return grpc.StatusCode.FAILED_PRECONDITION
    return _GRPC_STATUS.get(http_status, grpc.StatusCode.INTERNAL)


@dataclass
class GrpcOptions:
    """Where and how ``turnout serve`` serves gRPC."""

    host: str = "127.0.0.1"
    port: int = 50001
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None


# ---------------------------------------------------------------------------
# the API token


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call without the right ``dapr-api-token`` metadata with UNAUTHENTICATED.

    The comparison takes constant time; no token is ever logged.
    """

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        offered = [
            value.encode() if isinstance(value, str) else value
            for key, value in (details.invocation_metadata or ())
            if key.lower() == TOKEN_HEADER
        ]
        handler = await continuation(details)
        if len(offered) == 1 and hmac.compare_digest(offered[0], self._token):
            return handler
        log.warning("refused gRPC %s: %s api token", details.method, "missing" if not offered else "wrong")
        return _refusal(handler, Unauthorized(missing=not offered).message)


def _refusal(handler: grpc.RpcMethodHandler | None, message: str) -> grpc.RpcMethodHandler:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover  (an async generator, as the stream's handler must be)

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(unary)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary is not None or handler.stream_stream is not None:
        factory = (
            grpc.stream_unary_rpc_method_handler
            if handler.stream_unary is not None
            else grpc.stream_stream_rpc_method_handler
        )
        return factory(
            stream if handler.stream_stream is not None else unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


# ---------------------------------------------------------------------------
# Dapr's workflow RPCs


class DaprWorkflowServicer(dapr_pb2_grpc.DaprServicer):  # type: ignore[misc]
    """The workflow RPCs of ``dapr.proto.runtime.v1.Dapr`` over any workflow component."""

    def __init__(self, runtime: AsyncRuntime, config: ServerConfig) -> None:
        self.runtime = runtime
        self.config = config

    def _client(self, component: str) -> AsyncWorkflowClient:
        components = self.runtime.workflow_components()
        if component in components:
            return self.runtime.client(component)
        if not component:
            # Dapr 1.15+ ignores the field; with one component (or Dapr's "dapr") there is no doubt.
            if len(components) == 1:
                return self.runtime.client(next(iter(components)))
            if "dapr" in components:
                return self.runtime.client("dapr")
        raise ComponentNotFound(component, sorted(components))

    async def _answer(
        self, context: grpc.aio.ServicerContext, operation: str, subject: str | None, call: Any
    ) -> Any:
        try:
            return await call()
        except Exception as exc:
            status, body = error_body(exc, operation, subject)
            if not isinstance(exc, TurnoutError) or (status >= 500 and status not in (501, 503)):
                log.error("gRPC %s failed: %s", operation, body["message"], exc_info=exc)
            context.set_trailing_metadata((("dapr-error-code", body["errorCode"]),))
            await context.abort(grpc_status(exc, status), body["message"])

    async def StartWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def start() -> Any:
            client = self._client(request.workflow_component)
            payload = decode_payload(
                request.input, None, max_depth=self.config.max_json_depth, what="workflow input"
            )
            when = request.options.get(START_TIME_OPTION)
            started = await client.start(
                request.workflow_name,
                payload,
                instance_id=request.instance_id or None,
                start_at=parse_time(when, field=START_TIME_OPTION) if when else None,
            )
            return workflow_pb2.StartWorkflowResponse(instance_id=started)

        return await self._answer(context, "start", request.workflow_name, start)

    async def GetWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def get() -> Any:
            state = await self._client(request.workflow_component).get(request.instance_id)
            if state is None:
                raise InstanceNotFound(request.instance_id, request.workflow_component or None)
            body = state_to_json(state)
            response = workflow_pb2.GetWorkflowResponse(
                instance_id=state.instance_id,
                workflow_name=state.workflow_name,
                runtime_status=state.runtime_status.value,
                properties=body.get("properties", {}),
            )
            response.created_at.FromDatetime(state.created_at)
            response.last_updated_at.FromDatetime(state.last_updated_at)
            return response

        return await self._answer(context, "get", request.instance_id, get)

    async def RaiseEventWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def raise_event() -> Any:
            client = self._client(request.workflow_component)
            data = decode_payload(
                request.event_data, None, max_depth=self.config.max_json_depth, what="event data"
            )
            await client.raise_event(request.instance_id, request.event_name, data)
            return empty_pb2.Empty()

        return await self._answer(context, "raise_event", request.instance_id, raise_event)

    def _simple(self, operation: str) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async def call() -> Any:
                client = self._client(request.workflow_component)
                await getattr(client, operation)(request.instance_id)
                return empty_pb2.Empty()

            return await self._answer(context, operation, request.instance_id, call)

        return handle

    async def TerminateWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._simple("terminate")(request, context)

    async def PauseWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._simple("pause")(request, context)

    async def ResumeWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._simple("resume")(request, context)

    async def PurgeWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._simple("purge")(request, context)

    # The deprecated Alpha1 forms call the same handlers, as daprd does.
    StartWorkflowAlpha1 = StartWorkflowBeta1
    GetWorkflowAlpha1 = GetWorkflowBeta1
    RaiseEventWorkflowAlpha1 = RaiseEventWorkflowBeta1
    TerminateWorkflowAlpha1 = TerminateWorkflowBeta1
    PauseWorkflowAlpha1 = PauseWorkflowBeta1
    ResumeWorkflowAlpha1 = ResumeWorkflowBeta1
    PurgeWorkflowAlpha1 = PurgeWorkflowBeta1


# ---------------------------------------------------------------------------
# the server


def prepare_services(runtime: AsyncRuntime) -> list[tuple[Any, Callable[[Any, Any], None]]]:
    """The plugins' services, asked before the runtime opens its components (see the hook)."""
    services: list[tuple[Any, Callable[[Any, Any], None]]] = []
    for found in plugin_manager().hook.turnout_grpc_services(runtime=runtime):
        services.extend(found or ())
    return services


def _credentials(options: GrpcOptions) -> grpc.ServerCredentials | None:
    if options.tls_cert is None or options.tls_key is None:
        return None
    root = options.tls_client_ca.read_bytes() if options.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(options.tls_key.read_bytes(), options.tls_cert.read_bytes())],
        root_certificates=root,
        require_client_auth=root is not None,
    )


async def start_grpc_server(
    runtime: AsyncRuntime,
    config: ServerConfig,
    options: GrpcOptions,
    services: list[tuple[Any, Callable[[Any, Any], None]]],
) -> tuple[grpc.aio.Server, int]:
    """Build, bind and start the server; it and the port it listens on.

    OSError when the address cannot be bound; the TLS files' errors as they come.
    """
    interceptors = [TokenInterceptor(config.api_token)] if config.api_token else []
    # The HTTP server's body limit (--max-body-size) bounds gRPC messages too.
    server = grpc.aio.server(
        interceptors=interceptors, options=[("grpc.max_receive_message_length", config.max_body_bytes)]
    )
    dapr_pb2_grpc.add_DaprServicer_to_server(DaprWorkflowServicer(runtime, config), server)
    for servicer, add_to_server in services:
        add_to_server(servicer, server)
    host = f"[{options.host}]" if ":" in options.host and not options.host.startswith("[") else options.host
    address = f"{host}:{options.port}"
    credentials = _credentials(options)
    try:
        port = (
            server.add_secure_port(address, credentials)
            if credentials is not None
            else server.add_insecure_port(address)
        )
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return server, port
