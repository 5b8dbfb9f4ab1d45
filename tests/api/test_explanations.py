"""Errors where people look: a scenario's body and a task's details explain failures and
skips, and progress names each outcome, on every store backend."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import submit


async def lease_one(client: httpx.AsyncClient, service: str) -> dict[str, Any]:
    response = await client.post(f"/queues/{service}/lease", json={"max_tasks": 1})
    assert response.status_code == 200, response.text
    (task,) = response.json()["tasks"]
    return dict(task)


async def complete(client: httpx.AsyncClient, task: dict[str, Any]) -> None:
    body = {"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}"}
    response = await client.post(f"/tasks/{task['id']}/complete", json=body)
    assert response.status_code == 200, response.text


async def fail_slide_prompt_for_good(client: httpx.AsyncClient) -> str:
    """CreateVideo with one slide: the script succeeds, the slide prompt fails for good on
    its first attempt, so slide_image_1 and video are skipped; voice stays queued."""
    created = await submit(
        client, {"scenario": "CreateVideo", "description": "cats", "slides_count": 1}
    )
    await complete(client, await lease_one(client, "text-service"))
    prompt = await lease_one(client, "text-service")
    assert prompt["name"] == "slide_prompt_1"
    failed = await client.post(
        f"/tasks/{prompt['id']}/fail",
        json={"lease_token": prompt["lease_token"], "error": "no cats today", "retryable": False},
    )
    assert failed.status_code == 200, failed.text
    return str(created["scenario_id"])


async def test_scenario_body_lists_failures_with_error_and_caused_skips(
    any_client: httpx.AsyncClient,
) -> None:
    scenario_id = await fail_slide_prompt_for_good(any_client)
    body = (await any_client.get(f"/scenarios/{scenario_id}")).json()
    assert body["failures"] == [
        {
            "task": "slide_prompt_1",
            "error": "no cats today",
            "attempt": 1,
            "max_attempts": 3,
            "reason": "not_retryable",
            "description": "failed for good after attempt 1 of 3 (not retryable)",
            "skipped": ["slide_image_1", "video"],
        }
    ]
    tasks = {t["name"]: t for t in body["tasks"]}
    assert tasks["video"]["skipped_because"] == ["slide_prompt_1"]
    assert tasks["slide_image_1"]["skipped_because"] == ["slide_prompt_1"]
    assert tasks["slide_prompt_1"]["error"] == "no cats today"
    assert tasks["voice"]["skipped_because"] == []
    assert body["progress"]["summary"] == "4/5 finished: 1 succeeded, 1 failed, 2 skipped"


async def test_task_details_explain_skips_and_failures(any_client: httpx.AsyncClient) -> None:
    scenario_id = await fail_slide_prompt_for_good(any_client)
    video = (await any_client.get(f"/tasks/{scenario_id}:video")).json()
    assert video["status"] == "skipped"
    assert video["skipped_because"] == ["slide_prompt_1"]
    assert video["failure"] is None
    prompt = (await any_client.get(f"/tasks/{scenario_id}:slide_prompt_1")).json()
    assert prompt["skipped_because"] == []
    assert prompt["failure"]["reason"] == "not_retryable"
    assert prompt["failure"]["skipped"] == ["slide_image_1", "video"]
    script = (await any_client.get(f"/tasks/{scenario_id}:script")).json()
    assert (script["skipped_because"], script["failure"]) == ([], None)


async def test_a_cancelled_scenario_does_not_read_as_done(client: httpx.AsyncClient) -> None:
    created = await submit(client, {"scenario": "CreateVoice", "description": "hi", "count": 2})
    await complete(client, await lease_one(client, "audio-service"))
    cancelled = await client.post(f"/scenarios/{created['scenario_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["progress"]["summary"] == "2/2 finished: 1 succeeded, 1 cancelled"
