"""`for_each` groups through the HTTP worker protocol, driven by a plain httpx worker (no
SDK): an instance is an ordinary task to a worker. The outline's result decides how many
shots run; a failed shot is tolerated by `cut`'s join; a bad result is a 422 that changes
nothing. Runs on every store (SQLite, Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import make_settings, serve

CATALOG = """
Storyboard:
  params:
    topic: {type: string, required: true}
  tasks:
    - id: outline
      service: text-service
      payload: {topic: "{{ topic }}"}
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
      max_items: 5
      payload: {prompt: "{{ item.prompt }}", n: "{{ index }}", of: "{{ count }}"}
    - id: upscale
      service: image-service
      depends_on: [shot]
      for_each: shot
      payload: {n: "{{ index }}", prompt: "{{ item.prompt }}"}
    - id: cut
      service: video-service
      depends_on: [upscale]
      join: {min_success: 2}
Plain:
  tasks:
    - id: outline
      service: text-service
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
      payload: {prompt: "{{ item }}"}
    - id: cut
      service: video-service
      depends_on: [shot]
Limited:
  tasks:
    - id: outline
      service: text-service
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
      max_parallel: 2
      payload: {prompt: "{{ item }}"}
"""

SERVICES = ("text-service", "image-service", "video-service")


@pytest.fixture
async def client(store_url: str, tmp_path: Path) -> Any:
    catalog = tmp_path / "scenarios.yml"
    catalog.write_text(CATALOG)
    settings = make_settings(store_url, scenarios=catalog)
    async with serve(settings) as c:
        yield c


async def lease(client: httpx.AsyncClient, service: str) -> list[dict[str, Any]]:
    r = await client.post(f"/queues/{service}/lease", json={"max_tasks": 20})
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


async def complete(
    client: httpx.AsyncClient, task: dict[str, Any], result: Any = None
) -> httpx.Response:
    body = {"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}"}
    if result is not None:
        body["result"] = result
    return await client.post(f"/tasks/{task['id']}/complete", json=body)


async def start(client: httpx.AsyncClient, scenario: str, **params: Any) -> str:
    r = await client.post("/generate", json={"scenario": scenario, "params": params})
    assert r.status_code == 201, r.text
    scenario_id: str = r.json()["scenario_id"]
    return scenario_id


async def scenario(client: httpx.AsyncClient, scenario_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/scenarios/{scenario_id}")).json()
    return body


async def outline_done(client: httpx.AsyncClient, shots: Any) -> httpx.Response:
    [outline] = await lease(client, "text-service")
    return await complete(client, outline, {"shots": shots})


async def run_rest(client: httpx.AsyncClient, failing: set[str]) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(10):
        leased = [t for s in SERVICES for t in await lease(client, s)]
        if not leased:
            break
        for task in leased:
            seen[task["name"]] = task
            if task["name"] in failing:
                body = {"lease_token": task["lease_token"], "error": "no GPU", "retryable": False}
                r = await client.post(f"/tasks/{task['id']}/fail", json=body)
            else:
                r = await complete(client, task)
            assert r.status_code == 200, r.text
    return seen


SHOTS = [{"prompt": "dawn"}, {"prompt": "noon"}, {"prompt": "dusk"}]


async def test_three_shots_give_exactly_three_instances_with_the_items_payloads(
    client: httpx.AsyncClient,
) -> None:
    sid = await start(client, "Storyboard", topic="sea")
    before = await scenario(client, sid)
    assert before["progress"]["growing"] is True
    r = await outline_done(client, SHOTS)
    assert r.status_code == 200, r.text
    body = await scenario(client, sid)
    names = sorted(t["name"] for t in body["tasks"])
    assert names == [
        "cut", "outline", "shot_1", "shot_2", "shot_3", "upscale_1", "upscale_2", "upscale_3",
    ]  # fmt: skip
    assert body["progress"]["growing"] is False
    assert body["progress"]["total"] == 8
    shots = await lease(client, "image-service")
    assert {t["name"]: t["payload"] for t in shots} == {
        "shot_1": {"prompt": "dawn", "n": 1, "of": 3},
        "shot_2": {"prompt": "noon", "n": 2, "of": 3},
        "shot_3": {"prompt": "dusk", "n": 3, "of": 3},
    }
    # The zipped group: upscale_i waits for shot_i alone.
    tasks = {t["name"]: t for t in body["tasks"]}
    assert tasks["upscale_2"]["depends_on"] == ["shot_2"]
    upscale = (await client.get(f"/tasks/{sid}:upscale_2")).json()
    assert upscale["payload"] == {"n": 2, "prompt": "noon"}
    assert tasks["cut"]["depends_on"] == ["upscale_1", "upscale_2", "upscale_3"]


async def test_a_failed_instance_is_tolerated_by_the_join(client: httpx.AsyncClient) -> None:
    sid = await start(client, "Storyboard", topic="sea")
    assert (await outline_done(client, SHOTS)).status_code == 200
    seen = await run_rest(client, {"upscale_2"})
    cut = seen["cut"]
    assert [(i["task"], i["status"]) for i in cut["inputs"]] == [
        ("upscale_1", "success"),
        ("upscale_2", "failed"),
        ("upscale_3", "success"),
    ]
    body = await scenario(client, sid)
    assert (body["status"], body["tolerated_failures"]) == ("success", 1)


async def test_two_failed_instances_skip_the_join_and_fail_the_scenario(
    client: httpx.AsyncClient,
) -> None:
    sid = await start(client, "Storyboard", topic="sea")
    assert (await outline_done(client, SHOTS)).status_code == 200
    seen = await run_rest(client, {"shot_1", "upscale_3"})
    assert "cut" not in seen
    body = await scenario(client, sid)
    statuses = {t["name"]: t["status"] for t in body["tasks"]}
    assert (statuses["upscale_1"], statuses["cut"]) == ("skipped", "skipped")
    assert body["status"] == "failed"


async def test_an_empty_list_runs_the_dependent_with_no_inputs(client: httpx.AsyncClient) -> None:
    sid = await start(client, "Plain")
    assert (await outline_done(client, [])).status_code == 200
    [cut] = await lease(client, "video-service")
    assert (cut["name"], cut["inputs"]) == ("cut", [])
    assert (await complete(client, cut)).status_code == 200
    body = await scenario(client, sid)
    assert body["status"] == "success"
    assert sorted(t["name"] for t in body["tasks"]) == ["cut", "outline"]


@pytest.mark.parametrize(
    ("shots", "says"),
    [({"a": 1}, "no list"), ([{"prompt": str(i)} for i in range(6)], "at most 5")],
)
async def test_a_bad_result_is_a_422_naming_the_task_and_changes_nothing(
    client: httpx.AsyncClient, shots: Any, says: str
) -> None:
    sid = await start(client, "Storyboard", topic="sea")
    [outline] = await lease(client, "text-service")
    before = await scenario(client, sid)
    r = await complete(client, outline, {"shots": shots})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert "task 'outline'" in detail
    assert "{{ results.outline.shots }}" in detail
    assert says in detail
    after = await scenario(client, sid)
    assert after["tasks"] == before["tasks"]
    # The worker can fix its result: the same lease still completes.
    assert (await complete(client, outline, {"shots": SHOTS[:2]})).status_code == 200


async def test_a_bad_result_in_a_batch_is_that_items_own_422(client: httpx.AsyncClient) -> None:
    await start(client, "Plain")
    await start(client, "Plain")
    first, second = await lease(client, "text-service")
    items = [
        {"id": first["id"], "lease_token": first["lease_token"], "result": {"shots": 3}},
        {"id": second["id"], "lease_token": second["lease_token"],
         "result": {"shots": ["a", "b"]}},
    ]  # fmt: skip
    r = await client.post("/tasks/complete", json={"items": items})
    assert r.status_code == 200, r.text
    outcomes = r.json()["outcomes"]
    assert (outcomes[0]["ok"], outcomes[0]["problem"]["status"]) == (False, 422)
    assert "task 'outline'" in outcomes[0]["problem"]["detail"]
    assert outcomes[1]["ok"] is True
    shots = await lease(client, "image-service")
    assert sorted(t["payload"]["prompt"] for t in shots) == ["a", "b"]


async def test_max_parallel_holds_back_instances_across_concurrent_workers(
    client: httpx.AsyncClient,
) -> None:
    """Four workers lease concurrently (two tasks at a time each); a sampler watches the
    scenario: never more than 2 shots processing, the rest queued and counted as held."""
    sid = await start(client, "Limited")
    assert (await outline_done(client, [f"p{i}" for i in range(12)])).status_code == 200
    samples: list[int] = []
    held_seen: list[int] = []
    done: list[str] = []

    async def sample() -> None:
        body = await scenario(client, sid)
        samples.append(body["progress"]["by_status"]["processing"])
        queues = (await client.get("/queues")).json()["queues"]
        held_seen.extend(q["held"] for q in queues if q["service"] == "image-service")

    async def worker() -> None:
        for _ in range(40):
            r = await client.post("/queues/image-service/lease", json={"max_tasks": 2})
            leased = r.json()["tasks"]
            await sample()
            await asyncio.sleep(0.005)
            for task in leased:
                assert (await complete(client, task)).status_code == 200
                done.append(task["name"])
            if len(done) == 12:
                return

    await asyncio.gather(*(worker() for _ in range(4)))
    assert sorted(done) == sorted(f"shot_{i}" for i in range(1, 13))
    assert max(samples) == 2
    assert max(held_seen) > 0
    assert (await scenario(client, sid))["status"] == "success"


async def test_a_dry_run_shows_an_unexpanded_group_as_one_dynamic_node(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/generate?dry_run=true", json={"scenario": "Plain"})
    assert r.status_code == 200, r.text
    shot = {t["name"]: t for t in r.json()["tasks"]}["shot"]
    assert (shot["dynamic"], shot["for_each"]) == (True, "{{ results.outline.shots }}")


async def test_a_seed_claim_beyond_max_parallel_is_a_409_that_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    sid = await start(client, "Limited")
    assert (await outline_done(client, ["a", "b", "c"])).status_code == 200
    running = await lease(client, "image-service")
    assert len(running) == 2  # the group's limit
    [waiting] = [f"{sid}:shot_{i}" for i in (1, 2, 3) if f"{sid}:shot_{i}" not in
                 {t["id"] for t in running}]  # fmt: skip
    r = await client.patch(f"/tasks/{waiting}/status", json={"status": "processing"})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert "max_parallel 2" in problem["detail"]
    assert "'shot'" in problem["detail"]
    assert (await client.get(f"/tasks/{waiting}")).json()["status"] == "queued"
    assert (await complete(client, running[0])).status_code == 200
    r = await client.patch(f"/tasks/{waiting}/status", json={"status": "processing"})
    assert r.status_code == 200, r.text
