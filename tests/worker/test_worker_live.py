"""The worker SDK against a real server: heartbeats, graceful stop, stale leases, retries,
burst mode."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from scenarist.worker import (
    Fatal,
    Retryable,
    ScenaristClient,
    TaskResult,
    Worker,
    WorkerStats,
    WorkerTask,
)
from tests.worker.server import LiveServer


class WorkerThread:
    """Runs `worker.run()` in a thread (no signal handlers there) and collects its stats."""

    def __init__(self, worker: Worker, *, burst: bool = False) -> None:
        self.worker = worker
        self.stats: WorkerStats | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(burst,), daemon=True)

    def _run(self, burst: bool) -> None:
        try:
            self.stats = self.worker.run(burst=burst)
        except BaseException as exc:
            self.error = exc

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def join(self, timeout: float = 20.0) -> WorkerStats:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error
        assert self.stats is not None
        return self.stats


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def submit(server: LiveServer, scenario: str, **params: Any) -> str:
    with ScenaristClient(server.url) as client:
        return str(client.submit(scenario, params)["scenario_id"])


def scenario(server: LiveServer, scenario_id: str) -> dict[str, Any]:
    with ScenaristClient(server.url) as client:
        return dict(client.get_scenario(scenario_id))


def task(server: LiveServer, task_id: str) -> dict[str, Any]:
    with ScenaristClient(server.url) as client:
        return dict(client.get_task(task_id))


def test_heartbeats_keep_a_long_task_past_its_lease(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    worker = Worker(live_server.url, lease_seconds=1.0, wait_seconds=0.5)

    @worker.handler("test-service")
    async def slow(job: WorkerTask) -> TaskResult:
        await asyncio.sleep(3.5)  # more than three leases
        return TaskResult("out/slow.txt", {"mime": "text/plain"})

    runner = WorkerThread(worker).start()
    wait_until(lambda: scenario(live_server, scenario_id)["status"] == "success")
    worker.stop()
    stats = runner.join()
    done = task(live_server, f"{scenario_id}:job_1")
    assert done["attempt"] == 1  # never reaped and re-leased
    assert done["result_ref"] == "out/slow.txt"
    assert done["result"] == {"mime": "text/plain"}
    assert (stats.completed, stats.failed, stats.dropped) == (1, 0, 0)


def test_graceful_stop_finishes_in_flight_work_and_leases_no_more(
    live_server: LiveServer,
) -> None:
    scenario_id = submit(live_server, "Jobs", n=3)
    started = threading.Event()
    worker = Worker(live_server.url, concurrency=1, wait_seconds=0.5)

    @worker.handler("test-service")
    def sync_slow(job: WorkerTask) -> str:
        started.set()
        time.sleep(1.0)
        return f"out/{job.name}"

    runner = WorkerThread(worker).start()
    assert started.wait(10)
    worker.stop()
    stats = runner.join()
    assert stats.completed == 1
    statuses = sorted(t["status"] for t in scenario(live_server, scenario_id)["tasks"])
    assert statuses == ["queued", "queued", "success"]


def test_grace_period_over_releases_the_task_for_another_worker(
    live_server: LiveServer,
) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    started = threading.Event()
    worker = Worker(live_server.url, grace_seconds=0.3, wait_seconds=0.5)

    @worker.handler("test-service")
    async def endless(job: WorkerTask) -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    runner = WorkerThread(worker).start()
    assert started.wait(10)
    worker.stop()
    runner.join(timeout=10)
    released = task(live_server, f"{scenario_id}:job_1")
    assert released["status"] == "queued"  # requeued at once, not left to the reaper
    assert "worker stopped" in released["error"]


def test_cancelled_scenario_mid_task_is_dropped_and_the_worker_moves_on(
    live_server: LiveServer,
) -> None:
    first = submit(live_server, "Jobs", n=1, label="first")
    started = threading.Event()
    saw_stop = threading.Event()
    worker = Worker(live_server.url, lease_seconds=1.0, wait_seconds=0.5)

    @worker.handler("test-service")
    def cooperative(job: WorkerTask) -> str:
        if job.payload["label"] == "first":
            started.set()
            deadline = time.monotonic() + 10
            while not job.should_stop and time.monotonic() < deadline:
                time.sleep(0.05)
            if job.should_stop:
                saw_stop.set()
        return f"out/{job.payload['label']}"

    runner = WorkerThread(worker).start()
    assert started.wait(10)
    with ScenaristClient(live_server.url) as client:
        client.cancel(first)
    assert saw_stop.wait(5), "the handler never learned that its lease was lost"
    second = submit(live_server, "Jobs", n=1, label="second")
    wait_until(lambda: scenario(live_server, second)["status"] == "success")
    worker.stop()
    stats = runner.join()
    assert scenario(live_server, first)["status"] == "cancelled"
    assert stats.dropped == 1
    assert stats.completed == 1


def test_a_failure_is_retried_and_then_succeeds(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    attempts: list[int] = []
    worker = Worker(live_server.url, wait_seconds=0.5)

    @worker.handler("test-service")
    def flaky(job: WorkerTask) -> str:
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise Retryable("upstream timed out")
        return "out/ok"

    runner = WorkerThread(worker).start()
    wait_until(lambda: scenario(live_server, scenario_id)["status"] == "success", timeout=20)
    worker.stop()
    stats = runner.join()
    assert attempts == [1, 2]
    assert task(live_server, f"{scenario_id}:job_1")["result_ref"] == "out/ok"
    assert (stats.completed, stats.failed) == (1, 1)


def test_fatal_fails_for_good_with_the_message(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    worker = Worker(live_server.url, wait_seconds=0.5)

    @worker.handler("test-service")
    def broken(job: WorkerTask) -> str:
        raise Fatal("bad payload: no prompt")

    stats = WorkerThread(worker, burst=True).start().join()
    failed = task(live_server, f"{scenario_id}:job_1")
    assert failed["status"] == "failed"
    assert failed["attempt"] == 1
    assert "bad payload: no prompt" in failed["error"]
    assert scenario(live_server, scenario_id)["status"] == "failed"
    assert stats.failed == 1


def test_burst_drains_chained_services_then_exits(live_server: LiveServer) -> None:
    jobs = submit(live_server, "Jobs", n=5)
    chain = submit(live_server, "Chain")
    seen: list[str] = []
    worker = Worker(live_server.url, concurrency=2)

    @worker.handler("test-service")
    @worker.handler("first-service")
    def record(job: WorkerTask) -> str:
        seen.append(job.name)
        return f"out/{job.name}"

    @worker.handler("second-service")
    async def second(job: WorkerTask) -> TaskResult:
        assert [i["result_ref"] for i in job.inputs] == ["out/first"]
        seen.append(job.name)
        return TaskResult("out/second")

    stats = WorkerThread(worker, burst=True).start().join()
    assert stats.completed == 7
    assert sorted(seen) == sorted([f"job_{i}" for i in range(1, 6)] + ["first", "second"])
    assert scenario(live_server, jobs)["status"] == "success"
    assert scenario(live_server, chain)["status"] == "success"


def test_burst_waits_for_a_retry_in_backoff(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    worker = Worker(live_server.url)

    @worker.handler("test-service")
    def flaky(job: WorkerTask) -> str:
        if job.attempt == 1:
            raise RuntimeError("transient")
        return "out/second-try"

    stats = WorkerThread(worker, burst=True).start().join(timeout=30)
    assert scenario(live_server, scenario_id)["status"] == "success"
    assert (stats.completed, stats.failed) == (1, 1)


def test_a_worker_without_handlers_refuses_to_run(live_server: LiveServer) -> None:
    with pytest.raises(ValueError, match="no handlers"):
        Worker(live_server.url).run()
