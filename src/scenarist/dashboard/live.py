"""The scenario page's live feed: Server-Sent Events behind the dashboard's cookie.

The API's `GET /scenarios/{id}/events` wants a bearer header, which an EventSource cannot
send; this stream serves the same store events to a signed-in browser. It sends `status`
(one task or the scenario changed), `progress` (after each batch) and `end` (the scenario
is final; the page then closes the stream instead of reconnecting).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scenarist.core.model import Event, Scenario
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.streams import encode_stream, follow_scenario


def status_data(event: Event) -> dict[str, Any]:
    return {"task": event.task, "status": event.status, "attempt": event.attempt}


def progress_data(scenario: Scenario, eta_seconds: float | None) -> dict[str, Any]:
    return {
        "status": scenario.status.value,
        "finished": scenario.progress.finished,
        "total": scenario.progress.total,
        "percent": scenario.progress.percent,
        "eta_seconds": eta_seconds,
    }


async def scenario_feed(
    orchestrator: Orchestrator, scenario_id: str, *, after: str | None, heartbeat: float
) -> AsyncIterator[bytes]:
    follow = follow_scenario(orchestrator, scenario_id, after=after, heartbeat=heartbeat)
    async for chunk in encode_stream(follow, status_data=status_data, progress_data=progress_data):
        yield chunk
