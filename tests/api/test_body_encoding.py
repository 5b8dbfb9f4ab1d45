"""Bodies that are not UTF-8 text are refused by the body guard, before any endpoint runs:
a raw (CESU-style) surrogate, invalid UTF-8 bytes, and UTF-16/UTF-32 encodings, which
Python's JSON parser would otherwise decode on its own and pass on as unencodable text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, submit
from tests.api.test_bad_input import assert_problem

JSON_HEADERS = {"Content-Type": "application/json"}
RAW_SURROGATE = b"\xed\xa0\x80"  # U+D800 written as if it were a character


def encoded_bodies(text: str) -> list[bytes]:
    return [
        text.encode().replace(b"@", RAW_SURROGATE),
        text.replace("@", "\udc80").encode("utf-16-le", "surrogatepass"),
        text.replace("@", "\ud800").encode("utf-16", "surrogatepass"),
        text.replace("@", "x").encode("utf-16-be"),
        text.replace("@", "x").encode("utf-32"),
        text.encode().replace(b"@", b"\xff"),
    ]


GENERATE = '{"scenario": "CreateVideo", "description": "cats @", "slides_count": 3}'


@pytest.mark.parametrize("body", encoded_bodies(GENERATE))
async def test_generate_refuses_a_body_that_is_not_utf8(
    any_client: httpx.AsyncClient, body: bytes
) -> None:
    response = await any_client.post("/generate", content=body, headers=JSON_HEADERS)
    assert_problem(response, 400, "malformed-json")
    assert (await any_client.get("/scenarios")).json()["items"] == []


@pytest.mark.parametrize("body_index", range(len(encoded_bodies(GENERATE))))
async def test_complete_refuses_a_body_that_is_not_utf8_and_keeps_the_lease(
    any_client: httpx.AsyncClient, body_index: int
) -> None:
    await submit(any_client)
    leased = await any_client.post("/queues/text-service/lease", json={"max_tasks": 1})
    (task,) = leased.json()["tasks"]
    text = json.dumps({"lease_token": task["lease_token"], "result_ref": "out @"})
    response = await any_client.post(
        f"/tasks/{task['id']}/complete",
        content=encoded_bodies(text)[body_index],
        headers=JSON_HEADERS,
    )
    assert_problem(response, 400, "malformed-json")
    stored = (await any_client.get(f"/tasks/{task['id']}")).json()
    assert stored["status"] == "processing"


@pytest.mark.parametrize("body_index", range(len(encoded_bodies(GENERATE))))
async def test_seed_patch_refuses_a_body_that_is_not_utf8_before_claiming(
    any_client: httpx.AsyncClient, body_index: int
) -> None:
    created = await submit(any_client)
    task_id = f"{created['scenario_id']}:script"
    body = encoded_bodies('{"status": "success", "result_ref": "out @"}')[body_index]
    response = await any_client.patch(
        f"/tasks/{task_id}/status", content=body, headers=JSON_HEADERS
    )
    assert_problem(response, 400, "malformed-json")
    stored: dict[str, Any] = (await any_client.get(f"/tasks/{task_id}")).json()
    assert stored["status"] == "queued"
    assert stored["attempt"] == 0
    assert stored["worker_id"] is None


async def test_utf8_text_beyond_ascii_still_passes(client: httpx.AsyncClient) -> None:
    body = {**SEED_VIDEO, "description": "chats \u00e9t\u00e9 \u2603 \U0001f431"}
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    response = await client.post("/generate", content=content, headers=JSON_HEADERS)
    assert response.status_code == 201, response.text
