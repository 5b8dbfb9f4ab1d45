"""The worker's rounds against a real server: one lease call over every service carries
the results finished since the last one; results never wait long, are never lost at stop,
and each gets the verdict a single completion would."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarist.worker import ScenaristClient, TaskResult, Worker, WorkerTask, reporting
from tests.worker.server import LiveServer
from tests.worker.test_worker_live import WorkerThread, scenario, submit, task, wait_until

SERVICES = ("a-service", "b-service", "c-service", "d-service")
FOUR_SERVICES_CATALOG = "defaults: {max_attempts: 3, timeout_seconds: 30}\n\nFan:\n" + (
    "  params:\n    n: {type: integer, default: 1, minimum: 1, maximum: 20}\n  tasks:\n"
    + "".join(
        f'    - id: {s[0]}\n      service: {s}\n      count: "{{{{ n }}}}"\n'
        f'      payload: {{index: "{{{{ index }}}}"}}\n'
        for s in SERVICES
    )
)


class RecordingTransport(httpx.AsyncHTTPTransport):
    """Forwards to the server and records each request's path and JSON body. With
    `hold_reports`, a lease call carrying results reaches the server but its answer never
    comes back (as if the worker were stopped while waiting for it)."""

    def __init__(self, *, hold_reports: bool = False) -> None:
        super().__init__()
        self.requests: list[tuple[str, Any]] = []
        self.hold_reports = hold_reports
        self.held = threading.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.url.path, body))
        response = await super().handle_async_request(request)
        if self.hold_reports and request.url.path == "/queues/lease" and body["complete"]:
            await response.aread()
            await response.aclose()
            self.held.set()
            await asyncio.Event().wait()  # until the worker gives up on this call
        return response

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def reported_by(self, path: str) -> list[str]:
        """Task ids whose results went out on requests to `path`."""
        key = "complete" if path == "/queues/lease" else "items"
        return [item["id"] for p, body in self.requests if p == path for item in body[key]]


@pytest.fixture
def four_services(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(workdir=tmp_path / "server", catalog=FOUR_SERVICES_CATALOG).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def results_wait_for_a_lease_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """No flush timer can beat the lease call, so where a result goes is deterministic."""
    monkeypatch.setattr(reporting, "PIGGYBACK_WAIT_SECONDS", 30.0)


def test_four_services_share_one_lease_call_that_carries_the_results(
    four_services: LiveServer,
) -> None:
    scenario_id = submit(four_services, "Fan", n=5)
    transport = RecordingTransport()
    worker = Worker(four_services.url, concurrency=20, transport=transport)
    for service in SERVICES:
        worker.add_handler(service, lambda job: f"out/{job.name}")

    stats = WorkerThread(worker, burst=True).start().join()
    assert stats.completed == 20
    assert scenario(four_services, scenario_id)["status"] == "success"
    leases = [body for path, body in transport.requests if path == "/queues/lease"]
    assert all(sorted(body["services"]) == sorted(SERVICES) for body in leases)
    assert set(transport.paths()) <= {"/queues/lease", "/tasks/complete", "/queues"}
    reported = transport.reported_by("/queues/lease") + transport.reported_by("/tasks/complete")
    assert sorted(reported) == sorted(
        t["id"] for t in scenario(four_services, scenario_id)["tasks"]
    )
    # one poll per service and one request per result would be 24 or more
    assert len(transport.requests) <= 10


@pytest.mark.usefixtures("results_wait_for_a_lease_call")
def test_a_result_rides_on_the_lease_call_that_brings_the_next_task(
    live_server: LiveServer,
) -> None:
    scenario_id = submit(live_server, "Chain")
    transport = RecordingTransport()
    worker = Worker(live_server.url, concurrency=1, transport=transport)
    worker.add_handler("first-service", lambda job: TaskResult("out/first", {"n": 1}))
    worker.add_handler("second-service", lambda job: f"out/{job.inputs[0]['result_ref']}")

    stats = WorkerThread(worker, burst=True).start().join()
    assert (stats.completed, stats.failed, stats.dropped) == (2, 0, 0)
    first, second = f"{scenario_id}:first", f"{scenario_id}:second"
    assert transport.reported_by("/queues/lease") == [first, second]
    assert "/tasks/complete" not in transport.paths()
    assert task(live_server, first)["result"] == {"n": 1}
    assert task(live_server, second)["result_ref"] == "out/out/first"


def test_a_result_does_not_wait_for_a_long_poll_in_flight(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    transport = RecordingTransport()
    worker = Worker(live_server.url, concurrency=2, wait_seconds=20.0, transport=transport)

    @worker.handler("test-service")
    async def quick(job: WorkerTask) -> str:
        await asyncio.sleep(0.3)  # the free slot's long poll is in flight by now
        return "out/quick"

    runner = WorkerThread(worker).start()
    started = time.monotonic()
    wait_until(lambda: scenario(live_server, scenario_id)["status"] == "success", timeout=10)
    assert time.monotonic() - started < 5.0
    worker.stop()
    stats = runner.join()
    assert stats.completed == 1
    assert transport.reported_by("/tasks/complete") == [f"{scenario_id}:job_1"]


def test_stop_while_a_lease_call_carries_a_result_sends_it_again(
    live_server: LiveServer,
) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    transport = RecordingTransport(hold_reports=True)
    worker = Worker(live_server.url, concurrency=1, wait_seconds=0.5, transport=transport)
    worker.add_handler("test-service", lambda job: f"out/{job.name}")

    runner = WorkerThread(worker).start()
    assert transport.held.wait(10), "no lease call carried a result"
    worker.stop()
    stats = runner.join()
    carried = transport.reported_by("/queues/lease")
    assert len(carried) == 1
    assert transport.reported_by("/tasks/complete") == carried  # sent again at stop
    assert stats.completed == 1  # the repeat reads as a duplicate, counted once
    assert carried == [f"{scenario_id}:job_1"]
    assert scenario(live_server, scenario_id)["status"] == "success"


@pytest.mark.usefixtures("results_wait_for_a_lease_call")
def test_a_refused_result_on_a_lease_call_counts_as_dropped(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    started, go_on = threading.Event(), threading.Event()
    transport = RecordingTransport()
    worker = Worker(live_server.url, concurrency=1, wait_seconds=0.5, transport=transport)

    @worker.handler("test-service")
    def late(job: WorkerTask) -> str:
        started.set()
        go_on.wait(10)
        return "out/late"

    runner = WorkerThread(worker).start()
    assert started.wait(10)
    with ScenaristClient(live_server.url) as client:
        client.cancel(scenario_id)
    go_on.set()
    wait_until(lambda: bool(transport.reported_by("/queues/lease")))
    worker.stop()
    stats = runner.join()
    assert transport.reported_by("/queues/lease") == [f"{scenario_id}:job_1"]
    assert (stats.completed, stats.dropped) == (0, 1)
    assert scenario(live_server, scenario_id)["status"] == "cancelled"


def test_a_result_the_server_rejects_fails_its_task_and_leasing_goes_on(
    live_server: LiveServer,
) -> None:
    bad = submit(live_server, "Jobs", n=1, label="bad")
    good = submit(live_server, "Jobs", n=1, label="good")
    worker = Worker(live_server.url, concurrency=1)

    @worker.handler("test-service")
    def answer(job: WorkerTask) -> str:
        return "x" * 5000 if job.payload["label"] == "bad" else "out/good"

    stats = WorkerThread(worker, burst=True).start().join()
    failed = task(live_server, f"{bad}:job_1")
    assert failed["status"] == "failed"
    assert "server rejected result" in failed["error"]
    assert task(live_server, f"{good}:job_1")["result_ref"] == "out/good"
    assert (stats.completed, stats.failed) == (1, 1)
