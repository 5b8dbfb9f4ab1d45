"""What a handler receives (`WorkerTask`) and returns (`TaskResult`)."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scenarist.worker.client import LeasedTask


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A handler's answer: where the artefact is, plus optional JSON metadata."""

    result_ref: str | None
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WorkerTask:
    """One leased task as a handler sees it.

    `inputs` are the upstream results in dependency order (`{"task", "result_ref",
    "result"}` each). `attempt` is 1 on the first lease. `lease_lost` is set when the
    server says this lease is no longer current (the scenario was cancelled, the task was
    re-leased) or when the worker gives up on it during shutdown; a long-running sync
    handler can poll `should_stop` and return early, because its result will be ignored.
    """

    id: str
    scenario_id: str
    name: str
    service: str
    payload: Mapping[str, Any]
    inputs: tuple[Mapping[str, Any], ...]
    attempt: int
    lease_lost: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def should_stop(self) -> bool:
        return self.lease_lost.is_set()

    @classmethod
    def from_lease(cls, leased: LeasedTask) -> WorkerTask:
        return cls(
            id=leased.id,
            scenario_id=leased.scenario_id,
            name=leased.name,
            service=leased.service,
            payload=leased.payload,
            inputs=leased.inputs,
            attempt=leased.attempt,
        )


HandlerReturn = TaskResult | str | None
SyncHandler = Callable[[WorkerTask], HandlerReturn]
AsyncHandler = Callable[[WorkerTask], Awaitable[HandlerReturn]]
Handler = SyncHandler | AsyncHandler


def as_task_result(value: object, *, task_id: str) -> TaskResult:
    """Normalise a handler's return value; anything else is a programming error."""
    if isinstance(value, TaskResult):
        return value
    if value is None or isinstance(value, str):
        return TaskResult(result_ref=value)
    raise TypeError(
        f"handler for task {task_id!r} returned {type(value).__name__}; "
        "return a TaskResult, a str (the result_ref) or None"
    )
