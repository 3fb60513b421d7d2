"""The Durable Task protocol's generated code, Dapr's lineage (the one the Dapr SDKs speak).

Dapr vendors it inside its SDK (a private path); importing it from one place
keeps that dependency in one line. The Microsoft ``durabletask`` lineage
cannot be loaded in the same process (see docs/grpc.md).
"""

from __future__ import annotations

from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as service
from dapr.ext.workflow._durabletask.internal import protos as pb

__all__ = ["pb", "service"]
