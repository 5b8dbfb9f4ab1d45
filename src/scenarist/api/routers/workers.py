"""Workers: the registry of who leased or heartbeated lately (core/workers.py)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from scenarist.api.deps import Caller, Services
from scenarist.api.problems import problem_responses
from scenarist.core.workers import MIN_POLL_SECONDS, STALE_POLLS
from scenarist.service.workers import WorkerPolicy, WorkerView

FORGET_HOURS = WorkerPolicy().forget_after_seconds / 3600

router = APIRouter(prefix="/workers", tags=["queues"])


class WorkerPublic(BaseModel):
    worker_id: str
    services: list[str] = Field(description="the services of its last lease")
    labels: dict[str, str] = Field(description="the labels of its last lease")
    sdk_version: str | None
    first_seen: float
    last_seen: float = Field(description="its last lease or heartbeat")
    in_flight: int = Field(description="tasks it holds processing now")
    stale: bool = Field(
        description=f"no call from it for {STALE_POLLS} of its long polls (at least "
        f"{MIN_POLL_SECONDS:g} s each): probably gone; dropped from the list "
        f"{FORGET_HOURS:g} hours after its last call"
    )

    @classmethod
    def of(cls, view: WorkerView) -> WorkerPublic:
        r = view.record
        return cls(
            worker_id=r.worker_id,
            services=list(r.services),
            labels=dict(r.labels),
            sdk_version=r.sdk_version,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            in_flight=r.in_flight,
            stale=view.stale,
        )


class WorkerList(BaseModel):
    workers: list[WorkerPublic]


@router.get(
    "",
    operation_id="listWorkers",
    summary="Workers seen lately: services, labels, SDK version, last seen, tasks in flight",
    responses=problem_responses(401, 503),
)
async def list_workers(services: Services, _: Caller) -> WorkerList:
    views = await services.orchestrator.workers.list()
    return WorkerList(workers=[WorkerPublic.of(v) for v in views])
