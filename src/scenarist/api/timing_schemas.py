"""How long each attempt of a task waited and ran, as the API shows it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from scenarist.core.durations import AttemptSpan

ATTEMPTS_TEXT = (
    "every attempt so far, oldest first, derived from the scenario's events: its queue "
    "wait (retry backoff included) and run time; a wait going on now is the last entry"
)
ETA_TEXT = (
    "seconds until the scenario's last task is forecast to end (remaining critical path, "
    "queueing included); null once it has ended, or while a service it still needs has "
    "no run time to go by"
)


class AttemptPublic(BaseModel):
    attempt: int
    queued_at: float | None
    started_at: float | None = Field(description="null while it waits")
    ended_at: float | None = Field(description="null while it waits or runs")
    outcome: str | None = Field(
        description="the status its run ended in (`queued`: requeued after a retryable "
        "failure or an expired lease); null while it waits or runs"
    )
    wait_seconds: float | None
    run_seconds: float | None

    @classmethod
    def of(cls, span: AttemptSpan) -> AttemptPublic:
        return cls(
            attempt=span.attempt,
            queued_at=span.queued_at,
            started_at=span.started_at,
            ended_at=span.ended_at,
            outcome=span.outcome,
            wait_seconds=_rounded(span.wait_seconds),
            run_seconds=_rounded(span.run_seconds),
        )


def attempts_public(spans: list[AttemptSpan] | None) -> list[AttemptPublic]:
    return [AttemptPublic.of(s) for s in spans or ()]


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)
