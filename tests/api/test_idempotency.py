"""`Idempotency-Key`: the same request again replays the first scenario (200); the key
with a different request is a client error (422, as the IETF idempotency-key draft
answers), naming the key and the scenario it belongs to, and stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO
from tests.api.test_bad_input import assert_problem

KEY = {"Idempotency-Key": "order-42"}


async def first_submission(client: httpx.AsyncClient) -> dict[str, Any]:
    created = await client.post("/generate", json=SEED_VIDEO, headers=KEY)
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()
    return data


async def test_the_same_request_replays_the_first_scenario(any_client: httpx.AsyncClient) -> None:
    first = await first_submission(any_client)
    again = await any_client.post("/generate", json=SEED_VIDEO, headers=KEY)
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["scenario_id"] == first["scenario_id"]


async def test_the_same_request_in_another_shape_replays_too(
    any_client: httpx.AsyncClient,
) -> None:
    """Parameters at the top level or under `params`, defaults spelled out or not: the
    same validated request is the same request."""
    first = await first_submission(any_client)
    nested = {"scenario": "CreateVideo", "params": {"description": SEED_VIDEO["description"]}}
    again = await any_client.post("/generate", json=nested, headers=KEY)
    assert again.status_code == 200, again.text
    assert again.json()["scenario_id"] == first["scenario_id"]


@pytest.mark.parametrize(
    "changed",
    [
        {**SEED_VIDEO, "description": "A video about dogs"},
        {**SEED_VIDEO, "slides_count": 4},
        {**SEED_VIDEO, "callback_url": "https://example.com/hook"},
        {"scenario": "CreateVoice", "description": "A video about cats"},
    ],
)
async def test_the_key_with_a_different_request_is_422(
    any_client: httpx.AsyncClient, changed: dict[str, Any]
) -> None:
    first = await first_submission(any_client)
    response = await any_client.post("/generate", json=changed, headers=KEY)
    problem = assert_problem(response, 422, "idempotency-key-reused")
    assert problem["field"] == "Idempotency-Key"
    assert problem["scenario_id"] == first["scenario_id"]
    assert "order-42" in problem["detail"]
    assert first["scenario_id"] in problem["detail"]
    listed = (await any_client.get("/scenarios")).json()["items"]
    assert [s["id"] for s in listed] == [first["scenario_id"]]
