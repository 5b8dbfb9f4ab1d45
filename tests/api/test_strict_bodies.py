"""Request bodies are strict: an unknown field is refused (a typo must not fall back to a
default), a value of the wrong JSON type is refused (no bool-as-number, no numeric
strings), every offending field is listed, and nothing changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, submit
from tests.api.test_bad_input import assert_problem


def assert_refused(response: httpx.Response, *fields: str) -> dict[str, Any]:
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["fields"] == list(fields), problem
    assert problem["field"] == fields[0]
    for field in fields:
        assert field in problem["detail"]
    return problem


async def lease_script(client: httpx.AsyncClient) -> dict[str, Any]:
    await submit(client)
    leased = await client.post("/queues/text-service/lease", json={"max_tasks": 1})
    (task,) = leased.json()["tasks"]
    assert isinstance(task, dict)
    return task


async def test_a_misspelled_lease_field_is_refused_and_leases_nothing(
    client: httpx.AsyncClient,
) -> None:
    created = await submit(client)
    response = await client.post("/queues/text-service/lease", json={"lease_second": 5})
    assert_refused(response, "lease_second")
    task = (await client.get(f"/tasks/{created['scenario_id']}:script")).json()
    assert task["status"] == "queued"


async def test_every_unknown_and_mistyped_field_is_listed(client: httpx.AsyncClient) -> None:
    body = {"maxTasks": 2, "lease_second": 5, "wait_seconds": False, "max_tasks": "2"}
    response = await client.post("/queues/text-service/lease", json=body)
    problem = assert_refused(response, "max_tasks", "wait_seconds", "maxTasks", "lease_second")
    assert len(problem["errors"]) == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"wait_seconds": False}, "wait_seconds"),
        ({"wait_seconds": "1"}, "wait_seconds"),
        ({"max_tasks": True}, "max_tasks"),
        ({"max_tasks": "2"}, "max_tasks"),
        ({"max_tasks": 2.0}, "max_tasks"),
        ({"lease_seconds": "60"}, "lease_seconds"),
        ({"worker_id": 7}, "worker_id"),
        ({"maxTasks": 2}, "maxTasks"),
    ],
)
async def test_lease_bodies_are_strictly_typed(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_refused(await client.post("/queues/text-service/lease", json=body), field)


async def test_integral_json_numbers_still_fill_float_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/queues/text-service/lease", json={"max_tasks": 1, "lease_seconds": 30, "wait_seconds": 0}
    )
    assert response.status_code == 200, response.text


async def test_fail_with_a_misspelled_retryable_is_refused_not_requeued(
    client: httpx.AsyncClient,
) -> None:
    task = await lease_script(client)
    body = {"lease_token": task["lease_token"], "error": "boom", "retriable": False}
    assert_refused(await client.post(f"/tasks/{task['id']}/fail", json=body), "retriable")
    stored = (await client.get(f"/tasks/{task['id']}")).json()
    assert stored["status"] == "processing"
    assert stored["attempt"] == 1


@pytest.mark.parametrize(
    ("action", "body", "fields"),
    [
        ("heartbeat", {"lease_seconds": 5, "lease_second": 5}, ["lease_second"]),
        ("complete", {"resultref": "x", "result": []}, ["result", "resultref"]),
        ("fail", {"error": "e", "retryable": "no"}, ["retryable"]),
        ("fail", {"error": "e", "retryable": 0}, ["retryable"]),
    ],
)
async def test_worker_calls_refuse_unknown_and_mistyped_fields(
    client: httpx.AsyncClient, action: str, body: dict[str, Any], fields: list[str]
) -> None:
    task = await lease_script(client)
    response = await client.post(
        f"/tasks/{task['id']}/{action}", json={"lease_token": task["lease_token"], **body}
    )
    assert_refused(response, *fields)
    assert (await client.get(f"/tasks/{task['id']}")).json()["status"] == "processing"


async def test_batch_items_name_the_item_and_field(client: httpx.AsyncClient) -> None:
    task = await lease_script(client)
    item = {"id": task["id"], "lease_token": task["lease_token"]}
    response = await client.post(
        "/tasks/complete", json={"items": [item, {**item, "resultRef": "x"}], "atomic": True}
    )
    assert_refused(response, "items.1.resultRef", "atomic")
    services_lease = await client.post(
        "/queues/lease",
        json={"services": ["text-service"], "complete": [{**item, "ok": True}], "max_task": 1},
    )
    assert_refused(services_lease, "complete.0.ok", "max_task")
    assert (await client.get(f"/tasks/{task['id']}")).json()["status"] == "processing"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"status": "success", "resultRef": "x"}, ["resultRef"]),
        ({"status": "failed", "retryable": "yes"}, ["retryable"]),
        ({"status": "failed", "retryable": 1, "worker": "w"}, ["retryable", "worker"]),
    ],
)
async def test_seed_patch_is_strict_and_claims_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], fields: list[str]
) -> None:
    created = await submit(client)
    task_id = f"{created['scenario_id']}:script"
    assert_refused(await client.patch(f"/tasks/{task_id}/status", json=body), *fields)
    assert (await client.get(f"/tasks/{task_id}")).json()["status"] == "queued"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({**SEED_VIDEO, "params": ["x"]}, ["params"]),
        ({**SEED_VIDEO, "callback_url": 5}, ["callback_url"]),
        ({"scenario": 5, "callback_url": "nope"}, ["scenario", "callback_url"]),
    ],
)
async def test_generate_is_strictly_typed(
    client: httpx.AsyncClient, body: dict[str, Any], fields: list[str]
) -> None:
    assert_refused(await client.post("/generate", json=body), *fields)
    assert (await client.get("/scenarios")).json()["items"] == []


async def test_leasing_a_service_the_catalog_does_not_declare_is_422(
    client: httpx.AsyncClient,
) -> None:
    single = await client.post("/queues/txt-service/lease", json={})
    problem = assert_problem(single, 422, "unknown-service")
    assert problem["field"] == "service"
    assert "txt-service" in problem["detail"]
    assert "text-service" in problem["detail"]  # says which ones exist
    several = await client.post(
        "/queues/lease", json={"services": ["text-service", "audio", "img"]}
    )
    problem = assert_problem(several, 422, "unknown-service")
    assert problem["field"] == "services"
    assert problem["fields"] == ["services.1", "services.2"]
    assert "'audio'" in problem["detail"]
    assert "'img'" in problem["detail"]


async def test_every_unknown_query_parameter_is_listed(client: httpx.AsyncClient) -> None:
    response = await client.post("/generate?verbose=1&dryrun=true", json=SEED_VIDEO)
    problem = assert_problem(response, 422, "validation-failed")
    assert (problem["field"], problem["fields"]) == ("dryrun", ["dryrun", "verbose"])
    assert (await client.get("/scenarios")).json()["items"] == []
