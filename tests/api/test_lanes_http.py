"""`priority` on POST /generate and /generate/batch (decision 77), through the app on
every store: a plain worker leasing the text-service gets the interactive scenario's
script first and the batch one's last, the scenario body says its lane, a bad value is a
422 naming `priority`, and a template parameter of that name goes under `params`."""

from __future__ import annotations

import httpx

from tests.api.conftest import SEED_VIDEO, submit
from tests.api.test_bad_input import assert_problem
from tests.api.test_generate_batch import post_batch


async def leased_scenarios(client: httpx.AsyncClient, service: str) -> list[str]:
    r = await client.post(f"/queues/{service}/lease", json={"max_tasks": 10})
    assert r.status_code == 200, r.text
    return [t["scenario_id"] for t in r.json()["tasks"]]


async def test_a_lease_takes_the_interactive_script_first_and_the_batch_one_last(
    any_client: httpx.AsyncClient,
) -> None:
    batch = (await submit(any_client, {**SEED_VIDEO, "priority": "batch"}))["scenario_id"]
    normal = (await submit(any_client))["scenario_id"]
    interactive = (await submit(any_client, {**SEED_VIDEO, "priority": "interactive"}))[
        "scenario_id"
    ]

    assert await leased_scenarios(any_client, "text-service") == [interactive, normal, batch]
    bodies = [(await any_client.get(f"/scenarios/{s}")).json() for s in (batch, normal)]
    assert [b["priority"] for b in bodies] == ["batch", "normal"]
    light = (await any_client.get(f"/scenarios/{interactive}?tasks=none")).json()
    assert light["priority"] == "interactive"


async def test_batch_items_each_take_their_lane(any_client: httpx.AsyncClient) -> None:
    answer = await post_batch(
        any_client,
        [{**SEED_VIDEO, "priority": "batch"}, {**SEED_VIDEO, "priority": "interactive"}],
    )
    batch, interactive = (item["scenario_id"] for item in answer["items"])
    assert await leased_scenarios(any_client, "text-service") == [interactive, batch]


async def test_an_unknown_priority_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    for value in ("urgent", 5, None, "Interactive"):
        response = await client.post("/generate", json={**SEED_VIDEO, "priority": value})
        assert assert_problem(response, 422, "validation-failed")["field"] == "priority"
    answer = await post_batch(client, [{**SEED_VIDEO, "priority": "urgent"}, SEED_VIDEO])
    refused, created = answer["items"]
    assert (refused["status"], refused["problem"]["field"]) == (422, "priority")
    assert created["status"] == 201


async def test_a_replay_with_another_lane_is_a_different_request(
    client: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "video-7"}
    first = await client.post("/generate", json=SEED_VIDEO, headers=key)
    assert first.status_code == 201, first.text
    again = await client.post("/generate", json={**SEED_VIDEO, "priority": "normal"}, headers=key)
    assert again.status_code == 200, again.text  # the default lane, said out loud
    other = await client.post("/generate", json={**SEED_VIDEO, "priority": "batch"}, headers=key)
    assert_problem(other, 422, "idempotency-key-reused")
