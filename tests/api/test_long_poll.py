"""Long-poll leases whose caller leaves, and long polls at shutdown.

The caller is driven at the ASGI level, so the test decides when its receive channel
says `http.disconnect`: a worker killed mid-wait looks exactly like that to the app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from scenarist.api.app import create_app
from scenarist.service.orchestrator import Orchestrator
from tests.api.conftest import SEED_VIDEO, submit
from tests.support.app import make_settings

SERVICE = "text-service"  # CreateVideo's root task `script`
STEP_TIMEOUT = 10.0  # only a safety net: every step below returns as soon as it can


@dataclass
class Served:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def orchestrator(self) -> Orchestrator:
        orchestrator: Orchestrator = self.app.state.services.orchestrator
        return orchestrator


@pytest.fixture
async def served(store_url: str) -> AsyncIterator[Served]:
    app = create_app(make_settings(store_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Served(app, client)


@dataclass
class LeavingCaller:
    """One lease request over ASGI. `asked` is set when the app first looks past the body
    (the long poll checking its caller before it waits); after `leave()` the receive
    channel answers `http.disconnect`."""

    body: bytes
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[dict[str, Any]] = field(default_factory=list)
    body_read: bool = False

    async def receive(self) -> dict[str, Any]:
        if not self.body_read:
            self.body_read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        self.asked.set()
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self.left.set()

    def answer(self) -> tuple[int, Any]:
        status = next(m["status"] for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return status, json.loads(body)


def start_long_poll(app: FastAPI, wait_seconds: float) -> tuple[LeavingCaller, asyncio.Task[None]]:
    body = json.dumps({"max_tasks": 1, "lease_seconds": 60, "wait_seconds": wait_seconds}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/queues/{SERVICE}/lease",
        "raw_path": f"/queues/{SERVICE}/lease".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"t"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("t", 80),
    }
    caller = LeavingCaller(body)
    return caller, asyncio.create_task(app(scope, caller.receive, caller.send))


async def test_a_caller_gone_during_the_wait_gets_no_task_and_the_next_one_does(
    served: Served,
) -> None:
    caller, poll = start_long_poll(served.app, wait_seconds=30)
    await asyncio.wait_for(caller.asked.wait(), STEP_TIMEOUT)
    caller.leave()
    scenario = await submit(served.client, SEED_VIDEO)
    await asyncio.wait_for(poll, STEP_TIMEOUT)
    assert caller.answer() == (200, {"tasks": []})
    script = (await served.client.get(f"/tasks/{scenario['scenario_id']}:script")).json()
    assert (script["status"], script["attempt"], script["worker_id"]) == ("queued", 0, None)
    leased = await served.client.post(f"/queues/{SERVICE}/lease", json={"max_tasks": 1})
    [task] = leased.json()["tasks"]
    assert (task["name"], task["attempt"]) == ("script", 1)


async def test_a_lease_taken_as_the_caller_leaves_is_handed_back(served: Served) -> None:
    submitted: list[dict[str, Any]] = []

    async def caller_gone() -> bool:
        if not submitted:  # before the wait: still there, and a task arrives right now
            submitted.append(await submit(served.client, SEED_VIDEO))
            return False
        return True  # after the lease: gone

    tasks = await served.orchestrator.lease(
        SERVICE, lease_seconds=60, wait_seconds=30, caller_gone=caller_gone
    )
    assert tasks == []
    scenario_id = submitted[0]["scenario_id"]
    script = (await served.client.get(f"/tasks/{scenario_id}:script")).json()
    assert (script["status"], script["attempt"], script["worker_id"]) == ("queued", 0, None)
    events = await served.orchestrator.read_events(scenario_id)
    assert [(e.status, e.attempt) for e in events if e.task == "script"] == [
        ("processing", 1),
        ("queued", 0),
    ]
    [again] = await served.orchestrator.lease(SERVICE, lease_seconds=60)
    assert (again.name, again.attempt) == ("script", 1)


async def test_stop_waiting_answers_waiting_and_new_long_polls_at_once(served: Served) -> None:
    caller, poll = start_long_poll(served.app, wait_seconds=30)
    await asyncio.wait_for(caller.asked.wait(), STEP_TIMEOUT)
    served.orchestrator.stop_waiting()
    await asyncio.wait_for(poll, STEP_TIMEOUT)
    assert caller.answer() == (200, {"tasks": []})
    late = await asyncio.wait_for(
        served.client.post(f"/queues/{SERVICE}/lease", json={"wait_seconds": 30}), STEP_TIMEOUT
    )
    assert late.json() == {"tasks": []}
