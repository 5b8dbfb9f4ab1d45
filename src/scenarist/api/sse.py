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
from scenarist.core.sse import HEARTBEAT_COMMENT, encode_retry, encode_sse
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.streams import EventBatch, Silence, StreamEnd, follow_scenario

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
    yield encode_retry()
    async for item in follow_scenario(orchestrator, scenario_id, after=after, heartbeat=heartbeat):
        if isinstance(item, EventBatch):
            for event in item.events:
                yield encode_sse("status", event_data(event), event_id=event.id)
            yield encode_sse("progress", progress_data(item.scenario))
        elif isinstance(item, StreamEnd):
            yield encode_sse("end", progress_data(item.scenario))
        elif isinstance(item, Silence):
            yield HEARTBEAT_COMMENT
        else:
            yield encode_sse("error", {"detail": item.error.message, "code": item.error.code})
