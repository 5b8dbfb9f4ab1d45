"""POST /generate/batch: one outcome per item, bad items refused alone, idempotency keys
inside and across batches, the bounds, and the body written as the model says."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from scenarist.api.batch_schemas import GenerateBatchPublic
from scenarist.service.policy import Limits
from tests.api.conftest import SEED_VIDEO, submit
from tests.api.test_bad_input import assert_problem
from tests.support.app import make_settings, serve

VOICE = {"scenario": "CreateVoice", "params": {"description": "Hi", "count": 2}}


async def post_batch(client: httpx.AsyncClient, items: list[Any]) -> dict[str, Any]:
    response = await client.post("/generate/batch", json={"items": items})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    model = GenerateBatchPublic.model_validate_json(response.content)
    assert model.model_dump(mode="json", exclude_none=True) == orjson.loads(response.content)
    data: dict[str, Any] = response.json()
    assert [item["index"] for item in data["items"]] == list(range(len(items)))
    return data


async def test_good_and_bad_items_each_get_their_outcome(any_client: httpx.AsyncClient) -> None:
    items: list[Any] = [
        SEED_VIDEO,
        {"scenario": "NoSuchTemplate"},
        {**SEED_VIDEO, "slides_count": "three"},
        {"description": "no scenario named"},
        {**SEED_VIDEO, "callback_url": "http://127.0.0.1:9/hook"},
        VOICE,
        {**SEED_VIDEO, "params": {"slides_count": 2}, "slides_count": 2},
    ]
    data = await post_batch(any_client, items)
    assert [item["status"] for item in data["items"]] == [201, 404, 422, 422, 422, 201, 422]
    assert (data["created"], data["replayed"], data["failed"]) == (2, 0, 5)
    first, unknown, bad_param, no_name, callback, voice, twice = data["items"]
    assert first["created"] is True
    assert first["task_count"] == 9
    assert first["scenario"] == "CreateVideo"
    assert first["scenario_status"] == "pending"
    assert unknown["problem"]["type"].endswith("/unknown-scenario")
    assert bad_param["problem"]["type"].endswith("/invalid-param")
    assert bad_param["problem"]["field"] == "slides_count"
    assert no_name["problem"]["type"].endswith("/validation-failed")
    assert no_name["problem"]["field"] == "scenario"
    assert callback["problem"]["field"] == "callback_url"
    assert twice["problem"]["field"] == "slides_count"
    assert "scenario_id" not in unknown
    for created in (first, voice):
        stored = await any_client.get(f"/scenarios/{created['scenario_id']}")
        assert stored.status_code == 200
    listed = (await any_client.get("/scenarios")).json()
    assert len(listed["items"]) == 2


async def test_a_key_repeated_inside_a_batch_replays_its_first_item(
    any_client: httpx.AsyncClient,
) -> None:
    keyed = {**SEED_VIDEO, "idempotency_key": "k-1"}
    other = {**SEED_VIDEO, "description": "dogs", "idempotency_key": "k-1"}
    data = await post_batch(any_client, [keyed, VOICE, keyed, other])
    statuses = [item["status"] for item in data["items"]]
    assert statuses == [201, 201, 200, 422]
    first, _, again, different = data["items"]
    assert again["scenario_id"] == first["scenario_id"]
    assert again["created"] is False
    assert different["problem"]["type"].endswith("/idempotency-key-reused")
    assert different["problem"]["scenario_id"] == first["scenario_id"]
    assert (data["created"], data["replayed"], data["failed"]) == (2, 1, 1)


async def test_keys_hold_across_batches_and_single_submits(any_client: httpx.AsyncClient) -> None:
    single = await any_client.post("/generate", json=SEED_VIDEO, headers={"Idempotency-Key": "a"})
    assert single.status_code == 201
    first = await post_batch(
        any_client, [{**SEED_VIDEO, "idempotency_key": "a"}, {**VOICE, "idempotency_key": "b"}]
    )
    assert first["items"][0]["status"] == 200
    assert first["items"][0]["scenario_id"] == single.json()["scenario_id"]
    assert first["items"][1]["status"] == 201
    second = await post_batch(any_client, [{**VOICE, "idempotency_key": "b"}])
    assert second["items"][0]["scenario_id"] == first["items"][1]["scenario_id"]
    assert second["items"][0]["status"] == 200
    replay = await any_client.post("/generate", json=VOICE, headers={"Idempotency-Key": "b"})
    assert replay.status_code == 200
    assert replay.json()["scenario_id"] == first["items"][1]["scenario_id"]


async def test_the_batch_bounds_are_whole_request_problems(client: httpx.AsyncClient) -> None:
    empty = await client.post("/generate/batch", json={"items": []})
    assert assert_problem(empty, 422, "validation-failed")["field"] == "items"
    too_many = await client.post(
        "/generate/batch", json={"items": [VOICE] * (Limits().max_submit_batch + 1)}
    )
    assert assert_problem(too_many, 422, "validation-failed")["field"] == "items"
    not_objects = await client.post("/generate/batch", json={"items": ["CreateVideo"]})
    assert assert_problem(not_objects, 422, "validation-failed")["field"] == "items.0"
    unknown = await client.post("/generate/batch", json={"items": [VOICE], "dry_run": True})
    assert assert_problem(unknown, 422, "validation-failed")["field"] == "dry_run"
    await submit(client)  # nothing of the refused batches was stored
    assert len((await client.get("/scenarios")).json()["items"]) == 1


async def test_the_body_cap_bounds_a_batch_in_bytes(sqlite_url: str) -> None:
    async with serve(make_settings(sqlite_url, max_body_bytes=4096)) as client:
        items = [{**SEED_VIDEO, "description": "x" * 150}] * 30
        response = await client.post("/generate/batch", json={"items": items})
        assert_problem(response, 413, "body-too-large")


async def test_an_item_that_names_an_unknown_field_in_params_is_refused_alone(
    client: httpx.AsyncClient,
) -> None:
    data = await post_batch(client, [{**VOICE, "params": {"nope": 1}}, VOICE])
    assert [item["status"] for item in data["items"]] == [422, 201]
    assert data["items"][0]["problem"]["field"] == "nope"
