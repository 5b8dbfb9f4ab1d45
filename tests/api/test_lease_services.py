"""POST /queues/lease: one lease (and one long poll) over several services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, make_settings, serve, submit

SERVICES = ["text-service", "audio-service", "image-service", "video-service"]
CLIENT = "client-token-0123456789"
TEXT_WORKER = "worker-token-0123456789"  # text-service only
ANY_WORKER = "any-worker-token-012345"
TOKENS = [
    {"token": CLIENT, "role": "client"},
    {"token": TEXT_WORKER, "role": "worker", "services": ["text-service"]},
    {"token": ANY_WORKER, "role": "worker"},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def lease(client: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    response = await client.post("/queues/lease", json={"max_tasks": 32, **body})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


async def complete_all(client: httpx.AsyncClient, tasks: list[dict[str, Any]]) -> None:
    items = [{"id": t["id"], "lease_token": t["lease_token"]} for t in tasks]
    response = await client.post("/tasks/complete", json={"items": items})
    assert response.status_code == 200, response.text
    assert all(outcome["ok"] for outcome in response.json()["outcomes"])


async def test_one_lease_serves_every_service_best_first(any_client: httpx.AsyncClient) -> None:
    scenario = await submit(any_client)
    waves = []
    while True:
        tasks = await lease(any_client, services=SERVICES, worker_id="w-1")
        if not tasks:
            break
        waves.append(sorted(t["name"] for t in tasks))
        await complete_all(any_client, tasks)
    slides = [f"slide_{kind}_{i}" for kind in ("prompt",) for i in range(1, 4)]
    assert waves[0] == ["script"]
    assert waves[1] == sorted(["voice", *slides])  # two services, one lease
    assert len(waves) == 4
    status = (await any_client.get(f"/scenarios/{scenario['scenario_id']}")).json()["status"]
    assert status == "success"


async def test_the_long_poll_wakes_for_any_listed_service(any_client: httpx.AsyncClient) -> None:
    await submit(any_client)
    [script] = await lease(any_client, services=["text-service"])
    waiting = asyncio.create_task(
        lease(any_client, services=["video-service", "audio-service"], wait_seconds=5)
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await complete_all(any_client, [script])
    woken = await asyncio.wait_for(waiting, timeout=4)
    assert [t["name"] for t in woken] == ["voice"]


@pytest.mark.parametrize(
    "services",
    [[], [""], ["x" * 201], [f"s{i}" for i in range(65)]],
    ids=["empty", "blank-name", "long-name", "too-many"],
)
async def test_the_service_list_is_validated(
    client: httpx.AsyncClient, services: list[str]
) -> None:
    response = await client.post("/queues/lease", json={"services": services})
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/validation-failed")


@pytest.fixture
async def secured(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(sqlite_url, tokens=TOKENS)) as client:
        yield client


async def test_every_listed_service_must_be_allowed(secured: httpx.AsyncClient) -> None:
    created = await secured.post("/generate", json=SEED_VIDEO, headers=bearer(CLIENT))
    assert created.status_code == 201
    both = {"services": ["text-service", "audio-service"], "max_tasks": 5}
    refused = await secured.post("/queues/lease", json=both, headers=bearer(TEXT_WORKER))
    assert refused.status_code == 403
    assert "audio-service" in refused.json()["detail"]
    for token, expected in ((CLIENT, 403), (ANY_WORKER, 200)):
        answer = await secured.post("/queues/lease", json=both, headers=bearer(token))
        assert answer.status_code == expected, (token, answer.text)
    assert (await secured.post("/queues/lease", json=both)).status_code == 401
    own = {"services": ["text-service"], "max_tasks": 5}
    allowed = await secured.post("/queues/lease", json=own, headers=bearer(TEXT_WORKER))
    assert allowed.status_code == 200


async def test_a_lease_can_report_the_previous_batch(any_client: httpx.AsyncClient) -> None:
    scenario = await submit(any_client)
    done: list[dict[str, Any]] = []
    rounds = 0
    while True:
        body = {
            "services": SERVICES,
            "max_tasks": 32,
            "complete": [{"id": t["id"], "lease_token": t["lease_token"]} for t in done],
        }
        response = await any_client.post("/queues/lease", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert [o["id"] for o in answer["outcomes"]] == [t["id"] for t in done]
        assert all(o["ok"] and o["task"]["status"] == "success" for o in answer["outcomes"])
        if not answer["tasks"]:
            break
        done, rounds = answer["tasks"], rounds + 1
    assert rounds == 4  # script; voice + slide prompts; slide images; video
    status = (await any_client.get(f"/scenarios/{scenario['scenario_id']}")).json()["status"]
    assert status == "success"


async def test_a_stale_completion_is_an_outcome_not_an_error(client: httpx.AsyncClient) -> None:
    await submit(client)
    [script] = await lease(client, services=["text-service"])
    stale = [
        {"id": script["id"], "lease_token": "not-the-token.1"},
        {"id": "nope:x", "lease_token": "a.1"},
    ]
    response = await client.post(
        "/queues/lease", json={"services": ["audio-service"], "complete": stale}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [(o["id"], o["ok"]) for o in answer["outcomes"]] == [
        (script["id"], False),
        ("nope:x", False),
    ]
    assert answer["outcomes"][0]["problem"]["status"] == 409
    assert answer["outcomes"][1]["problem"]["status"] == 404
    assert answer["tasks"] == []  # nothing was released


async def test_completing_needs_the_tasks_service(secured: httpx.AsyncClient) -> None:
    await secured.post("/generate", json=SEED_VIDEO, headers=bearer(CLIENT))
    script_lease = await secured.post(
        "/queues/lease", json={"services": ["text-service"]}, headers=bearer(ANY_WORKER)
    )
    [script] = script_lease.json()["tasks"]
    done = {"id": script["id"], "lease_token": script["lease_token"]}
    voice_lease = await secured.post(
        "/queues/lease",
        json={"services": ["text-service", "audio-service"], "max_tasks": 10, "complete": [done]},
        headers=bearer(ANY_WORKER),
    )
    [voice] = [t for t in voice_lease.json()["tasks"] if t["name"] == "voice"]
    foreign = {"id": voice["id"], "lease_token": voice["lease_token"]}
    refused = await secured.post(
        "/queues/lease",
        json={"services": ["text-service"], "complete": [foreign]},
        headers=bearer(TEXT_WORKER),
    )
    assert refused.status_code == 403
    assert "audio-service" in refused.json()["detail"]
