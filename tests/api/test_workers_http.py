"""GET /workers, the labels and SDK version a lease body carries, the live-worker gauge
of /metrics and the dashboard's workers page, on every store."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import submit

LEASE = {
    "services": ["text-service"],
    "worker_id": "gpu-1",
    "labels": {"gpu": "a100", "model": "sdxl"},
    "sdk_version": "0.1.0",
}


async def test_a_lease_records_its_worker_with_labels_and_tasks_in_flight(
    any_client: httpx.AsyncClient,
) -> None:
    assert (await any_client.get("/workers")).json() == {"workers": []}
    await submit(any_client)
    leased = await any_client.post("/queues/lease", json=LEASE)
    assert leased.status_code == 200, leased.text
    assert len(leased.json()["tasks"]) == 1
    other = await any_client.post("/queues/audio-service/lease", json={"worker_id": "tts"})
    assert other.status_code == 200, other.text
    listed = (await any_client.get("/workers")).json()["workers"]
    assert [w["worker_id"] for w in listed] == ["gpu-1", "tts"]
    gpu, tts = listed
    assert gpu["services"] == ["text-service"]
    assert gpu["labels"] == {"gpu": "a100", "model": "sdxl"}
    assert (gpu["sdk_version"], gpu["in_flight"], gpu["stale"]) == ("0.1.0", 1, False)
    assert gpu["first_seen"] <= gpu["last_seen"]
    assert (tts["labels"], tts["sdk_version"], tts["in_flight"]) == ({}, None, 0)
    task = leased.json()["tasks"][0]
    beat = await any_client.post(
        f"/tasks/{task['id']}/heartbeat", json={"lease_token": task["lease_token"]}
    )
    assert beat.status_code == 200, beat.text
    metrics = (await any_client.get("/metrics")).text
    assert 'scenarist_workers_live{service="text-service"} 1.0' in metrics
    assert 'scenarist_workers_live{service="audio-service"} 1.0' in metrics


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ({f"k{i}": "v" for i in range(17)}, "labels"),
        ({"bad key": "v"}, "labels.bad key.[key]"),
        ({"gpu": "x" * 129}, "labels.gpu"),
        ({"gpu": 7}, "labels.gpu"),
        (["gpu"], "labels"),
    ],
)
async def test_bad_labels_are_422_naming_the_field(
    client: httpx.AsyncClient, labels: object, field: str
) -> None:
    response = await client.post(
        "/queues/text-service/lease", json={"worker_id": "w", "labels": labels}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (await client.get("/workers")).json() == {"workers": []}


async def test_the_dashboard_lists_workers_and_links_the_page(client: httpx.AsyncClient) -> None:
    empty = await client.get("/ui/workers")
    assert empty.status_code == 200
    assert "No worker has leased lately." in empty.text
    assert 'href="/ui/workers"' in (await client.get("/ui")).text
    await client.post("/queues/lease", json=LEASE)
    rows = (await client.get("/ui/fragments/workers")).text
    assert 'data-worker="gpu-1"' in rows
    assert "gpu=a100" in rows
    assert "model=sdxl" in rows
    assert ">live<" in rows


async def test_openapi_documents_the_registry_and_the_lease_fields(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    listing = spec["paths"]["/workers"]["get"]
    assert listing["operationId"] == "listWorkers"
    assert "200" in listing["responses"]
    fields = spec["components"]["schemas"]["WorkerPublic"]["properties"]
    assert {"labels", "sdk_version", "last_seen", "in_flight", "stale"} <= set(fields)
    lease = spec["components"]["schemas"]["LeaseCreate"]["properties"]
    assert lease["labels"]["anyOf"][0]["maxProperties"] == 16
    assert "sdk_version" in lease
