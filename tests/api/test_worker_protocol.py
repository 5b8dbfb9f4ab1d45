"""Lease / heartbeat / complete / fail over HTTP, batch completion, long-poll, queues."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.api.conftest import submit


async def lease_one(client: httpx.AsyncClient, service: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/queues/{service}/lease", json={"max_tasks": 1, **body})
    assert response.status_code == 200, response.text
    (task,) = response.json()["tasks"]
    assert isinstance(task, dict)
    return task


async def test_lease_returns_the_documented_fields(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    task = await lease_one(any_client, "text-service", lease_seconds=30, worker_id="w1")
    assert task["id"] == f"{created['scenario_id']}:script"
    assert task["scenario_id"] == created["scenario_id"]
    assert task["name"] == "script"
    assert task["service"] == "text-service"
    assert task["payload"]["kind"] == "script"
    assert task["inputs"] == []
    assert task["attempt"] == 1
    assert task["lease_token"]
    assert task["lease_expires_at"] > time.time() + 25
    empty = await any_client.post("/queues/text-service/lease", json={})
    assert empty.json() == {"tasks": []}


async def test_heartbeat_extends_and_stale_token_conflicts(any_client: httpx.AsyncClient) -> None:
    await submit(any_client)
    task = await lease_one(any_client, "text-service", lease_seconds=5)
    beat = await any_client.post(
        f"/tasks/{task['id']}/heartbeat",
        json={"lease_token": task["lease_token"], "lease_seconds": 120},
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["lease_expires_at"] > task["lease_expires_at"]
    stale = await any_client.post(
        f"/tasks/{task['id']}/complete", json={"lease_token": "nope.1", "result_ref": "x"}
    )
    assert stale.status_code == 409
    assert stale.json()["type"].endswith("/stale-lease")
    assert stale.json()["current_status"] == "processing"
    assert stale.json()["field"] == "lease_token"


async def test_complete_twice_with_same_token_is_idempotent(client: httpx.AsyncClient) -> None:
    await submit(client)
    task = await lease_one(client, "text-service")
    body = {"lease_token": task["lease_token"], "result_ref": "script.txt"}
    first = await client.post(f"/tasks/{task['id']}/complete", json=body)
    second = await client.post(f"/tasks/{task['id']}/complete", json=body)
    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "success"


async def test_fail_retries_then_fails_for_good(client: httpx.AsyncClient) -> None:
    await submit(client, {"scenario": "CreateVoice", "description": "hi"})
    task = await lease_one(client, "audio-service")
    retried = await client.post(
        f"/tasks/{task['id']}/fail", json={"lease_token": task["lease_token"], "error": "boom"}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "queued"
    assert retried.json()["available_at"] > time.time()
    stale = await client.post(
        f"/tasks/{task['id']}/fail", json={"lease_token": task["lease_token"], "error": "boom"}
    )
    assert stale.status_code == 409
    final = await client.patch(f"/tasks/{task['id']}/status", json={"status": "processing"})
    assert final.status_code == 200
    token = (await client.get(f"/tasks/{task['id']}")).json()
    assert token["attempt"] == 2
    not_retryable = await client.patch(
        f"/tasks/{task['id']}/status", json={"status": "failed", "error": "fatal"}
    )
    assert not_retryable.json()["status"] == "failed"


async def test_batch_complete_reports_each_item(any_client: httpx.AsyncClient) -> None:
    await submit(any_client, {"scenario": "CreateVoice", "description": "hi", "count": 3})
    leased = await any_client.post("/queues/audio-service/lease", json={"max_tasks": 3})
    tasks = leased.json()["tasks"]
    items = [{"id": t["id"], "lease_token": t["lease_token"], "result_ref": "a"} for t in tasks]
    items[1]["lease_token"] = "stale.9"
    items.append({"id": "nope:nope", "lease_token": "x.1"})
    response = await any_client.post("/tasks/complete", json={"items": items})
    assert response.status_code == 200, response.text
    outcomes = response.json()["outcomes"]
    assert [o["ok"] for o in outcomes] == [True, False, True, False]
    assert outcomes[1]["problem"]["status"] == 409
    assert outcomes[3]["problem"]["status"] == 404
    assert outcomes[0]["task"]["status"] == "success"


async def test_long_poll_lease_returns_when_a_task_becomes_ready(
    any_client: httpx.AsyncClient,
) -> None:
    created = await submit(any_client)
    script = await lease_one(any_client, "text-service")
    started = time.monotonic()
    waiting = asyncio.create_task(
        any_client.post("/queues/audio-service/lease", json={"wait_seconds": 20})
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await any_client.post(
        f"/tasks/{script['id']}/complete", json={"lease_token": script["lease_token"]}
    )
    response = await asyncio.wait_for(waiting, timeout=5)
    assert time.monotonic() - started < 3
    assert [t["id"] for t in response.json()["tasks"]] == [f"{created['scenario_id']}:voice"]


async def test_long_poll_times_out_empty(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    # no scenario was submitted, so the queue stays empty
    response = await client.post("/queues/video-service/lease", json={"wait_seconds": 0.3})
    assert response.json() == {"tasks": []}
    assert 0.25 <= time.monotonic() - started < 2


async def test_queue_stats(any_client: httpx.AsyncClient) -> None:
    await submit(any_client)
    await lease_one(any_client, "text-service")
    await submit(any_client)
    queues = {q["service"]: q for q in (await any_client.get("/queues")).json()["queues"]}
    assert queues["text-service"]["ready"] == 1
    assert queues["text-service"]["in_flight"] == 1
    assert queues["text-service"]["oldest_ready_age"] >= 0


async def test_cancel_and_retry(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    sid = created["scenario_id"]
    cancelled = await any_client.post(f"/scenarios/{sid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = await any_client.post(f"/scenarios/{sid}/cancel")
    assert again.status_code in (200, 409)
    retried = await any_client.post(f"/scenarios/{sid}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    nothing = await any_client.post(f"/scenarios/{sid}/retry")
    assert nothing.status_code == 409
    missing = await any_client.post("/scenarios/nope/cancel")
    assert missing.status_code == 404


async def test_list_scenarios_filters_and_paginates(any_client: httpx.AsyncClient) -> None:
    ids = [(await submit(any_client))["scenario_id"] for _ in range(3)]
    voice = await submit(any_client, {"scenario": "CreateVoice", "description": "x"})
    await any_client.post(f"/scenarios/{ids[0]}/cancel")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "scenario": "CreateVideo"}
        if cursor:
            params["cursor"] = cursor
        page = (await any_client.get("/scenarios", params=params)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    cancelled = (await any_client.get("/scenarios", params={"status": "cancelled"})).json()
    assert [s["id"] for s in cancelled["items"]] == [ids[0]]
    everything = (await any_client.get("/scenarios")).json()
    assert everything["items"][0]["id"] == voice["scenario_id"]
    bad = await any_client.get("/scenarios", params={"cursor": "garbage!!"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


async def test_dry_run_stores_nothing(client: httpx.AsyncClient) -> None:
    body = {"scenario": "CreateSlides", "description": "cats", "slides_count": 2}
    response = await client.post("/generate?dry_run=true", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["dry_run"] is True
    assert plan["task_count"] == 4
    assert plan["levels"] == 2
    assert plan["tasks"][0]["payload"]["topic"] == "cats"
    assert (await client.get("/scenarios")).json()["items"] == []


async def test_idempotency_key_replays_the_first_submission(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-42"}
    body = {"scenario": "CreateVoice", "description": "hi"}
    first = await client.post("/generate", json=body, headers=headers)
    second = await client.post("/generate", json=body, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["scenario_id"] == first.json()["scenario_id"]
    assert second.json()["created"] is False
    assert len((await client.get("/scenarios")).json()["items"]) == 1
