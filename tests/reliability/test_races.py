"""Races over real HTTP against a server process: duplicate completions, completion vs
lease expiry, cancel vs completion, and a stale token after a re-lease."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import CHAOS, ServerFactory
from tests.reliability.probes import (
    assert_problem,
    count_events,
    lease,
    read_events,
    scenario,
    statuses,
    submit,
    task,
    task_events,
)

pytestmark = [pytest.mark.chaos]

DUPLICATES = 50
RACES = 40 if CHAOS else 10


def completion(leased: dict[str, Any]) -> dict[str, Any]:
    return {"lease_token": leased["lease_token"], "result_ref": f"ref/{leased['name']}"}


async def duplicates(client: httpx.AsyncClient, leased: dict[str, Any]) -> list[httpx.Response]:
    """DUPLICATES identical completions of one task, all in flight together."""
    url = f"/tasks/{leased['id']}/complete"
    return await asyncio.gather(
        *(client.post(url, json=completion(leased)) for _ in range(DUPLICATES))
    )


async def test_duplicate_completions_change_state_once_and_release_once(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    scenario_id = submit(server.url, "Diamond")["scenario_id"]
    limits = httpx.Limits(max_connections=2 * DUPLICATES)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        root = lease(server.url, "test-service")[0]
        batch = {"items": [{"id": root["id"], **completion(root)}]}
        answers = await asyncio.gather(
            *(client.post("/tasks/complete", json=batch) for _ in range(DUPLICATES))
        )
        outcomes = [a.json()["outcomes"][0] for a in answers]
        assert all(o["ok"] for o in outcomes), outcomes
        assert sum(1 for o in outcomes if not o["duplicate"]) == 1

        left_right = lease(server.url, "test-service", max_tasks=10)
        assert sorted(t["name"] for t in left_right) == ["left", "right"]
        both = await asyncio.gather(*(duplicates(client, t) for t in left_right))
        assert {r.status_code for answers in both for r in answers} == {200}

    assert len(lease(server.url, "join-service", max_tasks=10)) == 1
    assert lease(server.url, "join-service", max_tasks=10) == []
    events = await read_events(store_url, scenario_id)
    for name in ("root", "left", "right"):
        assert count_events(events, name, "success") == 1, task_events(events, name)
    for name in ("left", "right", "join"):
        assert count_events(events, name, "queued") == 1, task_events(events, name)


async def test_completion_racing_lease_expiry_has_one_winner(
    start_server: ServerFactory, store_url: str
) -> None:
    """Completions land from just before to just after the lease runs out while the
    reaper (every 0.1 s) expires leases: each task is either completed (200, success, no
    expiry) or expired (409, requeued, no success), never both."""
    server = start_server(store_url)
    scenario_id = submit(server.url, "Jobs", {"n": RACES})["scenario_id"]
    leased = lease(server.url, "test-service", max_tasks=RACES, lease_seconds=1.0)
    expires_at = leased[0]["lease_expires_at"]
    offsets = [-0.15 + 0.4 * i / (RACES - 1) for i in range(RACES)]

    async def complete_at(client: httpx.AsyncClient, one: dict[str, Any], at: float) -> int:
        await asyncio.sleep(max(0.0, at - time.time()))
        response = await client.post(f"/tasks/{one['id']}/complete", json=completion(one))
        if response.status_code != 200:
            assert_problem(response, 409)
        return response.status_code

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        moments = [expires_at + dt for dt in offsets]
        codes = await asyncio.gather(
            *(complete_at(client, t, at) for t, at in zip(leased, moments, strict=True))
        )
    events = await read_events(store_url, scenario_id)
    for one, code in zip(leased, codes, strict=True):
        history = task_events(events, one["name"])
        final = task(server.url, one["id"])
        if code == 200:
            assert final["status"] == "success", final
            assert history == [("processing", 1), ("success", 1)]
        else:
            assert final["status"] == "queued", final
            assert final["error"] == "lease expired"
            assert history == [("processing", 1), ("queued", 1)]


async def test_cancel_racing_completion_leaves_nothing_running(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    for _ in range(RACES):
        submit(server.url, "Diamond")
    roots = lease(server.url, "test-service", max_tasks=RACES)
    assert len(roots) == RACES
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

        async def race(root: dict[str, Any]) -> tuple[int, int]:
            cancel, done = await asyncio.gather(
                client.post(f"/scenarios/{root['scenario_id']}/cancel"),
                client.post(f"/tasks/{root['id']}/complete", json=completion(root)),
            )
            if done.status_code != 200:
                assert_problem(done, 409)
            return cancel.status_code, done.status_code

        outcomes = await asyncio.gather(*(race(r) for r in roots))
    assert {cancel for cancel, _ in outcomes} == {200}
    for root, (_, done) in zip(roots, outcomes, strict=True):
        body = scenario(server.url, root["scenario_id"])
        by_name = statuses(body)
        assert body["status"] == "cancelled"
        assert by_name["root"] == ("success" if done == 200 else "cancelled"), by_name
        assert {by_name[n] for n in ("left", "right", "join")} == {"cancelled"}, by_name
    assert lease(server.url, "test-service", max_tasks=100) == []
    assert lease(server.url, "join-service", max_tasks=100) == []


async def test_stale_token_after_re_lease_is_409_and_changes_nothing(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    submit(server.url, "Jobs", {"n": 1})
    first = lease(server.url, "test-service", lease_seconds=1.0)[0]
    second: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10  # expiry, reaper, then the retry backoff (1-2 s)
    while not second and time.monotonic() < deadline:
        time.sleep(0.1)
        second = lease(server.url, "test-service", lease_seconds=30.0)
    assert second, "the expired task was never leased again"
    current = second[0]
    assert current["id"] == first["id"]
    assert current["attempt"] == 2
    assert current["lease_token"] != first["lease_token"]

    with httpx.Client(base_url=server.url, timeout=30) as client:
        url = f"/tasks/{first['id']}"
        stale = {"lease_token": first["lease_token"]}
        answers = [
            client.post(f"{url}/complete", json={**stale, "result_ref": "ref/stale"}),
            client.post(f"{url}/heartbeat", json=stale),
            client.post(f"{url}/fail", json={**stale, "error": "stale worker"}),
        ]
        for answer in answers:
            assert assert_problem(answer, 409)["current_status"] == "processing"
        unchanged = task(server.url, first["id"])
        assert unchanged["status"] == "processing"
        assert unchanged["attempt"] == 2
        assert unchanged["lease_expires_at"] == current["lease_expires_at"]
        done = client.post(f"{url}/complete", json=completion(current))
        assert done.status_code == 200, done.text
        late = client.post(f"{url}/complete", json={**stale, "result_ref": "ref/stale"})
        assert assert_problem(late, 409)["current_status"] == "success"
    assert task(server.url, first["id"])["result_ref"] == "ref/job_1"
