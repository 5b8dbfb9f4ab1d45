"""`POST /tasks/{id}/complete` says whether it changed the task or answered a repeat of a
completion already made with the same lease token (decision 2), as a batch outcome does."""

from __future__ import annotations

import httpx

from scenarist.api.worker_schemas import CompletionPublic
from tests.api.conftest import submit


async def test_a_repeated_completion_answers_duplicate_true(
    any_client: httpx.AsyncClient,
) -> None:
    await submit(any_client)
    leased = await any_client.post("/queues/text-service/lease", json={"max_tasks": 1})
    (task,) = leased.json()["tasks"]
    body = {"lease_token": task["lease_token"], "result_ref": "out/script"}
    first = await any_client.post(f"/tasks/{task['id']}/complete", json=body)
    again = await any_client.post(f"/tasks/{task['id']}/complete", json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["duplicate"] is False
    assert again.json()["duplicate"] is True
    assert {**first.json(), "duplicate": True} == again.json()
    assert first.json()["status"] == "success"
    CompletionPublic.model_validate(again.json())
