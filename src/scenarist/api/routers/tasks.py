"""Tasks: read, the seed's status PATCH, and the lease-token worker protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Response

from scenarist.api.auth import Principal, require_role, require_service
from scenarist.api.deps import AppServices, Caller, Services
from scenarist.api.problems import problem_responses
from scenarist.api.rerun_schemas import TaskHistoryPublic
from scenarist.api.schemas import TaskDetailPublic, TaskPublic, TaskStatusUpdate
from scenarist.api.worker_bodies import Outcome, batch_complete_body
from scenarist.api.worker_schemas import (
    BatchCompleteCreate,
    BatchCompletePublic,
    BatchItem,
    CompleteCreate,
    CompletionPublic,
    FailCreate,
    HeartbeatCreate,
    HeartbeatPublic,
)
from scenarist.core.model import Task, TaskStatus
from scenarist.service.orchestrator import CompletionItem
from scenarist.service.seed_status import set_status as set_seed_status
from scenarist.service.timing import attempts_of
from scenarist.settings import Role

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=400,
        description="`<scenario_id>:<name>`, e.g. `01J9Z...:slide_image_2`",
    ),
]
WORKER_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


async def authorize_task_write(services: AppServices, caller: Principal, task_id: str) -> None:
    """Workers may only change tasks of their services; that needs the task's service."""
    require_role(caller, Role.WORKER)
    if caller.role is Role.ADMIN or caller.services is None:
        return
    task = await services.orchestrator.get_task(task_id)
    require_service(caller, task.service)


async def authorize_batch_write(
    services: AppServices, caller: Principal, task_ids: Sequence[str]
) -> None:
    """`authorize_task_write` for a batch, with one store read for all of its tasks. An
    absent task is no one's: its item's outcome reports it."""
    require_role(caller, Role.WORKER)
    if caller.role is Role.ADMIN or caller.services is None:
        return
    found = await services.orchestrator.get_tasks(task_ids)
    for task_id in task_ids:
        task = found.get(task_id)
        if task is not None:
            require_service(caller, task.service)


@router.post(
    "/complete",
    operation_id="completeTasks",
    summary="Complete many leased tasks; each item gets its own outcome",
    response_model=BatchCompletePublic,
    responses=WORKER_ERRORS,
)
async def complete_batch(body: BatchCompleteCreate, services: Services, caller: Caller) -> Response:
    outcomes = await complete_items(body.items, services, caller)
    return Response(batch_complete_body(outcomes), media_type="application/json")


async def complete_items(
    items: Sequence[BatchItem], services: AppServices, caller: Principal
) -> list[Outcome]:
    """A batch completion (also run by a lease that reports the previous batch): each
    item's id with its completion or its error, in order."""
    await authorize_batch_write(services, caller, [i.id for i in items])
    results = await services.orchestrator.complete_many(
        [
            CompletionItem(
                task_id=i.id,
                lease_token=i.lease_token,
                result_ref=i.result_ref,
                result=i.result,
                usage=i.usage or None,
            )
            for i in items
        ]
    )
    return [(i.id, r) for i, r in zip(items, results, strict=True)]


async def readable_task(services: AppServices, caller: Principal, task_id: str) -> Task:
    """The task, if the caller may read it: a worker only its services' tasks."""
    task = await services.orchestrator.get_task(task_id)
    if caller.role is Role.WORKER:
        require_service(caller, task.service)
    return task


@router.get(
    "/{task_id}/history",
    operation_id="getTaskHistory",
    summary="A task's runs, newest first: the current one, then those reruns ended",
    responses=problem_responses(401, 403, 404, 503),
)
async def task_history(task_id: TaskId, services: Services, caller: Caller) -> TaskHistoryPublic:
    task = await readable_task(services, caller, task_id)
    # Read after the task: a run a rerun ended meanwhile is not listed twice.
    ended = [r for r in await services.orchestrator.task_history(task_id) if r.run < task.run]
    return TaskHistoryPublic.of(task, ended)


@router.get(
    "/{task_id}",
    operation_id="getTask",
    summary="A task's details",
    responses=problem_responses(401, 403, 404, 503),
)
async def get_task(task_id: TaskId, services: Services, caller: Caller) -> TaskDetailPublic:
    task = await readable_task(services, caller, task_id)
    # Only a failed or skipped task is explained by its neighbours: skip the read otherwise.
    explained = task.status in (TaskStatus.FAILED, TaskStatus.SKIPPED)
    scenario_tasks = await services.orchestrator.list_tasks(task.scenario_id) if explained else []
    attempts = await attempts_of(services.orchestrator, task.scenario_id, [task])
    return TaskDetailPublic.explained(task, scenario_tasks, attempts[task.name])


@router.patch(
    "/{task_id}/status",
    operation_id="updateTaskStatus",
    summary="Seed-compatible status update: processing claims, success/failed finish",
    responses=WORKER_ERRORS,
)
async def update_task_status(
    task_id: TaskId, body: TaskStatusUpdate, services: Services, caller: Caller
) -> TaskPublic:
    await authorize_task_write(services, caller, task_id)
    task = await set_seed_status(
        services.orchestrator,
        task_id,
        body.status,
        result_ref=body.result_ref,
        result=body.result,
        error=body.error,
        retryable=body.retryable,
        worker_id=body.worker_id,
        usage=body.usage or None,
    )
    return TaskPublic.of(task)


@router.post(
    "/{task_id}/heartbeat",
    operation_id="heartbeatTask",
    summary="Extend a lease",
    responses=WORKER_ERRORS,
)
async def heartbeat(
    task_id: TaskId, body: HeartbeatCreate, services: Services, caller: Caller
) -> HeartbeatPublic:
    await authorize_task_write(services, caller, task_id)
    task = await services.orchestrator.heartbeat(
        task_id, body.lease_token, lease_seconds=body.lease_seconds
    )
    assert task.lease_token is not None
    assert task.lease_expires_at is not None
    return HeartbeatPublic(
        id=task.id,
        status=task.status,
        lease_token=task.lease_token,
        lease_expires_at=task.lease_expires_at,
    )


@router.post(
    "/{task_id}/complete",
    operation_id="completeTask",
    summary="Finish a leased task successfully; releases its dependents",
    responses=WORKER_ERRORS,
)
async def complete(
    task_id: TaskId, body: CompleteCreate, services: Services, caller: Caller
) -> CompletionPublic:
    await authorize_task_write(services, caller, task_id)
    done = await services.orchestrator.complete(
        task_id,
        body.lease_token,
        result_ref=body.result_ref,
        result=body.result,
        usage=body.usage or None,
    )
    return CompletionPublic.of_completion(done)


@router.post(
    "/{task_id}/fail",
    operation_id="failTask",
    summary="Fail a leased task: retried with backoff while attempts remain",
    responses=WORKER_ERRORS,
)
async def fail(task_id: TaskId, body: FailCreate, services: Services, caller: Caller) -> TaskPublic:
    await authorize_task_write(services, caller, task_id)
    task = await services.orchestrator.fail(
        task_id,
        body.lease_token,
        error=body.error,
        retryable=body.retryable,
        usage=body.usage or None,
    )
    return TaskPublic.of(task)
