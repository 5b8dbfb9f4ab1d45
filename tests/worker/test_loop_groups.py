"""The worker's rounds against a scripted server: services grouped by lease length, and
results kept when the lease call carrying them does not get through."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from scenarist.worker import Worker, WorkerTask
from scenarist.worker.loop import HandlerSpec, LeaseGroup, lease_groups
from scenarist.worker.support import Backoff


def leased_task(service: str, name: str) -> dict[str, Any]:
    return {
        "id": f"sc:{name}",
        "scenario_id": "sc",
        "name": name,
        "service": service,
        "payload": {},
        "inputs": [],
        "attempt": 1,
        "lease_token": f"tok-{name}",
        "lease_expires_at": 2e9,
    }


class ScriptedServer:
    """Hands out `tasks` once, to the first lease call over their service. The lease
    calls listed in `unreachable` (1-based) fail as if the connection dropped after the
    server applied their results. Outcomes of repeated results read as duplicates."""

    def __init__(self, tasks: list[dict[str, Any]], unreachable: tuple[int, ...] = ()) -> None:
        self.waiting = list(tasks)
        self.unreachable = unreachable
        self.leases: list[dict[str, Any]] = []
        self.applied: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        if request.url.path == "/queues/lease":
            self.leases.append(body)
            outcomes = self.apply(body["complete"])
            if len(self.leases) in self.unreachable:
                raise httpx.ReadError("connection reset", request=request)
            tasks = [t for t in self.waiting if t["service"] in body["services"]]
            tasks = tasks[: body["max_tasks"]]
            self.waiting = [t for t in self.waiting if t not in tasks]
            return httpx.Response(200, json={"tasks": tasks, "outcomes": outcomes})
        if request.url.path == "/tasks/complete":
            return httpx.Response(200, json={"outcomes": self.apply(body["items"])})
        if request.url.path == "/queues":
            return httpx.Response(200, json={"queues": []})
        return httpx.Response(404, json={"detail": f"no route {request.url.path}"})

    def apply(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        outcomes = []
        for item in items:
            outcomes.append({"id": item["id"], "ok": True, "duplicate": item["id"] in self.applied})
            self.applied.append(item["id"])
        return outcomes


def test_services_are_grouped_by_lease_length_in_registration_order() -> None:
    def spec(service: str, lease: float) -> HandlerSpec:
        return HandlerSpec(service, lambda job: None, lease)

    groups = lease_groups([spec("a", 60.0), spec("b", 5.0), spec("c", 60.0)])
    assert groups == [LeaseGroup(("a", "c"), 60.0), LeaseGroup(("b",), 5.0)]


def test_each_lease_length_gets_one_lease_call_for_its_services() -> None:
    server = ScriptedServer([leased_task("slow", "s1"), leased_task("quick", "q1")])
    transport = httpx.MockTransport(server)
    worker = Worker("http://test", wait_seconds=0, lease_seconds=60.0, transport=transport)
    for service in ("quick", "other"):
        worker.add_handler(service, lambda job: f"out/{job.name}")
    worker.add_handler("slow", lambda job: f"out/{job.name}", lease_seconds=300.0)

    stats = worker.run(burst=True, install_signal_handlers=False)
    assert stats.completed == 2
    calls = {(tuple(body["services"]), body["lease_seconds"]) for body in server.leases}
    assert calls == {(("quick", "other"), 60.0), (("slow",), 300.0)}
    assert sorted(server.applied) == ["sc:q1", "sc:s1"]


def test_results_of_a_lease_call_that_did_not_get_through_go_with_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Backoff, "next_delay", lambda self: 0.01)
    server = ScriptedServer([leased_task("svc", "t1"), leased_task("svc", "t2")], (2,))
    transport = httpx.MockTransport(server)
    worker = Worker("http://test", concurrency=1, wait_seconds=0, transport=transport)
    seen: list[str] = []

    @worker.handler("svc")
    def handle(job: WorkerTask) -> str:
        seen.append(job.name)
        return f"out/{job.name}"

    stats = worker.run(burst=True, install_signal_handlers=False)
    assert sorted(seen) == ["t1", "t2"]
    assert [item["id"] for item in server.leases[1]["complete"]] == ["sc:t1"]  # answer lost
    assert sorted(server.applied) == ["sc:t1", "sc:t1", "sc:t2"]  # so t1 went again
    assert (stats.completed, stats.failed, stats.dropped) == (2, 0, 0)
