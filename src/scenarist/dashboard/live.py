"""The scenario page's live feed: Server-Sent Events behind the dashboard's cookie.

The API's `GET /scenarios/{id}/events` wants a bearer header, which an EventSource cannot
send; this stream serves the same store events to a signed-in browser. It sends `status`
(one task or the scenario changed), `progress` (after each batch) and `end` (the scenario
is final; the page then closes the stream instead of reconnecting).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from scenarist.core.errors import ScenaristError
from scenarist.core.model import Event, Scenario
from scenarist.service.orchestrator import Orchestrator

EVENT_BATCH = 500
RETRY_MILLISECONDS = 2000


def sse_message(event: str, data: Any, *, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def status_data(event: Event) -> dict[str, Any]:
    return {"task": event.task, "status": event.status, "attempt": event.attempt}


def progress_data(scenario: Scenario) -> dict[str, Any]:
    return {
        "status": scenario.status.value,
        "finished": scenario.progress.finished,
        "total": scenario.progress.total,
        "percent": scenario.progress.percent,
    }


async def last_event_id(orchestrator: Orchestrator, scenario_id: str) -> str | None:
    """The newest stored event, so the page streams only what happens after it renders."""
    last: str | None = None
    while True:
        events = await orchestrator.read_events(scenario_id, after=last, limit=EVENT_BATCH)
        if not events:
            return last
        last = events[-1].id


async def scenario_feed(
    orchestrator: Orchestrator, scenario_id: str, *, after: str | None, heartbeat: float
) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    last_id, last_sent = after, time.monotonic()
    try:
        while True:
            events = await orchestrator.read_events(scenario_id, after=last_id, limit=EVENT_BATCH)
            for event in events:
                yield sse_message("status", status_data(event), event_id=event.id)
                last_id = event.id
            scenario = await orchestrator.get_scenario(scenario_id)
            if events:
                yield sse_message("progress", progress_data(scenario))
                last_sent = time.monotonic()
                continue  # drain every stored event before deciding the stream is over
            if scenario.status.is_final:
                yield sse_message("end", progress_data(scenario))
                return
            if time.monotonic() - last_sent >= heartbeat:
                yield b": heartbeat\n\n"  # keeps proxies from closing a quiet stream
                last_sent = time.monotonic()
            quiet = time.monotonic() - last_sent
            await orchestrator.store.wait_for_events(scenario_id, max(heartbeat - quiet, 0.05))
    except ScenaristError as exc:  # the store went away, or retention purged the scenario
        yield sse_message("error", {"detail": exc.message, "code": exc.code})
