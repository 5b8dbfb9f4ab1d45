"""The Prometheus exposition at /metrics, read with prometheus_client's own parser."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import drive_to_end, make_settings, serve, submit

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


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
    samples = await scrape(client)
    assert value(samples, "scenarist_scenarios_submitted_total", template="CreateVideo") == 1
    assert value(samples, "scenarist_tasks_completed_total", service="image-service") == 3
    assert value(samples, "scenarist_tasks_leased_total", service="image-service") == 3
    failed = value(samples, "scenarist_tasks_failed_total", final="false", service="text-service")
    assert failed == 1
    latency = "scenarist_dispatch_latency_seconds_count"
    assert value(samples, latency, service="video-service") == 1
    assert value(samples, "scenarist_queue_ready", service="text-service") == 0
    assert series(samples, "scenarist_queue_in_flight")


async def test_no_created_series(client: httpx.AsyncClient) -> None:
    await drive_to_end(client, (await submit(client))["scenario_id"])
    text = (await client.get("/metrics")).text
    names = [f.name for f in text_string_to_metric_families(text)]
    assert "scenarist_tasks_completed" in names  # counters and histograms are there
    assert [name for name in names if name.endswith("_created")] == []
    assert "_created" not in text


async def test_finished_scenarios_by_outcome_on_every_store(
    any_client: httpx.AsyncClient,
) -> None:
    done = await submit(any_client)
    await drive_to_end(any_client, done["scenario_id"])
    stopped = await submit(any_client)
    assert (await any_client.post(f"/scenarios/{stopped['scenario_id']}/cancel")).status_code == 200
    await any_client.post(f"/scenarios/{stopped['scenario_id']}/cancel")  # already cancelled
    finished = "scenarist_scenarios_finished_total"
    # The success is counted by the next maintenance round (every 0.05 s in tests);
    # later rounds must not count it again.
    rounds_after_it = 0
    for _ in range(400):
        samples = await scrape(any_client)
        if value(samples, finished, status="success") is not None:
            rounds_after_it += 1
            if rounds_after_it == 5:
                break
        await asyncio.sleep(0.02)
    assert value(samples, finished, status="success") == 1
    assert value(samples, finished, status="cancelled") == 1
    assert value(samples, finished, status="failed") is None


async def test_http_requests_are_labelled_by_route_template(client: httpx.AsyncClient) -> None:
    first, second = await submit(client), await submit(client)
    for created in (first, second):
        assert (await client.get(f"/scenarios/{created['scenario_id']}")).status_code == 200
    assert (await client.get("/scenarios/no-such-id")).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    assert (await client.request("BREW", "/health")).status_code == 405
    samples = await scrape(client)
    requests = "scenarist_http_requests_total"
    template = "/scenarios/{scenario_id}"
    assert value(samples, requests, method="GET", route=template, status="200") == 2
    assert value(samples, requests, method="GET", route=template, status="404") == 1
    assert value(samples, requests, method="POST", route="/generate", status="201") == 2
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert value(samples, requests, method="other", route="/health", status="405") == 1
    count = "scenarist_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route=template) == 3
    routes = {labels["route"] for labels in series(samples, requests)}
    assert not any(first["scenario_id"] in route for route in routes)  # never a raw path


async def test_metrics_registries_are_per_app(sqlite_url: str) -> None:
    async with serve(make_settings(sqlite_url)) as first:
        await submit(first)
    async with serve(make_settings(sqlite_url)) as second:
        samples = await scrape(second)
    assert value(samples, "scenarist_scenarios_submitted_total", template="CreateVideo") is None
