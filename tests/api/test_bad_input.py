"""Every class of bad input gets a problem+json answer naming the problem, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, submit

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"https://scenarist.dev/problems/{code}"
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/generate",
        content=b'{"scenario": "CreateVideo",',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400, "malformed-json")


async def test_deeply_nested_json_is_rejected_not_crashed(client: httpx.AsyncClient) -> None:
    deep = b'{"scenario":"CreateVoice","description":"x","params":' + b"[" * 50_000 + b"]" * 50_000
    response = await client.post(
        "/generate", content=deep + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM
    nested: Any = {"a": 1}
    for _ in range(40):
        nested = {"a": nested}
    body = {"scenario": "CreateVoice", "params": {"description": "x"}, "deep": nested}
    assert_problem(await client.post("/generate", json=body), 422, "validation-failed")


async def test_wrong_types_name_the_field(client: httpx.AsyncClient) -> None:
    problem = assert_problem(
        await client.post("/generate", json={"scenario": 42}), 422, "validation-failed"
    )
    assert problem["field"] == "scenario"
    problem = assert_problem(
        await client.post("/queues/text-service/lease", json={"max_tasks": "many"}),
        422,
        "validation-failed",
    )
    assert problem["field"] == "max_tasks"
    problem = assert_problem(
        await client.post("/generate", json={**SEED_VIDEO, "slides_count": "three"}),
        422,
        "invalid-param",
    )
    assert problem["field"] == "slides_count"
    problem = assert_problem(
        await client.post("/generate", json=["CreateVideo"]), 422, "validation-failed"
    )


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    huge = {**SEED_VIDEO, "description": "x" * (10 * 1024 * 1024)}
    assert_problem(await client.post("/generate", json=huge), 413, "body-too-large")


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"scenario": "CreateVideo", "description": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post(
        "/generate", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "body-too-large")


async def test_description_over_its_maximum_is_422(client: httpx.AsyncClient) -> None:
    problem = assert_problem(
        await client.post("/generate", json={**SEED_VIDEO, "description": "x" * 5000}),
        422,
        "invalid-param",
    )
    assert problem["field"] == "description"


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/generate", content=b"scenario=CreateVideo", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported-media-type")
    form = await client.post("/generate", data={"scenario": "CreateVideo"})
    assert_problem(form, 415, "unsupported-media-type")


async def test_unknown_scenario_is_404_naming_the_field(client: httpx.AsyncClient) -> None:
    problem = assert_problem(
        await client.post("/generate", json={"scenario": "CreateOpera"}), 404, "unknown-scenario"
    )
    assert problem["field"] == "scenario"
    assert "CreateVideo" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenario": "CreateVideo"}, "description"),
        ({**SEED_VIDEO, "slides_count": 100000}, "slides_count"),
        ({**SEED_VIDEO, "slides_count": 0}, "slides_count"),
        ({**SEED_VIDEO, "colour": "red"}, "colour"),
        ({**SEED_VIDEO, "params": {"description": "dup"}}, "description"),
    ],
)
async def test_bad_params_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.post("/generate", json=body), 422, "invalid-param")
    assert problem["field"] == field


async def test_every_bad_param_is_named_in_one_422(client: httpx.AsyncClient) -> None:
    body = {"scenario": "CreateVideo", "slides_count": 0, "colour": "red"}
    problem = assert_problem(await client.post("/generate", json=body), 422, "invalid-param")
    assert problem["field"] == "colour"
    assert problem["fields"] == ["colour", "description", "slides_count"]
    for name in ("colour", "description", "slides_count"):
        assert repr(name) in problem["detail"]


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    for path, code in [
        ("/scenarios/01NOPE", "scenario-not-found"),
        ("/tasks/01NOPE:script", "task-not-found"),
        (f"/tasks/{created['scenario_id']}:nope", "task-not-found"),
        ("/tasks/no-colon", "task-not-found"),
        ("/scenarios/01NOPE/events", "scenario-not-found"),
    ]:
        assert_problem(await client.get(path), 404, code)
    patch = await client.patch("/tasks/01NOPE:script/status", json={"status": "success"})
    assert_problem(patch, 404, "task-not-found")
    assert_problem(await client.get("/no/such/route"), 404, "not-found")


async def test_oversized_strings_are_422(client: httpx.AsyncClient) -> None:
    await submit(client)
    task_id = "01X:script"
    cases = [
        (f"/tasks/{task_id}/status", {"status": "success", "result_ref": "r" * 5000}),
        (f"/tasks/{task_id}/status", {"status": "failed", "error": "e" * 10000}),
        ("/queues/text-service/lease", {"worker_id": "w" * 500}),
        (f"/tasks/{task_id}/complete", {"lease_token": "t" * 500}),
    ]
    for path, body in cases:
        method = client.patch if path.endswith("/status") else client.post
        assert_problem(await method(path, json=body), 422, "validation-failed")


async def test_out_of_range_worker_numbers_are_422(client: httpx.AsyncClient) -> None:
    for body, field in [
        ({"max_tasks": 0}, "max_tasks"),
        ({"max_tasks": 100_000}, "max_tasks"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"wait_seconds": -1}, "wait_seconds"),
        ({"wait_seconds": 3600}, "wait_seconds"),
    ]:
        response = await client.post("/queues/text-service/lease", json=body)
        assert assert_problem(response, 422, "validation-failed")["field"] == field


async def test_unknown_patch_status_is_422_and_pending_is_409(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    task_id = f"{created['scenario_id']}:script"
    bogus = await client.patch(f"/tasks/{task_id}/status", json={"status": "done"})
    assert assert_problem(bogus, 422, "validation-failed")["field"] == "status"
    backwards = await client.patch(f"/tasks/{task_id}/status", json={"status": "pending"})
    assert assert_problem(backwards, 409, "illegal-transition")["current_status"] == "queued"


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/generate"), 405, "method-not-allowed")


async def test_unknown_query_parameter_is_422_not_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post("/generate?dryrun=true", json=SEED_VIDEO)
    assert assert_problem(response, 422, "validation-failed")["field"] == "dryrun"
    assert (await client.get("/scenarios")).json()["items"] == []
