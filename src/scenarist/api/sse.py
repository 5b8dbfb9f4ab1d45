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

# One event of the stream, as OpenAPI (before 3.2) describes a `text/event-stream` body:
# the `schema` covers each event's fields; `data` is always a JSON object.
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


def progress_data(scenario: Scenario) -> dict[str, Any]:
    return {
        "scenario_id": scenario.id,
        "status": scenario.status.value,
        "progress": ProgressPublic.of(scenario.progress).model_dump(),
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
