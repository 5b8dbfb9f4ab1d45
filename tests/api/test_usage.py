"""Usage over HTTP: reported with complete (single, batch, seed PATCH) and fail, summed on
the task, in the scenario body, by GET /usage and in /metrics, on every store; bad reports
are 422s naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import submit
from tests.api.test_bad_input import assert_problem
from tests.api.test_metrics import scrape

SERVICES = ("text-service", "audio-service", "image-service", "video-service")


async def lease_one(client: httpx.AsyncClient, service: str) -> dict[str, Any]:
    response = await client.post(f"/queues/{service}/lease", json={"max_tasks": 1})
    assert response.status_code == 200, response.text
    [task] = response.json()["tasks"]
    return dict(task)


async def test_usage_adds_up_across_retries_and_every_way_to_finish(
    any_client: httpx.AsyncClient,
) -> None:
    client = any_client
    scenario_id = (await submit(client))["scenario_id"]
    # The script fails once (retryable, with usage), then completes.
    script = await lease_one(client, "text-service")
    failed = await client.post(
        f"/tasks/{script['id']}/fail",
        json={"lease_token": script["lease_token"], "error": "oom", "usage": {"tokens": 100}},
    )
    assert failed.status_code == 200, failed.text
    assert failed.json()["usage"] == {"tokens": 100.0}
    await client.patch(f"/tasks/{script['id']}/status", json={"status": "success",
                                                             "usage": {"tokens": 12}})  # fmt: skip
    # The voice completes with a report; a repeat of it counts nothing.
    voice = await lease_one(client, "audio-service")
    body = {"lease_token": voice["lease_token"], "usage": {"cpu_seconds": 0.1, "cost_usd": 0.2}}
    first = await client.post(f"/tasks/{voice['id']}/complete", json=body)
    again = await client.post(f"/tasks/{voice['id']}/complete", json=body)
    assert again.json()["duplicate"] is True
    assert first.json()["usage"] == again.json()["usage"] == {"cpu_seconds": 0.1, "cost_usd": 0.2}
    # The slide prompts complete as one batch, each reporting.
    leased = await client.post("/queues/text-service/lease", json={"max_tasks": 10})
    items = [
        {"id": t["id"], "lease_token": t["lease_token"], "usage": {"cpu_seconds": 0.2}}
        for t in leased.json()["tasks"]
    ]
    assert len(items) == 3
    batch = await client.post("/tasks/complete", json={"items": items})
    assert all(o["ok"] and o["task"]["usage"] == {"cpu_seconds": 0.2}
               for o in batch.json()["outcomes"])  # fmt: skip

    task = (await client.get(f"/tasks/{script['id']}")).json()
    assert task["usage"] == {"tokens": 112.0}
    scenario = (await client.get(f"/scenarios/{scenario_id}")).json()
    expected = {"tokens": 112.0, "cpu_seconds": 0.1 + 0.2 + 0.2 + 0.2, "cost_usd": 0.2}
    assert scenario["usage"] == expected
    by_task = {t["name"]: t["usage"] for t in scenario["tasks"]}
    assert by_task["video"] == {}

    by_service = (await client.get("/usage", params={"group_by": "service"})).json()
    assert {g["key"]: g["usage"] for g in by_service["groups"]} == {
        "audio-service": {"cpu_seconds": 0.1, "cost_usd": 0.2},
        "text-service": {"tokens": 112.0, "cpu_seconds": 0.2 + 0.2 + 0.2},
    }
    by_template = (await client.get("/usage", params={"group_by": "template"})).json()
    assert [g["key"] for g in by_template["groups"]] == ["CreateVideo"]
    by_tenant = (await client.get("/usage", params={"group_by": "tenant"})).json()
    assert [g["key"] for g in by_tenant["groups"]] == ["default"]
    assert by_tenant["total"] == by_template["total"]
    assert by_tenant["total"]["tokens"] == 112.0
    future = (await client.get("/usage", params={"since": 4_000_000_000})).json()
    assert (future["groups"], future["total"]) == ([], {})

    samples = await scrape(client)
    usage_series = {
        (dict(labels)["name"], dict(labels)["service"]): v
        for (sample, labels), v in samples.items()
        if sample == "scenarist_usage_total"
    }
    assert usage_series == {
        ("tokens", "text-service"): 112.0,
        ("cpu_seconds", "text-service"): pytest.approx(0.6),
        ("cpu_seconds", "audio-service"): pytest.approx(0.1),
        ("cost_usd", "audio-service"): pytest.approx(0.2),
    }


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"tokens": -1}, "usage.tokens"),
        ({"tokens": "12"}, "usage.tokens"),
        ({"tokens": True}, "usage.tokens"),
        ({"tokens": 1e16}, "usage.tokens"),
        ({"Bad Name": 1}, "usage"),
        ({f"n{i}": 1 for i in range(17)}, "usage"),
        ([1, 2], "usage"),
    ],
)
async def test_a_bad_report_is_422_naming_the_field(
    client: httpx.AsyncClient, usage: Any, field: str
) -> None:
    scenario_id = (await submit(client))["scenario_id"]
    task = await lease_one(client, "text-service")
    for path, body in [
        (f"/tasks/{task['id']}/complete", {"lease_token": task["lease_token"], "usage": usage}),
        (f"/tasks/{task['id']}/fail", {"lease_token": "t", "error": "x", "usage": usage}),
        ("/tasks/complete", {"items": [{"id": task["id"], "lease_token": "t", "usage": usage}]}),
    ]:
        problem = assert_problem(await client.post(path, json=body), 422, "validation-failed")
        assert field in problem["field"], (path, problem)
    patch = await client.patch(f"/tasks/{task['id']}/status", json={"status": "success",
                                                                   "usage": usage})  # fmt: skip
    assert field in assert_problem(patch, 422, "validation-failed")["field"]
    scenario = (await client.get(f"/scenarios/{scenario_id}")).json()
    assert scenario["usage"] == {}


async def test_bad_usage_queries_are_422(client: httpx.AsyncClient) -> None:
    for params, field in [({"group_by": "colour"}, "group_by"), ({"since": "-5"}, "since")]:
        response = await client.get("/usage", params=params)
        assert assert_problem(response, 422, "validation-failed")["field"] == field
