"""Queue wait and run time of every attempt, derived from a scenario's event stream.

Every status move is already an event with its time and attempt (`Event`), so the
history of a task's attempts needs no stored field of its own: a `queued` event starts a
wait, `processing` ends it and starts a run, and the next move ends the run (its status
is the attempt's outcome). A root task has no `queued` event of its own (it was created
queued): its first wait starts at its creation. A hand-back (`processing` -> `queued`
with the attempt one lower) undoes its lease "as if never leased" (the lifecycle row
`hand_back`), so its run is dropped and the wait goes on from where it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scenarist.core.model import Event, Task, TaskStatus

_QUEUED = TaskStatus.QUEUED.value
_PROCESSING = TaskStatus.PROCESSING.value


@dataclass(frozen=True, slots=True)
class AttemptSpan:
    """One attempt of one task. `started_at` is None while it waits, `ended_at` None
    while it runs; `outcome` is the status its run ended in (`queued` when it was
    requeued: a retryable failure or an expired lease)."""

    attempt: int
    queued_at: float | None  # None: the wait began before the events kept (never, today)
    started_at: float | None = None
    ended_at: float | None = None
    outcome: str | None = None

    @property
    def wait_seconds(self) -> float | None:
        if self.queued_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.queued_at)

    @property
    def run_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


class _TaskHistory:
    """The attempts of one task, built event by event."""

    def __init__(self, created_at: float | None) -> None:
        self.spans: list[AttemptSpan] = []
        self.waiting_since = created_at  # a root: queued from its creation
        self.attempts_before = 0  # attempts counted before the wait going on now
        self.running: AttemptSpan | None = None

    def move(self, event: Event) -> None:
        running = self.running
        if running is not None:
            self.running = None
            if event.status == _QUEUED and event.attempt < running.attempt:
                self.spans.pop()  # a hand-back: the lease never happened
                self.waiting_since = running.queued_at
                self.attempts_before = event.attempt
                return
            self.spans[-1] = _ended(running, event)
        if event.status == _QUEUED:
            self.waiting_since = event.at
            self.attempts_before = event.attempt
        elif event.status == _PROCESSING:
            span = AttemptSpan(event.attempt, self.waiting_since, started_at=event.at)
            self.spans.append(span)
            self.running = span
            self.waiting_since = None
        else:  # final, or pending again (a scenario retry waiting for its parents)
            self.waiting_since = None

    def finish(self) -> list[AttemptSpan]:
        """The attempts so far, plus the wait going on now (if any)."""
        if self.waiting_since is None:
            return list(self.spans)
        return [*self.spans, AttemptSpan(self.attempts_before + 1, self.waiting_since)]


def _ended(span: AttemptSpan, event: Event) -> AttemptSpan:
    return AttemptSpan(span.attempt, span.queued_at, span.started_at, event.at, event.status)


def task_attempts(tasks: Iterable[Task], events: Iterable[Event]) -> dict[str, list[AttemptSpan]]:
    """Every task's attempts (by task name), from its scenario's events oldest first.
    A task still pending (never queued) has none."""
    histories = {t.name: _TaskHistory(t.created_at if not t.depends_on else None) for t in tasks}
    for event in events:
        if event.task is not None and event.task in histories:
            histories[event.task].move(event)
    return {name: history.finish() for name, history in histories.items()}
