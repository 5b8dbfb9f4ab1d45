"""Server-Sent Events for one scenario: every stored event, then the progress, until the
scenario is final.

Each stored event goes out with `id:` = its store event id, so a client that reconnects
with `Last-Event-ID` resumes exactly after the last event it saw. Between batches the
stream blocks in `store.wait_for_events` (no polling loop); a comment line goes out every
`heartbeat` seconds of silence so proxies keep the connection open.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from scenarist.api.schemas import ProgressPublic
from scenarist.core.errors import ScenaristError
from scenarist.core.model import Event, Scenario, task_id
from scenarist.service.orchestrator import Orchestrator

EVENT_BATCH = 500
RETRY_MILLISECONDS = 2000


def format_sse(data: Any, *, event: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


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
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    last_id = after
    last_sent = time.monotonic()
    try:
        while True:
            # Read the status before the events: a final status read first guarantees that
            # its events (written in the same atomic step) are in the read that follows.
            scenario = await orchestrator.get_scenario(scenario_id)
            events = await orchestrator.read_events(scenario_id, after=last_id, limit=EVENT_BATCH)
            for event in events:
                yield format_sse(event_data(event), event="status", event_id=event.id)
                last_id = event.id
            if events:
                latest = await orchestrator.get_scenario(scenario_id)
                yield format_sse(progress_data(latest), event="progress")
                last_sent = time.monotonic()
                continue  # drain everything before deciding the stream is over
            if scenario.status.is_final:
                yield format_sse(progress_data(scenario), event="end")
                return
            silence = time.monotonic() - last_sent
            if silence >= heartbeat:
                yield b": heartbeat\n\n"
                last_sent, silence = time.monotonic(), 0.0
            await orchestrator.store.wait_for_events(scenario_id, heartbeat - silence)
    except ScenaristError as exc:  # e.g. the store went away, or retention purged it
        yield format_sse({"detail": exc.message, "code": exc.code}, event="error")
