"""Server-Sent Events for one scenario: every stored event, then the progress, until the
scenario is final.

Each stored event goes out with `id:` = its store event id, so a client that reconnects
with `Last-Event-ID` resumes exactly after the last event it saw. A comment line goes out
after `heartbeat` seconds of silence so proxies keep the connection open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scenarist.api.schemas import ProgressPublic
from scenarist.core.model import Event, Scenario, task_id
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.streams import encode_stream, follow_scenario

# The stream as OpenAPI (before 3.2, which adds `itemSchema`) can describe it: text. A
# JSON-object schema here made generated clients parse the stream as one JSON document.
# Each event's fields go beside it as the `x-event-schema` extension (tests check every
# streamed event against it).
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["status", "progress", "end", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string", "description": "only on `status`: resume after it"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
SSE_STREAM_SCHEMA: dict[str, Any] = {
    "type": "string",
    "description": "Server-Sent Events (text/event-stream): blocks of `event:` (`status`, "
    "`progress`, `end` or `error`), `data:` (one JSON object) and, on `status` events, `id:` "
    "(send it back as Last-Event-ID or ?after= to resume after it), separated by blank lines; "
    "`: heartbeat` comment lines keep idle connections open. `progress` and `end` carry the "
    "scenario's `status`, `progress` and `eta_seconds` (null once it has ended, or while a "
    "service it still needs has no run time to go by).",
    "examples": [
        'event: status\nid: 7\ndata: {"id": "7", "kind": "task", "task": "script", '
        '"status": "success"}\n\n'
    ],
}


def event_data(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "scenario_id": event.scenario_id,
        "kind": "scenario" if event.task is None else "task",
        "task": event.task,
        "task_id": task_id(event.scenario_id, event.task) if event.task else None,
        "status": event.status,
        "attempt": event.attempt,
        "at": event.at,
    }


def progress_data(scenario: Scenario, eta_seconds: float | None) -> dict[str, Any]:
    return {
        "scenario_id": scenario.id,
        "status": scenario.status.value,
        "progress": ProgressPublic.of(scenario.progress).model_dump(),
        "eta_seconds": eta_seconds,
    }


async def scenario_stream(
    orchestrator: Orchestrator,
    scenario_id: str,
    *,
    after: str | None,
    heartbeat: float,
) -> AsyncIterator[bytes]:
    follow = follow_scenario(orchestrator, scenario_id, after=after, heartbeat=heartbeat)
    async for chunk in encode_stream(follow, status_data=event_data, progress_data=progress_data):
        yield chunk
