"""What a handler receives (`WorkerTask`) and returns (`TaskResult`).

A handler reports what its attempt used (core/usage.py) with `task.report_usage(...)`,
any number of times (amounts add up; they are sent even when the handler then raises, so
a failed attempt's cost counts too), or with `TaskResult(usage=...)` on success."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scenarist.core.errors import ScenaristError
from scenarist.core.usage import MAX_USAGE_NAMES, Usage, add_usage, check_usage
from scenarist.worker.client import LeasedTask


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A handler's answer: where the artefact is, plus optional JSON metadata."""

    result_ref: str | None
    result: Mapping[str, Any] | None = None
    usage: Usage | None = None  # added to what the handler reported with report_usage


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
    traceparent: str | None = None  # the attempt span's trace context (worker/tracing.py)
    lease_lost: threading.Event = field(default_factory=threading.Event, compare=False)
    _usage: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    _usage_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def should_stop(self) -> bool:
        return self.lease_lost.is_set()

    def report_usage(self, amounts: Mapping[str, float] | None = None, **more: float) -> None:
        """Add to what this attempt used: `task.report_usage(gpu_seconds=12.5, tokens=812)`.
        Names are lower-case letters, digits and _, amounts finite numbers >= 0 (a bad one
        raises ValueError here rather than being refused by the server later)."""
        try:
            checked = check_usage({**(amounts or {}), **more})
        except ScenaristError as exc:
            raise ValueError(exc.message) from None
        with self._usage_lock:
            total = add_usage(self._usage, checked) or {}
            if len(total) > MAX_USAGE_NAMES:
                raise ValueError(f"at most {MAX_USAGE_NAMES} usage names per attempt")
            self._usage.clear()
            self._usage.update(total)

    def reported_usage(self, extra: Usage | None = None) -> dict[str, float] | None:
        """What was reported so far plus `extra` (a TaskResult's), None when nothing."""
        with self._usage_lock:
            return add_usage(self._usage or None, extra)

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
            traceparent=leased.traceparent,
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
