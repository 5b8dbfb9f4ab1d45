"""The Prometheus exposition at /metrics."""

from __future__ import annotations

import httpx

from tests.api.conftest import drive_to_end, make_settings, serve, submit


async def test_metrics_exposition(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    await client.post("/queues/text-service/lease", json={"max_tasks": 1})
    await client.patch(
        f"/tasks/{created['scenario_id']}:script/status",
        json={"status": "failed", "error": "x", "retryable": True},
    )
    # the script now waits out its backoff; the seed's PATCH may claim and finish it early
    await client.patch(f"/tasks/{created['scenario_id']}:script/status", json={"status": "success"})
    await drive_to_end(client, created["scenario_id"])
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'scenarist_scenarios_submitted_total{template="CreateVideo"} 1.0' in text
    assert 'scenarist_tasks_completed_total{service="image-service"} 3.0' in text
    assert 'scenarist_tasks_leased_total{service="image-service"} 3.0' in text
    assert 'scenarist_tasks_failed_total{final="false",service="text-service"} 1.0' in text
    assert 'scenarist_dispatch_latency_seconds_count{service="video-service"} 1.0' in text
    assert 'scenarist_queue_ready{service="text-service"} 0.0' in text
    assert "scenarist_queue_in_flight" in text


async def test_metrics_registries_are_per_app(sqlite_url: str, tmp_path: object) -> None:
    async with serve(make_settings(sqlite_url)) as first:
        await submit(first)
    async with serve(make_settings(sqlite_url)) as second:
        text = (await second.get("/metrics")).text
    assert 'scenarist_scenarios_submitted_total{template="CreateVideo"}' not in text
