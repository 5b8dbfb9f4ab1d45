"""GET /scenarios/{id}/events: status events with store ids, progress, end, resume."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.api.conftest import drive_to_end, submit


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events as dicts {event, id, data}; comment-only blocks come back as {comment}."""
    parsed: list[dict[str, Any]] = []
    for block in text.strip().split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
            elif field == "data":
                event["data"] = json.loads(value)
            elif field in ("event", "id"):
                event[field] = value
        if event:
            parsed.append(event)
    return parsed


async def test_stream_sends_every_change_and_ends_when_final(
    any_client: httpx.AsyncClient,
) -> None:
    created = await submit(any_client, {"scenario": "CreateSlides", "description": "x"})
    sid = created["scenario_id"]
    # The ASGI test transport hands over the body when the stream ends, so run it aside.
    stream = asyncio.create_task(any_client.get(f"/scenarios/{sid}/events"))
    await asyncio.sleep(1.0)  # 5 heartbeat periods of silence, also on a loaded machine
    await drive_to_end(any_client, sid)
    response = await asyncio.wait_for(stream, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    statuses = [e for e in events if e.get("event") == "status"]
    assert all(e["id"] == e["data"]["id"] for e in statuses)
    ids = [e["id"] for e in statuses]
    assert len(set(ids)) == len(ids)
    finished = {
        e["data"]["task"]
        for e in statuses
        if e["data"]["status"] == "success" and e["data"]["task"]
    }
    assert len(finished) == 6
    assert any(e.get("comment") == "heartbeat" for e in events)
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["status"] == "success"
    assert events[-1]["data"]["progress"]["percent"] == 100.0
    progress = [e for e in events if e.get("event") == "progress"]
    assert progress
    assert progress[-1]["data"]["progress"]["finished"] == 6


async def test_resume_with_last_event_id(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client, {"scenario": "CreateVoice", "description": "x", "count": 2})
    sid = created["scenario_id"]
    await drive_to_end(any_client, sid)
    full = parse_sse((await any_client.get(f"/scenarios/{sid}/events")).text)
    statuses = [e for e in full if e.get("event") == "status"]
    assert len(statuses) >= 3
    middle = statuses[1]["id"]
    resumed = parse_sse(
        (await any_client.get(f"/scenarios/{sid}/events", headers={"Last-Event-ID": middle})).text
    )
    resumed_ids = [e["id"] for e in resumed if e.get("event") == "status"]
    assert resumed_ids == [e["id"] for e in statuses[2:]]
    assert resumed[-1]["event"] == "end"
    via_query = parse_sse(
        (await any_client.get(f"/scenarios/{sid}/events", params={"after": middle})).text
    )
    assert [e["id"] for e in via_query if e.get("event") == "status"] == resumed_ids


async def test_stream_of_a_cancelled_scenario_ends(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    await client.post(f"/scenarios/{created['scenario_id']}/cancel")
    events = parse_sse((await client.get(f"/scenarios/{created['scenario_id']}/events")).text)
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["status"] == "cancelled"
