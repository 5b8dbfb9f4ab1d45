"""Worker-protocol response bodies written directly as JSON.

A worker's round (POST /queues/lease with the previous batch's completions, or POST
/tasks/complete) answers one object per task, and the round is the benchmark's critical
path: building then validating a pydantic model per task cost more than the JSON itself.
Each writer produces exactly its model's dump (`LeasedTask`, `TaskPublic`, `BatchOutcome`,
`LeasePublic`, `ServicesLeasePublic`, `BatchCompletePublic`): same keys in the same order,
float fields written as floats; tests/api check that against the models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from scenarist.api.problems import problem_of
from scenarist.core.errors import ScenaristError
from scenarist.core.model import Completion, Task

Outcome = tuple[str, Completion | ScenaristError]
NO_TRACES: Mapping[str, str] = {}  # task id -> its attempt's traceparent (tracing off: none)


def lease_body(tasks: Sequence[Task], traces: Mapping[str, str] = NO_TRACES) -> bytes:
    """LeasePublic as JSON."""
    return orjson.dumps({"tasks": [leased_task(t, traces.get(t.id)) for t in tasks]})


def services_lease_body(
    tasks: Sequence[Task], outcomes: Sequence[Outcome], traces: Mapping[str, str] = NO_TRACES
) -> bytes:
    """ServicesLeasePublic as JSON."""
    return orjson.dumps(
        {
            "tasks": [leased_task(t, traces.get(t.id)) for t in tasks],
            "outcomes": [batch_outcome(task_id, r) for task_id, r in outcomes],
        }
    )


def batch_complete_body(outcomes: Sequence[Outcome]) -> bytes:
    """BatchCompletePublic as JSON."""
    return orjson.dumps({"outcomes": [batch_outcome(task_id, r) for task_id, r in outcomes]})


def leased_task(task: Task, traceparent: str | None = None) -> dict[str, Any]:
    """LeasedTask's fields, in its order."""
    assert task.lease_token is not None
    assert task.lease_expires_at is not None
    return {
        "id": task.id,
        "scenario_id": task.scenario_id,
        "name": task.name,
        "service": task.service,
        "level": task.level,
        "payload": dict(task.payload),
        "inputs": [dict(i) for i in task.inputs],
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "lease_token": task.lease_token,
        "lease_expires_at": float(task.lease_expires_at),
        "traceparent": traceparent,
    }


def batch_outcome(task_id: str, result: Completion | ScenaristError) -> dict[str, Any]:
    """BatchOutcome's fields, in its order (its problem as the Problem model dumps it)."""
    if isinstance(result, ScenaristError):
        problem = problem_of(result).model_dump(mode="json")
        return {"id": task_id, "ok": False, "duplicate": False, "task": None, "problem": problem}
    return {
        "id": task_id,
        "ok": True,
        "duplicate": result.duplicate,
        "task": task_public(result.task),
        "problem": None,
    }


def task_public(task: Task) -> dict[str, Any]:
    """TaskPublic's fields, in its order."""
    return {
        "id": task.id,
        "scenario_id": task.scenario_id,
        "name": task.name,
        "service": task.service,
        "level": task.level,
        "status": task.status.value,
        "depends_on": list(task.depends_on),
        "dependents": list(task.dependents),
        "payload": dict(task.payload),
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "timeout_seconds": float(task.timeout_seconds),
        "created_at": float(task.created_at),
        "queued_at": optional_float(task.queued_at),
        "available_at": optional_float(task.available_at),
        "started_at": optional_float(task.started_at),
        "finished_at": optional_float(task.finished_at),
        "lease_expires_at": optional_float(task.lease_expires_at),
        "lease_seconds": optional_float(task.lease_seconds),
        "worker_id": task.worker_id,
        "result_ref": task.result_ref,
        "result": dict(task.result) if task.result is not None else None,
        "error": task.error,
        "usage": dict(task.usage or {}),
        "run": task.run,
        "runs": task.runs,
        "no_cache": task.no_cache,
        "cached": task.cached,
        "cached_from": task.cached_from,
    }


def optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)
