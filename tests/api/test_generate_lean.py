"""POST /generate's lean handler (decision 74) answers every request exactly as FastAPI's
own handler for the route does: each request below is sent with the lean handler on, then
with it off (its body check made to decline, so FastAPI's handler takes every request),
and the answers must be equal (ids apart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from scenarist.api.routers import generate
from scenarist.api.schemas import GenerateCreate
from tests.api.conftest import SEED_VIDEO, make_settings, serve

CLIENT = "client-token-0123456789"
WORKER = "worker-token-0123456789"
TOKENS = [{"token": CLIENT, "role": "client"}, {"token": WORKER, "role": "worker"}]
AUTH = {"Authorization": f"Bearer {CLIENT}"}
JSON = {"Content-Type": "application/json"}
SEED = orjson.dumps(SEED_VIDEO)

PLAIN = {**AUTH, **JSON}


def video(extra: str) -> bytes:
    """A CreateVideo body with `extra` JSON members (raw text: some are not valid JSON)."""
    return b'{"scenario": "CreateVideo", "description": "x", ' + extra.encode() + b"}"


# (what the request is, query string, headers, raw body)
REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("the seed body", "", PLAIN, SEED),
    ("a charset", "", {**AUTH, "Content-Type": "application/json; charset=utf-8"}, SEED),
    ("a key of 200 characters", "", {**PLAIN, "Idempotency-Key": "k" * 200}, SEED),
    ("a key of 201 characters", "", {**PLAIN, "Idempotency-Key": "k" * 201}, SEED),
    ("an empty key", "", {**PLAIN, "Idempotency-Key": ""}, SEED),
    ("a traceparent with tracing off", "", {**PLAIN, "traceparent": "not-one"}, SEED),
    (
        "params under params",
        "",
        PLAIN,
        b'{"scenario": "CreateVideo", "params": {"description": "x"}}',
    ),
    ("a parameter given twice", "", PLAIN, video('"params": {"description": "y"}')),
    ("an unknown scenario", "", PLAIN, b'{"scenario": "NoSuchThing"}'),
    ("a parameter of the wrong type", "", PLAIN, video('"slides_count": "many"')),
    ("an unknown parameter", "", PLAIN, video('"colour": "red"')),
    ("no scenario", "", PLAIN, b'{"description": "x"}'),
    ("a scenario name too long", "", PLAIN, orjson.dumps({"scenario": "S" * 201})),
    ("a number for the scenario", "", PLAIN, b'{"scenario": 7}'),
    ("NaN", "", PLAIN, video('"slides_count": NaN')),
    ("an integer past 64 bits", "", PLAIN, video('"n": 123456789012345678901234567890')),
    ("a list body", "", PLAIN, b"[1, 2]"),
    ("a string body", "", PLAIN, b'"CreateVideo"'),
    ("malformed JSON", "", PLAIN, b'{"scenario": '),
    ("an empty body", "", PLAIN, b""),
    ("a text body", "", {**AUTH, "Content-Type": "text/plain"}, SEED),
    ("no content type", "", AUTH, SEED),
    ("a callback URL that is no URL", "", PLAIN, video('"callback_url": "nope"')),
    ("a private callback URL", "", PLAIN, video('"callback_url": "http://10.0.0.1/hook"')),
    ("the interactive lane", "", PLAIN, video('"priority": "interactive"')),
    ("an unknown lane", "", PLAIN, video('"priority": "urgent"')),
    ("no token", "", JSON, SEED),
    ("no token and a bad body", "", JSON, b'{"scenario": 7}'),
    ("a worker's token", "", {"Authorization": f"Bearer {WORKER}", **JSON}, SEED),
    ("a dry run", "dry_run=true", PLAIN, SEED),
    ("a bad dry_run", "dry_run=perhaps", PLAIN, SEED),
    ("an unknown query parameter", "colour=red", PLAIN, SEED),
]


@pytest.fixture
async def secured(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(sqlite_url, tokens=TOKENS)) as client:
        yield client


def comparable(response: httpx.Response) -> tuple[int, Any, str | None]:
    """Status, body and replay header, with the per-submission ids taken out."""
    body: Any = response.json() if response.content else None
    if isinstance(body, dict) and "scenario_id" in body:
        sid = body.pop("scenario_id")
        for task in body["tasks"]:
            assert task.pop("id").startswith(f"{sid}:")
    return response.status_code, body, response.headers.get("Idempotent-Replayed")


async def answer(
    client: httpx.AsyncClient, query: str, headers: dict[str, str], raw: bytes
) -> httpx.Response:
    url = f"/generate?{query}" if query else "/generate"
    return await client.post(url, content=raw, headers=headers)


async def answers(store: str) -> list[httpx.Response]:
    """Every request of the table, in order, to a fresh app on `store`."""
    async with serve(make_settings(store, tokens=TOKENS)) as client:
        return [await answer(client, q, h, raw) for _, q, h, raw in REQUESTS]


async def test_both_handlers_answer_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lean = await answers(f"sqlite:///{tmp_path / 'lean.db'}")
    monkeypatch.setattr(generate, "parse_body", lambda _type, _raw: None)
    standard = await answers(f"sqlite:///{tmp_path / 'standard.db'}")
    for (name, *_), one, other in zip(REQUESTS, lean, standard, strict=True):
        assert comparable(one) == comparable(other), name
    statuses = {name: r.status_code for (name, *_), r in zip(REQUESTS, lean, strict=True)}
    # The table reaches every kind of answer the route gives.
    assert set(statuses.values()) >= {200, 201, 400, 401, 403, 404, 415, 422}, statuses
    assert statuses["a key of 200 characters"] == 201
    assert statuses["a key of 201 characters"] == 422


async def test_a_replay_answers_alike(
    secured: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {**AUTH, **JSON, "Idempotency-Key": "lean-replay"}
    first = await answer(secured, "", headers, SEED)
    lean = await answer(secured, "", headers, SEED)
    monkeypatch.setattr(generate, "parse_body", lambda _type, _raw: None)
    standard = await answer(secured, "", headers, SEED)
    assert first.status_code == 201
    assert lean.status_code == standard.status_code == 200
    assert lean.content == standard.content
    assert lean.json()["scenario_id"] == first.json()["scenario_id"]
    other_request = await answer(secured, "", headers, b'{"scenario": "CreateVoice"}')
    assert other_request.status_code == 422


async def test_the_lean_handler_takes_only_the_plain_request(
    secured: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which requests the lean handler answered itself (its body check gave a model)."""
    taken: list[bool] = []
    check = generate.parse_body

    def spy(content_type: str, raw: bytes) -> GenerateCreate | None:
        body = check(content_type, raw)
        taken.append(body is not None)
        return body

    monkeypatch.setattr(generate, "parse_body", spy)
    assert (await answer(secured, "", PLAIN, SEED)).status_code == 201
    assert taken == [True]
    assert (await answer(secured, "", PLAIN, b'{"scenario": 7}')).status_code == 422
    assert taken == [True, False]
    # A query string or an out-of-bounds key never reaches the body check.
    assert (await answer(secured, "dry_run=true", PLAIN, SEED)).status_code == 200
    key = {**AUTH, **JSON, "Idempotency-Key": ""}
    assert (await answer(secured, "", key, SEED)).status_code == 422
    assert taken == [True, False]
