"""API test fixtures: an app per test (temp SQLite, or a private redis-server), driven
in-process through httpx's ASGI transport with its lifespan running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import make_settings, serve
from tests.support.redis_server import RedisServer

SEED_VIDEO = {"scenario": "CreateVideo", "description": "A video about cats", "slides_count": 3}
BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'api.db'}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'api.db'}"
        return
    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(sqlite_url)) as c:
        yield c


@pytest.fixture
async def any_client(store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The same tests against every store backend."""
    async with serve(make_settings(store_url)) as c:
        yield c


async def submit(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/generate", json=body or SEED_VIDEO)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def drive_to_end(client: httpx.AsyncClient, scenario_id: str, **headers: str) -> None:
    """A plain worker loop: lease whatever is ready in any service, complete it."""
    services = ("text-service", "audio-service", "image-service", "video-service")
    for _ in range(50):
        leased_any = False
        for service in services:
            r = await client.post(
                f"/queues/{service}/lease", json={"max_tasks": 10}, headers=headers
            )
            assert r.status_code == 200, r.text
            for task in r.json()["tasks"]:
                leased_any = True
                done = await client.post(
                    f"/tasks/{task['id']}/complete",
                    json={"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}"},
                    headers=headers,
                )
                assert done.status_code == 200, done.text
        status = (await client.get(f"/scenarios/{scenario_id}", headers=headers)).json()["status"]
        if status in ("success", "failed", "cancelled"):
            return
        assert leased_any, f"scenario {scenario_id} is {status} but nothing is leasable"
    raise AssertionError("scenario did not finish")
