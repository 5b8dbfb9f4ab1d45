"""Durations and ETA at the edge: attempts in task and scenario bodies, the histograms in
/metrics (read with prometheus_client's parser), `eta_seconds` in the body and over SSE."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, drive_to_end, submit
from tests.api.test_metrics import scrape, value
from tests.api.test_sse import parse_sse


async def test_attempts_show_wait_and_run_of_each_attempt(any_client: httpx.AsyncClient) -> None:
    sid = (await submit(any_client))["scenario_id"]
    lease = await any_client.post("/queues/text-service/lease", json={"max_tasks": 1})
    script = lease.json()["tasks"][0]
    failed = await any_client.post(
        f"/tasks/{script['id']}/fail",
        json={"lease_token": script["lease_token"], "error": "busy", "retryable": True},
    )
    assert failed.status_code == 200, failed.text
    # the seed's PATCH claims it during its backoff and finishes it: attempt 2
    await any_client.patch(f"/tasks/{script['id']}/status", json={"status": "success"})
    detail = (await any_client.get(f"/tasks/{script['id']}")).json()
    first, second = detail["attempts"]
    assert (first["attempt"], first["outcome"], second["attempt"], second["outcome"]) == (
        1,
        "queued",
        2,
        "success",
    )
    assert first["queued_at"] <= first["started_at"] <= first["ended_at"]
    assert second["queued_at"] == first["ended_at"]  # requeued when the attempt ended
    for attempt in (first, second):
        wait = attempt["started_at"] - attempt["queued_at"]
        assert attempt["wait_seconds"] == pytest.approx(wait, abs=1e-6)
        run = attempt["ended_at"] - attempt["started_at"]
        assert attempt["run_seconds"] == pytest.approx(run, abs=1e-6)

    body = (await any_client.get(f"/scenarios/{sid}")).json()
    by_name = {t["name"]: t for t in body["tasks"]}
    assert by_name["script"]["attempts"] == detail["attempts"]
    voice = by_name["voice"]["attempts"]  # released, not leased yet: waiting since
    assert len(voice) == 1
    assert voice[0]["started_at"] is None
    assert by_name["video"]["attempts"] == []  # still pending
    # the text service's run time is known now; a service never seen yet is not
    assert body["eta_seconds"] is None

    await drive_to_end(any_client, sid)
    body = (await any_client.get(f"/scenarios/{sid}")).json()
    assert body["eta_seconds"] is None  # ended
    assert all(t["attempts"][-1]["outcome"] == "success" for t in body["tasks"])


async def test_eta_once_every_service_has_a_run_time(client: httpx.AsyncClient) -> None:
    await drive_to_end(client, (await submit(client))["scenario_id"])
    # Another topic: the step cache would serve most of an identical submission.
    sid = (await submit(client, {**SEED_VIDEO, "description": "dogs"}))["scenario_id"]
    body = (await client.get(f"/scenarios/{sid}")).json()
    assert isinstance(body["eta_seconds"], float)
    assert body["eta_seconds"] >= 0
    # The ASGI test transport hands over the body when the stream ends, so run it aside.
    stream = asyncio.create_task(client.get(f"/scenarios/{sid}/events"))
    await asyncio.sleep(0.3)
    await drive_to_end(client, sid)
    events = parse_sse((await asyncio.wait_for(stream, timeout=10)).text)
    progress = [e["data"] for e in events if e.get("event") == "progress"]
    running = [p for p in progress if p["status"] == "running"]
    assert running
    assert all(isinstance(p["eta_seconds"], float) for p in running)
    end = next(e["data"] for e in events if e.get("event") == "end")
    assert end["eta_seconds"] is None


async def test_duration_histograms(client: httpx.AsyncClient) -> None:
    sid = (await submit(client))["scenario_id"]
    await drive_to_end(client, sid)
    samples = await scrape(client)
    counts = (("text-service", 4), ("audio-service", 1), ("image-service", 3), ("video-service", 1))
    for service, count in counts:
        assert value(samples, "scenarist_task_wait_seconds_count", service=service) == count
        assert value(samples, "scenarist_task_run_seconds_count", service=service) == count
        run = value(samples, "scenarist_task_run_seconds_sum", service=service)
        assert run is not None
        assert run >= 0
        inf = value(samples, "scenarist_task_run_seconds_bucket", service=service, le="+Inf")
        assert inf == count
    # the maintenance round tells the histogram about the end (every 0.05 s here)
    for _ in range(100):
        samples = await scrape(client)
        ended = value(samples, "scenarist_scenario_duration_seconds_count", template="CreateVideo")
        if ended:
            break
        await asyncio.sleep(0.02)
    assert ended == 1
