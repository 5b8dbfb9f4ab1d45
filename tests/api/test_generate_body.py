"""POST /generate writes its JSON directly; it must be exactly GeneratePublic's dump."""

from __future__ import annotations

import httpx

from scenarist.api.schemas import GeneratePublic
from tests.api.conftest import SEED_VIDEO


def assert_is_the_models_dump(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/json"
    model = GeneratePublic.model_validate_json(response.content)
    assert model.model_dump_json().encode() == response.content


async def test_created_and_replayed_bodies_equal_the_model(any_client: httpx.AsyncClient) -> None:
    body = {**SEED_VIDEO, "description": 'Ünïcode \u2603 "quoted" \\ slash'}
    key = {"Idempotency-Key": "body-check"}
    created = await any_client.post("/generate", json=body, headers=key)
    assert created.status_code == 201
    assert "Idempotent-Replayed" not in created.headers
    assert_is_the_models_dump(created)
    data = created.json()
    assert data["created"] is True
    assert data["task_count"] == len(data["tasks"]) == 9
    assert data["tasks"][0] == {
        "id": f"{data['scenario_id']}:script",
        "name": "script",
        "service": "text-service",
        "level": 0,
        "depends_on": [],
        "status": "queued",
        "run": 1,
        "runs": 1,
        "cached": False,
        "cached_from": None,
    }
    replayed = await any_client.post("/generate", json=body, headers=key)
    assert replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert_is_the_models_dump(replayed)
    assert replayed.json()["created"] is False
    assert replayed.json()["scenario_id"] == data["scenario_id"]
