"""What the fault drills ask of a live server, and the invariants they check afterwards.

Every check reads state the way a client would (HTTP), except the event log, which is
read straight from the store: it is the only place that shows *how many* state changes
happened, not just the final state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx

from scenarist.core.model import Event
from scenarist.storage import open_store

PROBLEM_JSON = "application/problem+json"
FINAL_STATUSES = frozenset({"success", "failed", "skipped", "cancelled"})


def submit(url: str, template: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(f"{url}/generate", json={"scenario": template, **(params or {})})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def lease(
    url: str, service: str, *, max_tasks: int = 1, lease_seconds: float = 60.0
) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{url}/queues/{service}/lease",
        json={"max_tasks": max_tasks, "lease_seconds": lease_seconds},
        timeout=30.0,
    )
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def complete(url: str, task: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/tasks/{task['id']}/complete",
        json={"lease_token": task["lease_token"], "result_ref": f"ref/{task['name']}"},
        timeout=30.0,
    )


def scenario(url: str, scenario_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/scenarios/{scenario_id}", timeout=30.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def task(url: str, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/tasks/{task_id}", timeout=30.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def queues(url: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{url}/queues", timeout=30.0)
    assert response.status_code == 200, response.text
    return {q["service"]: q for q in response.json()["queues"]}


def statuses(body: dict[str, Any]) -> dict[str, str]:
    """task name -> status, from a GET /scenarios/{id} body."""
    return {t["name"]: t["status"] for t in body["tasks"]}


def progress_matches_tasks(body: dict[str, Any]) -> list[str]:
    """Problems (empty when none) between a scenario's stored counters and its tasks."""
    counted = Counter(t["status"] for t in body["tasks"])
    progress = body["progress"]
    problems = []
    stored = {s: n for s, n in progress["by_status"].items() if n}
    if stored != dict(counted):
        problems.append(f"progress.by_status {stored} != counted {dict(counted)}")
    finished = sum(n for s, n in counted.items() if s in FINAL_STATUSES)
    if progress["finished"] != finished or progress["total"] != len(body["tasks"]):
        problems.append(
            f"progress {progress['finished']}/{progress['total']} != "
            f"{finished}/{len(body['tasks'])}"
        )
    return problems


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The response is one of `statuses` with an RFC 9457 body."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["type"].startswith("https://"), body
    return body


async def read_events(store_url: str, scenario_id: str) -> list[Event]:
    """The scenario's whole event log, read from the store in this process."""
    store = await open_store(store_url)
    try:
        events: list[Event] = []
        after: str | None = None
        while True:
            page = await store.read_events(scenario_id, after=after, limit=1000)
            events.extend(page)
            if len(page) < 1000:
                return events
            after = page[-1].id
    finally:
        await store.close()


def task_events(events: Iterable[Event], name: str) -> list[tuple[str, int]]:
    """(status, attempt) of one task's events, oldest first."""
    return [(e.status, e.attempt) for e in events if e.task == name]


def count_events(events: Iterable[Event], name: str, status: str) -> int:
    return sum(1 for e in events if e.task == name and e.status == status)
