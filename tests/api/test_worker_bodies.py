"""The worker protocol's answers are written directly as JSON; each must be exactly its
pydantic model's dump (keys, order, floats as floats), for every kind of outcome."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from scenarist.api.worker_schemas import BatchCompletePublic, LeasePublic, ServicesLeasePublic
from tests.api.conftest import submit

SERVICES = ["text-service", "audio-service", "image-service", "video-service"]


def assert_is_the_models_dump(response: httpx.Response, model: type[BaseModel]) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    parsed = model.model_validate_json(response.content)
    assert parsed.model_dump_json().encode() == response.content
    return response.json()


def items_of(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": t["id"], "lease_token": t["lease_token"]} for t in tasks]


async def test_lease_rounds_equal_their_models(any_client: httpx.AsyncClient) -> None:
    await submit(any_client)
    first = await any_client.post(
        "/queues/text-service/lease", json={"max_tasks": 5, "lease_seconds": 30}
    )
    tasks = assert_is_the_models_dump(first, LeasePublic)["tasks"]
    assert [t["name"] for t in tasks] == ["script"]
    assert isinstance(tasks[0]["lease_expires_at"], float)

    done = {"id": tasks[0]["id"], "lease_token": tasks[0]["lease_token"], "result": {"n": 1}}
    stale = {"id": tasks[0]["id"], "lease_token": "not-the-token"}
    missing = {"id": "no-such:task", "lease_token": "x.1"}
    body = {"services": SERVICES, "max_tasks": 32, "complete": [done, done, stale, missing]}
    round_two = await any_client.post("/queues/lease", json=body)
    data = assert_is_the_models_dump(round_two, ServicesLeasePublic)
    ok, duplicate, conflict, not_found = data["outcomes"]
    assert (ok["ok"], ok["duplicate"], ok["problem"]) == (True, False, None)
    assert ok["task"]["status"] == "success"
    assert ok["task"]["result"] == {"n": 1}
    assert (duplicate["ok"], duplicate["duplicate"]) == (True, True)
    assert (conflict["ok"], conflict["task"]) == (False, None)
    assert conflict["problem"]["status"] in (404, 409)
    assert not_found["problem"]["status"] == 404
    leased = data["tasks"]
    assert len(leased) == 4  # voice and three slide prompts
    assert all(t["inputs"] for t in leased), "each has the script's result as input"

    batch = await any_client.post("/tasks/complete", json={"items": items_of(leased)})
    outcomes = assert_is_the_models_dump(batch, BatchCompletePublic)["outcomes"]
    assert [o["id"] for o in outcomes] == [t["id"] for t in leased]
    assert all(o["ok"] and isinstance(o["task"]["timeout_seconds"], float) for o in outcomes)


async def test_an_empty_lease_equals_its_model(any_client: httpx.AsyncClient) -> None:
    empty = await any_client.post("/queues/lease", json={"services": SERVICES})
    assert assert_is_the_models_dump(empty, ServicesLeasePublic) == {"tasks": [], "outcomes": []}
