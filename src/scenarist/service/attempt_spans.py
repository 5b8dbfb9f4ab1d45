"""Task attempts as trace spans (decision 43): one span per attempt, from the moment the
task was queued for it to the end of the attempt, a child of its scenario's submit span.

A span is recorded once, when its attempt ends (completed, failed, requeued, or its lease
expired), by whichever API process ends it: its id comes from the task id and the lease
token (`core/trace_ids.py`), its parent from the scenario's stored `traceparent`, and its
events from the task's fields as they were before the end (`leased` at `started_at`, the
last `heartbeat`, the `retry` or the expiry). The sink (an OpenTelemetry exporter at the
edge) is only called when tracing is on; the orchestrator holds no `AttemptSpans` at all
otherwise, so the hot paths pay one `is None` check.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from scenarist.core.errors import NotFoundError, StoreUnavailableError
from scenarist.core.model import Task, TaskStatus
from scenarist.core.trace_ids import TraceParent, attempt_span_id, parse_traceparent
from scenarist.core.transitions import LEASE_EXPIRED_ERROR
from scenarist.storage.base import Store

log = logging.getLogger(__name__)

Attribute = str | int | float | bool
# The lease length is renewed by a heartbeat: a renewal this long after the lease is one.
HEARTBEAT_MIN_GAP_SECONDS = 0.001


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    at: float
    attributes: Mapping[str, Attribute]


@dataclass(frozen=True, slots=True)
class AttemptSpan:
    context: TraceParent  # this span's own trace id, span id and flags
    parent_span_id: int  # the scenario's submit span
    name: str
    start: float
    end: float
    attributes: Mapping[str, Attribute]
    events: tuple[SpanEvent, ...]
    error: str | None  # None: the attempt succeeded


class SpanSink(Protocol):
    def emit(self, span: AttemptSpan) -> None: ...


class AttemptSpans:
    """Records ended attempts into `sink`; remembers each scenario's trace context."""

    def __init__(self, store: Store, sink: SpanSink, *, capacity: int = 10_000) -> None:
        self.store = store
        self.sink = sink
        self.capacity = capacity
        self._traces: OrderedDict[str, TraceParent | None] = OrderedDict()

    async def trace_of(self, scenario_id: str) -> TraceParent | None:
        """The scenario's submit span context (None: untraced, or gone). It never changes,
        so it is read once per process and kept (bounded)."""
        if scenario_id in self._traces:
            self._traces.move_to_end(scenario_id)
            return self._traces[scenario_id]
        try:
            scenario = await self.store.get_scenario(scenario_id)
        except (NotFoundError, StoreUnavailableError):
            return None
        found = parse_traceparent(scenario.traceparent)
        self._traces[scenario_id] = found
        if len(self._traces) > self.capacity:
            self._traces.popitem(last=False)
        return found

    async def lease_traceparents(self, tasks: Sequence[Task]) -> dict[str, str]:
        """The `traceparent` of each leased task's attempt span, by task id."""
        headers = {}
        for task in tasks:
            trace = await self.trace_of(task.scenario_id)
            if trace is not None and task.lease_token is not None:
                span_id = attempt_span_id(task.id, task.lease_token)
                headers[task.id] = trace.child(span_id).header()
        return headers

    async def read_before(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks about to be completed, as they are while processing (read only when
        tracing is on: the span needs their queued time, lease and heartbeat)."""
        try:
            tasks = await self.store.get_tasks(task_ids)
        except StoreUnavailableError:
            return {}
        return {i: t for i, t in tasks.items() if t.status is TaskStatus.PROCESSING}

    async def completed(self, before: Task | None, *, now: float) -> None:
        if before is not None:
            await self.ended(before, now=now)

    async def expired(self, before: Task, *, now: float, retry_at: float | None) -> None:
        await self.ended(
            before, now=now, error=LEASE_EXPIRED_ERROR, retry_at=retry_at, expired=True
        )

    async def ended(
        self,
        before: Task,
        *,
        now: float,
        error: str | None = None,
        retry_at: float | None = None,
        expired: bool = False,
    ) -> None:
        """Record the attempt `before` (the task while it was processing) as ended now.
        Never raises: tracing must not fail a worker's call."""
        try:
            trace = await self.trace_of(before.scenario_id)
            if trace is None or not trace.sampled or before.lease_token is None:
                return
            self.sink.emit(attempt_span(before, trace, now, error, retry_at, expired))
        except Exception:
            log.exception("recording the span of %s failed", before.id)


def attempt_span(  # noqa: PLR0917 (one argument per part of the outcome)
    before: Task,
    trace: TraceParent,
    now: float,
    error: str | None,
    retry_at: float | None,
    expired: bool,
) -> AttemptSpan:
    assert before.lease_token is not None
    start = before.queued_at if before.queued_at is not None else before.started_at or now
    attributes: dict[str, Attribute] = {
        "scenarist.task_id": before.id,
        "scenarist.scenario_id": before.scenario_id,
        "scenarist.task": before.name,
        "scenarist.service": before.service,
        "scenarist.attempt": before.attempt,
        "scenarist.max_attempts": before.max_attempts,
        "scenarist.outcome": outcome_of(error, retry_at),
    }
    if before.worker_id is not None:
        attributes["scenarist.worker_id"] = before.worker_id
    return AttemptSpan(
        context=trace.child(attempt_span_id(before.id, before.lease_token)),
        parent_span_id=trace.span_id,
        name=before.name,
        start=min(start, now),
        end=now,
        attributes=attributes,
        events=attempt_events(before, now, retry_at, expired),
        error=error,
    )


def outcome_of(error: str | None, retry_at: float | None) -> str:
    if error is None:
        return TaskStatus.SUCCESS.value
    return "retry" if retry_at is not None else TaskStatus.FAILED.value


def attempt_events(
    before: Task, now: float, retry_at: float | None, expired: bool
) -> tuple[SpanEvent, ...]:
    events = []
    if before.started_at is not None:
        worker = {"scenarist.worker_id": before.worker_id} if before.worker_id else {}
        events.append(SpanEvent("leased", before.started_at, worker))
        if before.lease_expires_at is not None and before.lease_seconds is not None:
            renewed = before.lease_expires_at - before.lease_seconds
            if renewed - before.started_at >= HEARTBEAT_MIN_GAP_SECONDS and renewed <= now:
                events.append(SpanEvent("heartbeat", renewed, {"scenarist.last": True}))
    if expired:
        events.append(SpanEvent("lease expired", now, {}))
    if retry_at is not None:
        events.append(SpanEvent("retry", now, {"scenarist.retry_at": retry_at}))
    return tuple(events)
