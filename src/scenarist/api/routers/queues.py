"""Service queues: long-poll leasing for workers, and per-service statistics.

A long poll is told how to see that its caller left (`Request.is_disconnected`, which
peeks at the ASGI receive channel without waiting): a worker killed mid-wait must not be
handed tasks that then sit out their lease (see Orchestrator.lease)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from scenarist.api.auth import require_role, require_service
from scenarist.api.deps import AppServices, Caller, Services
from scenarist.api.problems import ProblemError, problem_responses
from scenarist.api.routers.tasks import complete_items
from scenarist.api.worker_bodies import NO_TRACES, lease_body, services_lease_body
from scenarist.api.worker_schemas import (
    LeaseCreate,
    LeasePublic,
    QueueList,
    QueuePublic,
    ServicesLeaseCreate,
    ServicesLeasePublic,
    TenantPublic,
)
from scenarist.core.model import Task
from scenarist.settings import Role

router = APIRouter(prefix="/queues", tags=["queues"])

ServiceName = Annotated[
    str, Path(min_length=1, max_length=200, description="worker service, e.g. text-service")
]


@router.post(
    "/lease",
    operation_id="leaseTasksAcrossServices",
    summary="Report a finished batch (optional), then lease up to max_tasks ready tasks of "
    "any of several services (one long poll)",
    response_model=ServicesLeasePublic,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
)
async def lease_services(
    body: ServicesLeaseCreate, services: Services, caller: Caller, request: Request
) -> Response:
    worker = require_role(caller, Role.WORKER)
    for service in body.services:
        require_service(worker, service)
    check_declared(services, body.services, field="services")
    outcomes = await complete_items(body.complete, services, worker) if body.complete else []
    tasks = await services.orchestrator.lease(
        body.services,
        max_tasks=body.max_tasks,
        lease_seconds=body.lease_seconds,
        wait_seconds=body.wait_seconds,
        worker_id=body.worker_id,
        caller_gone=request.is_disconnected,
        labels=body.labels,
        sdk_version=body.sdk_version,
    )
    traces = await traceparents(services, tasks)
    return Response(services_lease_body(tasks, outcomes, traces), media_type="application/json")


@router.post(
    "/{service}/lease",
    operation_id="leaseTasks",
    summary="Lease up to max_tasks ready tasks of a service (long-poll with wait_seconds)",
    response_model=LeasePublic,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
)
async def lease(
    service: ServiceName, body: LeaseCreate, services: Services, caller: Caller, request: Request
) -> Response:
    require_service(require_role(caller, Role.WORKER), service)
    check_declared(services, [service], field="service")
    tasks = await services.orchestrator.lease(
        service,
        max_tasks=body.max_tasks,
        lease_seconds=body.lease_seconds,
        wait_seconds=body.wait_seconds,
        worker_id=body.worker_id,
        caller_gone=request.is_disconnected,
        labels=body.labels,
        sdk_version=body.sdk_version,
    )
    return Response(
        lease_body(tasks, await traceparents(services, tasks)), media_type="application/json"
    )


async def traceparents(services: AppServices, tasks: Sequence[Task]) -> Mapping[str, str]:
    """Each task's attempt `traceparent` when tracing is on (decision 43)."""
    if not tasks or services.orchestrator.spans is None:
        return NO_TRACES
    return await services.orchestrator.lease_traceparents(tasks)


def check_declared(services: AppServices, names: Sequence[str], *, field: str) -> None:
    """When the catalog declares its services, leasing any other one is a mistake (a typo
    in a worker's service name), not an empty queue to wait on forever."""
    declared = services.catalog.services
    if declared is None:
        return
    unknown = [(i, name) for i, name in enumerate(names) if name not in declared]
    if not unknown:
        return
    listed = ", ".join(repr(name) for _, name in unknown)
    raise ProblemError(
        422,
        f"unknown service(s) {listed}; the catalog declares: {', '.join(declared)}",
        code="unknown-service",
        field=field,
        fields=[field] if field == "service" else [f"{field}.{i}" for i, _ in unknown],
    )


@router.get(
    "",
    operation_id="listQueues",
    summary="Per service: ready, delayed, in flight, oldest ready age",
    responses=problem_responses(401, 503),
)
async def list_queues(services: Services, _: Caller) -> QueueList:
    stats = await services.orchestrator.queue_stats()
    warnings = await services.orchestrator.affinity_warnings(stats)
    tenants = await services.orchestrator.tenant_stats()
    return QueueList(
        queues=[QueuePublic.of(s, warnings.get(s.service, ())) for s in stats],
        tenants=[TenantPublic.of(t) for t in tenants],
    )
