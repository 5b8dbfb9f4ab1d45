"""Seed-style delivery: with publish_lists, ready tasks are pushed onto per-service Redis
lists, and a worker that only knows BRPOP + PATCH drives a scenario to success."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from scenarist.storage import StoreConfigError, open_store
from tests.api.conftest import SEED_VIDEO, make_settings, serve, submit
from tests.support.redis_server import RedisServer

SERVICES = ["text-service", "audio-service", "image-service", "video-service"]


@pytest.mark.redis
async def test_brpop_and_patch_worker_finishes_a_video(redis_server: RedisServer) -> None:
    settings = make_settings(redis_server.url, publish_lists=True, list_prefix="seed:")
    lists = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with serve(settings) as client:
            created = await submit(client, SEED_VIDEO)
            sid = created["scenario_id"]
            handled = await seed_worker(client, lists, sid)
            scenario = (await client.get(f"/scenarios/{sid}")).json()
            assert scenario["status"] == "success"
            # nothing else waits on the lists, and nothing was delivered twice
            assert sorted(handled) == sorted(t["name"] for t in created["tasks"])
            for service in SERVICES:
                assert await lists.llen(f"seed:{service}") == 0
    finally:
        await lists.aclose()


async def seed_worker(client: httpx.AsyncClient, lists: aioredis.Redis, sid: str) -> list[str]:
    handled: list[str] = []
    keys = [f"seed:{s}" for s in SERVICES]
    while True:
        popped = await lists.brpop(keys, timeout=2)
        if popped is None:
            return handled
        _, raw = popped
        message = json.loads(raw)
        assert message["scenario_id"] == sid
        assert {"id", "name", "service", "payload", "inputs", "level"} <= set(message)
        claimed = await client.patch(
            f"/tasks/{message['id']}/status", json={"status": "processing"}
        )
        assert claimed.status_code == 200, claimed.text
        done = await client.patch(
            f"/tasks/{message['id']}/status",
            json={"status": "success", "result_ref": f"output/{message['name']}"},
        )
        assert done.status_code == 200, done.text
        handled.append(message["name"])
        if message["name"] == "video":
            return handled


@pytest.mark.redis
async def test_a_leased_task_is_not_claimed_again_through_the_list(
    redis_server: RedisServer,
) -> None:
    settings = make_settings(redis_server.url, publish_lists=True)
    async with serve(settings) as client:
        created = await submit(client, {"scenario": "CreateVoice", "description": "x"})
        leased = await client.post("/queues/audio-service/lease", json={})
        assert len(leased.json()["tasks"]) == 1
        task_id = f"{created['scenario_id']}:voice_1"
        again = await client.patch(f"/tasks/{task_id}/status", json={"status": "processing"})
        assert again.status_code == 409
        assert again.json()["current_status"] == "processing"


async def test_publish_lists_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="redis"):
        await open_store(f"sqlite:///{tmp_path / 'x.db'}", publish_lists=True)
