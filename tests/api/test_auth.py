"""Bearer tokens and roles: who may call what."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, make_settings, serve

CLIENT = "client-token-0123456789"
WORKER = "worker-token-0123456789"  # text-service only
ANY_WORKER = "any-worker-token-012345"
ADMIN = "admin-token-01234567890"
TOKENS = [
    {"token": CLIENT, "role": "client"},
    {"token": WORKER, "role": "worker", "services": ["text-service"]},
    {"token": ANY_WORKER, "role": "worker"},
    {"token": ADMIN, "role": "admin", "name": "ops"},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def secured(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(sqlite_url, tokens=TOKENS)) as client:
        yield client


async def scenario_id(client: httpx.AsyncClient) -> str:
    response = await client.post("/generate", json=SEED_VIDEO, headers=bearer(CLIENT))
    assert response.status_code == 201
    value: str = response.json()["scenario_id"]
    return value


async def test_missing_or_wrong_token_is_401_with_challenge(
    secured: httpx.AsyncClient,
) -> None:
    for headers in ({}, bearer("not-a-real-token-at-all"), {"Authorization": "Basic abc"}):
        response = await secured.post("/generate", json=SEED_VIDEO, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["type"].endswith("/unauthorized")


async def test_open_endpoints_need_no_token(secured: httpx.AsyncClient) -> None:
    assert (await secured.get("/")).status_code == 200
    assert (await secured.get("/health")).status_code == 200
    assert (await secured.get("/openapi.json")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        # clients submit, read, cancel and retry; they never touch the worker protocol
        ("POST", "/generate", SEED_VIDEO, {CLIENT: 201, WORKER: 403, ADMIN: 201}),
        ("GET", "/scenarios", None, {CLIENT: 200, WORKER: 403, ADMIN: 200}),
        ("GET", "/scenarios/{sid}", None, {CLIENT: 200, WORKER: 403, ADMIN: 200}),
        ("GET", "/templates", None, {CLIENT: 200, WORKER: 200, ADMIN: 200}),
        ("GET", "/queues", None, {CLIENT: 200, WORKER: 200, ADMIN: 200}),
        ("GET", "/metrics", None, {CLIENT: 200, WORKER: 200, ADMIN: 200}),
        ("POST", "/queues/text-service/lease", {}, {CLIENT: 403, WORKER: 200, ADMIN: 200}),
        ("POST", "/queues/image-service/lease", {}, {CLIENT: 403, WORKER: 403, ANY_WORKER: 200}),
        ("GET", "/tasks/{sid}:script", None, {CLIENT: 200, WORKER: 200, ADMIN: 200}),
        ("GET", "/tasks/{sid}:script/history", None, {CLIENT: 200, WORKER: 200, ADMIN: 200}),
        (
            "POST",
            "/scenarios/{sid}/rerun",
            {"tasks": ["video"]},
            {CLIENT: 200, WORKER: 403, ADMIN: 200},
        ),
        ("GET", "/tasks/{sid}:voice", None, {CLIENT: 200, WORKER: 403, ANY_WORKER: 200}),
        (
            "PATCH",
            "/tasks/{sid}:voice/status",
            {"status": "processing"},
            {CLIENT: 403, WORKER: 403},
        ),
        (
            "PATCH",
            "/tasks/{sid}:script/status",
            {"status": "processing"},
            {CLIENT: 403, WORKER: 200},
        ),
        ("POST", "/scenarios/{sid}/cancel", None, {WORKER: 403, CLIENT: 200}),
    ],
)
async def test_role_matrix(
    secured: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: dict[str, int],
) -> None:
    for token, status in expected.items():
        sid = await scenario_id(secured)
        response = await secured.request(
            method, path.format(sid=sid), json=body, headers=bearer(token)
        )
        assert response.status_code == status, (token, response.text)
        if status == 403:
            assert response.json()["type"].endswith("/forbidden")


async def test_scoped_worker_cannot_complete_other_services(secured: httpx.AsyncClient) -> None:
    sid = await scenario_id(secured)
    leased = await secured.post(
        "/queues/text-service/lease", json={"max_tasks": 1}, headers=bearer(WORKER)
    )
    task = leased.json()["tasks"][0]
    done = await secured.post(
        f"/tasks/{task['id']}/complete",
        json={"lease_token": task["lease_token"]},
        headers=bearer(WORKER),
    )
    assert done.status_code == 200
    voice = await secured.post(
        "/queues/audio-service/lease", json={"max_tasks": 1}, headers=bearer(ANY_WORKER)
    )
    voice_task = voice.json()["tasks"][0]
    for path, body in [
        ("complete", {"lease_token": voice_task["lease_token"]}),
        ("fail", {"lease_token": voice_task["lease_token"], "error": "x"}),
        ("heartbeat", {"lease_token": voice_task["lease_token"]}),
    ]:
        response = await secured.post(
            f"/tasks/{sid}:voice/{path}", json=body, headers=bearer(WORKER)
        )
        assert response.status_code == 403
    batch = await secured.post(
        "/tasks/complete",
        json={"items": [{"id": f"{sid}:voice", "lease_token": voice_task["lease_token"]}]},
        headers=bearer(WORKER),
    )
    assert batch.status_code == 403


async def test_tokens_never_reach_the_log(
    secured: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await secured.post("/generate", json=SEED_VIDEO, headers=bearer(CLIENT))
    await secured.post("/generate", json=SEED_VIDEO, headers=bearer("wrong-token-xxxxxxxx"))
    assert CLIENT not in caplog.text
    assert "wrong-token" not in caplog.text
