"""Follow one scenario's events until it is final: the loop behind every SSE stream.

The follower waits on a `store.watch_events` watch (taken before each read, so no
event slips between a read and the wait) between batches (no polling loop) and
reports silence so the edge can send heartbeats. Edges (API, dashboard) only format.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from scenarist.core.errors import ScenaristError
from scenarist.core.model import Event, Scenario
from scenarist.core.sse import HEARTBEAT_COMMENT, encode_retry, encode_sse
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.timing import eta_seconds

EVENT_BATCH = 500


@dataclass(frozen=True, slots=True)
class EventBatch:
    events: list[Event]  # oldest first, each newer than the previous batch
    scenario: Scenario  # read after the events: the progress they led to
    eta_seconds: float | None = None  # forecast after the events (service/timing.py)


@dataclass(frozen=True, slots=True)
class StreamEnd:
    scenario: Scenario  # final


@dataclass(frozen=True, slots=True)
class Silence:
    """Nothing happened for `heartbeat` seconds."""


@dataclass(frozen=True, slots=True)
class StreamError:
    error: ScenaristError  # the store went away, or retention purged the scenario


StreamItem = EventBatch | StreamEnd | Silence | StreamError


async def follow_scenario(
    orchestrator: Orchestrator, scenario_id: str, *, after: str | None, heartbeat: float
) -> AsyncIterator[StreamItem]:
    last_id, last_sent = after, time.monotonic()
    try:
        while True:
            with await orchestrator.store.watch_events(scenario_id) as changed:
                # Read the status before the events: a final status read first guarantees
                # that its events (written in the same atomic step) are in the next read.
                scenario = await orchestrator.get_scenario(scenario_id)
                events = await orchestrator.read_events(
                    scenario_id, after=last_id, limit=EVENT_BATCH
                )
                if events:
                    last_id = events[-1].id
                    yield await _batch(orchestrator, events)
                    last_sent = time.monotonic()
                    continue  # drain every stored event before deciding the stream is over
                if scenario.status.is_final:
                    yield StreamEnd(scenario)
                    return
                if time.monotonic() - last_sent >= heartbeat:
                    yield Silence()
                    last_sent = time.monotonic()
                if orchestrator.stopping:  # shutdown: end cleanly, the client reconnects
                    return
                quiet = time.monotonic() - last_sent
                await orchestrator.wait_unless_stopping(changed, max(heartbeat - quiet, 0.05))
    except ScenaristError as exc:
        yield StreamError(exc)


async def _batch(orchestrator: Orchestrator, events: list[Event]) -> EventBatch:
    scenario = await orchestrator.get_scenario(events[0].scenario_id)
    if scenario.status.is_final:
        return EventBatch(events, scenario)
    tasks = await orchestrator.list_tasks(scenario.id)
    return EventBatch(events, scenario, await eta_seconds(orchestrator, scenario, tasks))


async def newest_event_id(orchestrator: Orchestrator, scenario_id: str) -> str | None:
    """The id of the newest stored event, so a page can stream only what follows it."""
    last: str | None = None
    while True:
        events = await orchestrator.read_events(scenario_id, after=last, limit=EVENT_BATCH)
        if not events:
            return last
        last = events[-1].id


async def encode_stream(
    items: AsyncIterator[StreamItem],
    *,
    status_data: Callable[[Event], Any],
    progress_data: Callable[[Scenario, float | None], Any],
) -> AsyncIterator[bytes]:
    """Server-Sent Events of a follower: `status` per event (with its id, for
    Last-Event-ID), `progress` after each batch, `end` when final, `error` if the store
    fails, and a comment on silence. Each edge chooses what the data of an event holds."""
    yield encode_retry()
    async for item in items:
        if isinstance(item, EventBatch):
            for event in item.events:
                yield encode_sse("status", status_data(event), event_id=event.id)
            yield encode_sse("progress", progress_data(item.scenario, item.eta_seconds))
        elif isinstance(item, StreamEnd):
            yield encode_sse("end", progress_data(item.scenario, None))
        elif isinstance(item, Silence):
            yield HEARTBEAT_COMMENT
        else:
            yield encode_sse("error", {"detail": item.error.message, "code": item.error.code})
