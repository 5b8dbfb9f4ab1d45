"""The step cache over HTTP, on SQLite, Redis and a Redis Cluster (issue 17's "done when"):
two identical CreateVideo submissions with `cache: true` on the text-service tasks lease
no text-service task for the second one; a changed payload misses; an expired entry
misses; DELETE /cache empties the cache; /metrics counts hits and misses per service."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarist.core.catalog import parse_catalog
from tests.api.conftest import SEED_VIDEO
from tests.api.test_auth import ADMIN, CLIENT, TOKENS, bearer
from tests.support.app import make_settings, serve
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

PACKAGED = Path(__file__).parents[2] / "src" / "scenarist" / "scenarios.yml"
SERVICES = ("text-service", "audio-service", "image-service", "video-service")
# CreateVideo with its text-service tasks cached, and a one-task template whose entry
# lives one second.
CATALOG = """\
CreateVideo:
  params:
    description: {type: string, required: true}
    slides_count: {type: integer, default: 3}
  tasks:
    - id: script
      service: text-service
      cache: true
      payload: {kind: script, topic: "{{ description }}"}
    - id: voice
      service: audio-service
      depends_on: [script]
      payload: {kind: voice}
    - id: slide_prompt
      service: text-service
      count: "{{ slides_count }}"
      cache: true
      depends_on: [script]
      payload: {kind: slide_prompt, topic: "{{ description }}", part: "{{ index }}"}
    - id: slide_image
      service: image-service
      count: "{{ slides_count }}"
      depends_on: [slide_prompt]
      payload: {kind: slide_image}
    - id: video
      service: video-service
      depends_on: [voice, slide_image]
      payload: {kind: video}
Note:
  tasks:
    - id: note
      service: text-service
      cache: {ttl_seconds: 1}
      payload: {kind: note}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    started = RedisCluster(workdir=tmp_path_factory.mktemp("cache-cluster")).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def cache_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'api.db'}"
    elif request.param == "redis":
        server = RedisServer(workdir=tmp_path / "redis").start()
        try:
            yield server.url
        finally:
            server.stop()
    else:
        cluster: RedisCluster = request.getfixturevalue("cluster")
        try:
            yield cluster.url
        finally:
            cluster.flush()


@pytest.fixture
async def cached_client(cache_store_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    catalog = tmp_path / "scenarios.yml"
    catalog.write_text(CATALOG)
    async with serve(make_settings(cache_store_url, scenarios=catalog)) as client:
        yield client


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/generate", json=body)
    assert response.status_code == 201, response.text
    scenario_id: str = response.json()["scenario_id"]
    return scenario_id


async def run_to_end(client: httpx.AsyncClient, scenario_id: str) -> list[str]:
    """Lease and complete until the scenario ends; the services of the tasks leased."""
    leased: list[str] = []
    for _ in range(30):
        body = (await client.get(f"/scenarios/{scenario_id}")).json()
        if body["status"] in ("success", "failed", "cancelled"):
            return leased
        for service in SERVICES:
            r = await client.post(f"/queues/{service}/lease", json={"max_tasks": 10})
            for task in r.json()["tasks"]:
                assert task["scenario_id"] == scenario_id
                leased.append(service)
                done = await client.post(
                    f"/tasks/{task['id']}/complete",
                    json={"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}"},
                )
                assert done.status_code == 200, done.text
    raise AssertionError(f"scenario {scenario_id} did not end")


def counter(text: str, name: str, service: str) -> float:
    found = re.search(rf'^{name}{{service="{service}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_identical_runs_hit_changed_expired_and_cleared_ones_miss(
    cached_client: httpx.AsyncClient,
) -> None:
    client = cached_client
    first = await submit(client, SEED_VIDEO)
    assert (await run_to_end(client, first)).count("text-service") == 4

    answer = await client.post("/generate", json=SEED_VIDEO)
    second = answer.json()["scenario_id"]
    # The answer shows what the cache served in the submit's step.
    script = answer.json()["tasks"][0]
    assert (script["name"], script["status"], script["cached"]) == ("script", "success", True)
    batch = await client.post("/generate/batch", json={"items": [SEED_VIDEO]})
    [item] = batch.json()["items"]
    assert item["status"] == 201, item
    batch_script = (await client.get(f"/tasks/{item['scenario_id']}:script")).json()
    assert batch_script["cached"] is True
    await client.post(f"/scenarios/{item['scenario_id']}/cancel")
    leased = await run_to_end(client, second)
    assert "text-service" not in leased
    assert sorted(leased) == ["audio-service", *["image-service"] * 3, "video-service"]
    tasks = {t["name"]: t for t in (await client.get(f"/scenarios/{second}")).json()["tasks"]}
    assert tasks["script"]["cached"] is True
    assert tasks["script"]["cached_from"] == f"{first}:script"
    assert tasks["slide_prompt_2"]["cached_from"] == f"{first}:slide_prompt_2"
    assert tasks["voice"]["cached"] is False
    detail = (await client.get(f"/tasks/{second}:slide_prompt_2")).json()
    assert (detail["cached"], detail["result_ref"]) == (True, "out/slide_prompt_2")

    changed = await submit(client, {**SEED_VIDEO, "description": "A video about dogs"})
    assert (await run_to_end(client, changed)).count("text-service") == 4

    metrics = (await client.get("/metrics")).text
    # The second submission and the batch's: the script and its three slide prompts each.
    assert counter(metrics, "scenarist_cache_hits_total", "text-service") == 8
    assert counter(metrics, "scenarist_cache_misses_total", "text-service") == 8
    assert counter(metrics, "scenarist_cache_hits_total", "audio-service") == 0

    cleared = await client.delete("/cache", params={"service": "text-service"})
    assert cleared.status_code == 204
    third = await submit(client, SEED_VIDEO)
    assert (await run_to_end(client, third)).count("text-service") == 4

    note = await submit(client, {"scenario": "Note"})
    assert await run_to_end(client, note) == ["text-service"]
    again = await submit(client, {"scenario": "Note"})
    assert (await client.get(f"/tasks/{again}:note")).json()["cached"] is True
    await asyncio.sleep(1.1)  # the entry lives one second
    late = await submit(client, {"scenario": "Note"})
    assert await run_to_end(client, late) == ["text-service"]

    assert (await client.delete("/cache")).status_code == 204
    last = await submit(client, SEED_VIDEO)
    assert (await run_to_end(client, last)).count("text-service") == 4


async def test_clearing_needs_an_admin_and_a_service_name(sqlite_url: str) -> None:
    async with serve(make_settings(sqlite_url, tokens=TOKENS)) as client:
        refused = await client.delete("/cache", headers=bearer(CLIENT))
        assert refused.status_code == 403
        empty = await client.delete("/cache", params={"service": ""}, headers=bearer(ADMIN))
        assert empty.status_code == 422
        assert "service" in empty.text
        assert (await client.delete("/cache", headers=bearer(ADMIN))).status_code == 204


def test_the_packaged_catalog_caches_the_demos_pure_steps() -> None:
    template = parse_catalog(PACKAGED.read_text(), str(PACKAGED)).get("CreateVideo")
    cached = {t.id for t in template.tasks if t.cache_ttl is not None}
    assert cached == {"script", "slide_prompt", "voice", "slide_image"}
