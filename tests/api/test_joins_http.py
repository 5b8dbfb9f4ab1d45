"""Joins and optional tasks through the HTTP worker protocol, driven by a plain httpx
worker (no SDK): what a worker in any language sees. `for_each` groups: test_groups_http.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import make_settings, serve

CATALOG = """
Storyboard:
  tasks:
    - id: outline
      service: text-service
    - id: shot
      service: image-service
      count: 3
      depends_on: [outline]
      payload: {n: "{{ index }}"}
    - id: cut
      service: video-service
      depends_on: [shot]
      join: {min_success: 2}
    - id: thumbnail
      service: image-service
      depends_on: [outline]
      optional: true
"""


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    catalog = tmp_path / "scenarios.yml"
    catalog.write_text(CATALOG)
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}", scenarios=catalog)
    async with serve(settings) as c:
        yield c


async def lease(client: httpx.AsyncClient, service: str) -> list[dict[str, Any]]:
    r = await client.post(f"/queues/{service}/lease", json={"max_tasks": 10})
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


async def finish(client: httpx.AsyncClient, task: dict[str, Any], *, fail: bool) -> None:
    if fail:
        body = {"lease_token": task["lease_token"], "error": "no GPU", "retryable": False}
        r = await client.post(f"/tasks/{task['id']}/fail", json=body)
    else:
        body = {"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}"}
        r = await client.post(f"/tasks/{task['id']}/complete", json=body)
    assert r.status_code == 200, r.text


async def run(client: httpx.AsyncClient, failing: set[str]) -> dict[str, Any]:
    """Lease every service until nothing is left; fail the tasks named in `failing`."""
    r = await client.post("/generate", json={"scenario": "Storyboard"})
    assert r.status_code == 201, r.text
    scenario_id = r.json()["scenario_id"]
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(10):
        leased = [
            t for s in ("text-service", "image-service", "video-service")
            for t in await lease(client, s)
        ]  # fmt: skip
        if not leased:
            break
        for task in leased:
            seen[task["name"]] = task
            await finish(client, task, fail=task["name"] in failing)
    body: dict[str, Any] = (await client.get(f"/scenarios/{scenario_id}")).json()
    body["leased"] = seen
    return body


async def test_one_failed_shot_still_runs_the_join_and_the_scenario_succeeds(
    client: httpx.AsyncClient,
) -> None:
    body = await run(client, {"shot_2", "thumbnail"})
    cut = body["leased"]["cut"]
    assert [(i["task"], i["status"]) for i in cut["inputs"]] == [
        ("shot_1", "success"),
        ("shot_2", "failed"),
        ("shot_3", "success"),
    ]
    assert cut["inputs"][1]["error"] == "no GPU"
    assert (body["status"], body["tolerated_failures"]) == ("success", 2)


async def test_two_failed_shots_skip_the_join_and_fail_the_scenario(
    client: httpx.AsyncClient,
) -> None:
    body = await run(client, {"shot_1", "shot_2"})
    assert "cut" not in body["leased"]
    statuses = {t["name"]: t["status"] for t in body["tasks"]}
    assert statuses["cut"] == "skipped"
    assert body["status"] == "failed"
