"""A worker SIGKILLed mid-task: its lease lapses, the reaper requeues the task, another
worker finishes it (attempt 2). A cancelled scenario's tasks are never leased again."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import ServerFactory
from tests.reliability.probes import (
    assert_problem,
    complete,
    lease,
    read_events,
    scenario,
    statuses,
    submit,
    task,
    task_events,
)
from tests.reliability.worker_process import (
    kill_process,
    spawn_worker,
    stop_process,
    wait_for_marker,
)

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


def wait_for_status(url: str, scenario_id: str, wanted: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body = scenario(url, scenario_id)
    while body["status"] != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        body = scenario(url, scenario_id)
    assert body["status"] == wanted, body
    return body


async def test_killed_worker_task_is_retried_by_another_worker(
    start_server: ServerFactory, store_url: str, tmp_path: Path
) -> None:
    server = start_server(store_url)
    scenario_id = submit(server.url, "Jobs", {"n": 1})["scenario_id"]
    doomed = spawn_worker(tmp_path / "doomed", "block", server.url, "test-service")
    try:
        wait_for_marker(tmp_path / "doomed", "started-job_1-1", timeout=15)
        # Heartbeats kept the 1 s lease alive so far; SIGKILL stops them mid-task.
        kill_process(doomed)
        assert task(server.url, f"{scenario_id}:job_1")["status"] == "processing"
        rescuer = spawn_worker(tmp_path / "rescuer", "finish", server.url, "test-service")
        try:
            wait_for_status(server.url, scenario_id, "success", timeout=15)
        finally:
            stop_process(rescuer)
    finally:
        kill_process(doomed)

    finished = task(server.url, f"{scenario_id}:job_1")
    assert finished["attempt"] == 2
    assert finished["result"] == {"attempt": 2}
    assert (tmp_path / "rescuer" / "done-job_1-2").exists()
    assert not list((tmp_path / "rescuer").glob("done-job_1-1"))
    events = task_events(await read_events(store_url, scenario_id), "job_1")
    assert events == [("processing", 1), ("queued", 1), ("processing", 2), ("success", 2)]


async def test_no_task_of_a_cancelled_scenario_runs_or_completes(
    start_server: ServerFactory, store_url: str, tmp_path: Path
) -> None:
    server = start_server(store_url)
    scenario_id = submit(server.url, "Jobs", {"n": 3})["scenario_id"]
    held_by_us = lease(server.url, "test-service", lease_seconds=30)[0]
    doomed = spawn_worker(tmp_path / "doomed", "block", server.url, "test-service")
    try:
        wait_for_marker(tmp_path / "doomed", "started-*", timeout=15)
        kill_process(doomed)
        response = httpx.post(f"{server.url}/scenarios/{scenario_id}/cancel")
        assert response.status_code == 200, response.text
        # The dead worker's lease lapses after cancellation: the reaper must not requeue.
        time.sleep(2.0)
        late = complete(server.url, held_by_us)
        assert assert_problem(late, 409)["current_status"] == "cancelled"
        heartbeat = httpx.post(
            f"{server.url}/tasks/{held_by_us['id']}/heartbeat",
            json={"lease_token": held_by_us["lease_token"]},
        )
        assert_problem(heartbeat, 409)
        survivor = spawn_worker(tmp_path / "survivor", "finish", server.url, "test-service")
        time.sleep(1.5)  # it long-polls twice meanwhile; nothing may be handed out
        stop_process(survivor)
    finally:
        kill_process(doomed)

    assert not list((tmp_path / "survivor").glob("done-*"))
    assert lease(server.url, "test-service", max_tasks=10) == []
    body = scenario(server.url, scenario_id)
    assert body["status"] == "cancelled"
    assert set(statuses(body).values()) == {"cancelled"}
    events = await read_events(store_url, scenario_id)
    cancelled_at = next(i for i, e in enumerate(events) if e.status == "cancelled")
    after_cancel = {e.status for e in events[cancelled_at:]}
    assert after_cancel <= {"cancelled"}, after_cancel
