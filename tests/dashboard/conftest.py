"""Dashboard fixtures: the real app (temp SQLite store) driven in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarist.settings import Settings
from tests.support.app import make_settings as make_app_settings
from tests.support.app import serve as serve_app

VIDEO = {"scenario": "CreateVideo", "description": "A video about <b>cats</b>", "slides_count": 3}
SERVICES = ("text-service", "audio-service", "image-service", "video-service")
CLIENT_TOKEN = "client-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"
WORKER_TOKEN = "worker-token-0123456789"
TOKENS = [
    {"token": CLIENT_TOKEN, "role": "client"},
    {"token": ADMIN_TOKEN, "role": "admin"},
    {"token": WORKER_TOKEN, "role": "worker"},
]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_app_settings(f"sqlite:///{tmp_path / 'dashboard.db'}", **overrides)


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings, base_url="http://dash.test") as client:
        yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(tmp_path)) as c:
        yield c


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app with client, admin and worker tokens configured."""
    async with serve(make_settings(tmp_path, tokens=TOKENS)) as c:
        yield c


async def submit(
    client: httpx.AsyncClient, body: dict[str, Any] | None = None, **headers: str
) -> str:
    response = await client.post("/generate", json=body or VIDEO, headers=headers)
    assert response.status_code == 201, response.text
    scenario_id: str = response.json()["scenario_id"]
    return scenario_id


async def work_once(client: httpx.AsyncClient, service: str, **headers: str) -> list[str]:
    """Lease what is ready in `service` and complete it; the names of the finished tasks."""
    leased = await client.post(f"/queues/{service}/lease", json={"max_tasks": 20}, headers=headers)
    assert leased.status_code == 200, leased.text
    done = []
    for task in leased.json()["tasks"]:
        r = await client.post(
            f"/tasks/{task['id']}/complete",
            json={"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}.bin"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        done.append(task["name"])
    return done
