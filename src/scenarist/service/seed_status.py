"""The seed's `PATCH /tasks/{id}/status`: finishing a task without its lease token, for
workers that know none. Built on the orchestrator's claim, complete and fail, so the
seed's path is the token path's rules with "any current lease" for a token."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from scenarist.core.errors import IllegalTransitionError
from scenarist.core.model import JSON, Task, TaskStatus
from scenarist.core.usage import Usage
from scenarist.service.orchestrator import Orchestrator


async def set_status(
    orchestrator: Orchestrator,
    task_id: str,
    status: TaskStatus,
    *,
    result_ref: str | None = None,
    result: Mapping[str, JSON] | None = None,
    error: str | None = None,
    retryable: bool = False,
    worker_id: str | None = None,
    usage: Usage | None = None,
) -> Task:
    """The seed's `PATCH /tasks/{id}/status` for workers that know no lease tokens.
    `processing` claims a queued task; `success`/`failed` finish a processing one
    (a queued task is claimed and finished in one call)."""
    if status is TaskStatus.PROCESSING:
        return await orchestrator.store.claim(
            task_id,
            lease_seconds=None,
            worker_id=worker_id,
            now=orchestrator.clock(),
            nonce=secrets.token_hex(8),
        )
    if status not in (TaskStatus.SUCCESS, TaskStatus.FAILED):
        current = await orchestrator.store.get_task(task_id)
        raise IllegalTransitionError(task_id, current.status, status)
    task = await orchestrator.store.get_task(task_id)
    if task.status is TaskStatus.QUEUED:
        task = await orchestrator.store.claim(
            task_id,
            lease_seconds=None,
            worker_id=worker_id,
            now=orchestrator.clock(),
            nonce=secrets.token_hex(8),
        )
    elif task.status is not TaskStatus.PROCESSING:
        raise IllegalTransitionError(task_id, task.status, status)
    if status is TaskStatus.SUCCESS:
        done = await orchestrator.complete(
            task_id, None, result_ref=result_ref, result=result, usage=usage
        )
        return done.task
    return await orchestrator.fail(
        task_id, None, error=error or "failed", retryable=retryable, usage=usage
    )
