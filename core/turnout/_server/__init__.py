"""The HTTP server and its client: Dapr's workflow API in front of any workflow component.

Private: users reach it through ``turnout serve`` and ``turnout workflow``.
The modules split by concern, and only those marked "needs the server extras"
import FastAPI, uvicorn or httpx, so the CLI can load the rest without them:

- ``_protocol``: Dapr's JSON shapes, times and raw payloads (shared by the
  server and the CLI client).
- ``_errors``: Turnout's errors mapped to Dapr's error codes and HTTP
  statuses, in one place, and back again on the client side.
- ``_config``: the server's settings and the API token from the environment.
- ``_imports``: loading a ``turnout.Workflows`` object named ``MODULE:OBJ``.
- ``_app``, ``_routing``, ``_dapr_routes``, ``_extra_routes``, ``_middleware``:
  the ASGI application (needs the server extras).
- ``_runner``: ``turnout serve``: uvicorn, TLS, signals and draining (needs
  the server extras).
- ``_client``: the HTTP client the CLI uses (needs httpx).
- ``_grpc``: the gRPC server of ``turnout serve --grpc-port``: Dapr's workflow
  RPCs over the management API, token and TLS, and the services plugins add
  through the ``turnout_grpc_services`` hook (needs the grpc extra).
"""
