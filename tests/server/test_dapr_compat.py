"""A Dapr HTTP client's flow, unchanged: the requests of Dapr's workflow API reference, in order.

Dapr's docs (reference/api/workflow_api) start ``OrderProcessingWorkflow``
on component ``dapr`` with ``instanceID=12345678`` and the body
``{"Name":"Paperclips","TotalCost":99.95,"Quantity":1}``, then get, raise an
event, pause, resume, terminate and purge it. The same requests, sent as a
Dapr client sends them (port 3500 aside), must get Dapr's answers.
"""

from __future__ import annotations

import json

import httpx

from .conftest import LiveServer

ORDER = '{"Name":"Paperclips","TotalCost":99.95,"Quantity":1}'


def test_the_documented_flow(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as dapr:
        # curl -X POST http://localhost:3500/v1.0/workflows/dapr/OrderProcessingWorkflow/start?instanceID=12345678
        #   -H "Content-Type: application/json" -d '{"Name":"Paperclips","TotalCost":99.95,"Quantity":1}'
        started = dapr.post(
            "/v1.0/workflows/dapr/OrderProcessingWorkflow/start?instanceID=12345678",
            headers={"Content-Type": "application/json"},
            content=ORDER,
        )
        assert started.status_code == 202
        assert started.json() == {"instanceID": "12345678"}

        # curl -X GET http://localhost:3500/v1.0/workflows/dapr/12345678
        state = dapr.get("/v1.0/workflows/dapr/12345678")
        assert state.status_code == 200
        body = state.json()
        assert body["instanceID"] == "12345678"
        assert body["workflowName"] == "OrderProcessingWorkflow"
        assert body["runtimeStatus"] in ("PENDING", "RUNNING")
        assert body["properties"]["dapr.workflow.input"] == ORDER  # the text as sent

        # pause and resume: POST .../pause, POST .../resume -> 202
        assert dapr.post("/v1.0/workflows/dapr/12345678/pause").status_code == 202
        assert dapr.get("/v1.0/workflows/dapr/12345678").json()["runtimeStatus"] == "SUSPENDED"
        assert dapr.post("/v1.0/workflows/dapr/12345678/resume").status_code == 202

        # curl -X POST http://localhost:3500/v1.0/workflows/dapr/12345678/raiseEvent/ApprovalEvent
        #   -H "Content-Type: application/json" -d '{"approved": true}'
        raised = dapr.post(
            "/v1.0/workflows/dapr/12345678/raiseEvent/ApprovalEvent",
            headers={"Content-Type": "application/json"},
            content='{"approved": true}',
        )
        assert raised.status_code == 202

        # A Dapr client polls GET until the status is final (Retry-After says how often).
        finished = dapr.get("/v1.0/workflows/dapr/12345678/wait", params={"timeout": 20}).json()
        assert finished["runtimeStatus"] == "COMPLETED"
        output = json.loads(finished["properties"]["dapr.workflow.output"])
        assert output == {"order": json.loads(ORDER), "approval": {"approved": True}}

        # curl -X POST http://localhost:3500/v1.0/workflows/dapr/12345678/purge
        assert dapr.post("/v1.0/workflows/dapr/12345678/purge").status_code == 202
        gone = dapr.get("/v1.0/workflows/dapr/12345678")
        assert gone.status_code == 404
        assert gone.json()["errorCode"] == "ERR_INSTANCE_ID_NOT_FOUND"

        # The same id again, then curl -X POST .../terminate and .../purge
        again = dapr.post(
            "/v1.0-beta1/workflows/dapr/OrderProcessingWorkflow/start?instanceID=12345678", content=ORDER
        )
        assert again.status_code == 202
        assert dapr.post("/v1.0-beta1/workflows/dapr/12345678/terminate").status_code == 202
        assert dapr.get("/v1.0-beta1/workflows/dapr/12345678").json()["runtimeStatus"] == "TERMINATED"
        assert dapr.post("/v1.0-beta1/workflows/dapr/12345678/purge").status_code == 202


def test_start_without_instance_id_like_the_dapr_quickstart(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as dapr:
        started = dapr.post("/v1.0-alpha1/workflows/dapr/OrderProcessingWorkflow/start", content=ORDER)
        assert started.status_code == 202
        instance_id = started.json()["instanceID"]
        assert dapr.get(f"/v1.0-alpha1/workflows/dapr/{instance_id}").status_code == 200
        assert dapr.post(f"/v1.0-alpha1/workflows/dapr/{instance_id}/terminate").status_code == 202
