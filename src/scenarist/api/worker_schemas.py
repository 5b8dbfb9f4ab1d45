"""Edge models of the worker protocol: lease, heartbeat, complete, fail, batch complete,
and the queue statistics workers and autoscalers read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from scenarist.api.problems import Problem
from scenarist.api.schemas import (
    LIMITS,
    ErrorText,
    JsonObject,
    LeaseSeconds,
    LeaseToken,
    ResultRef,
    ShortText,
    StrictBody,
    TaskPublic,
)
from scenarist.api.usage_schemas import UsageReport
from scenarist.core.model import Completion, QueueStats, TaskStatus
from scenarist.core.tenants import TenantView
from scenarist.core.workers import (
    LABEL_KEY_PATTERN,
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
)

LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LABEL_KEY, pattern=LABEL_KEY_PATTERN)
]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]
WorkerLabels = Annotated[
    dict[LabelName, LabelValue],
    Field(
        max_length=MAX_LABELS,
        description=f"what this worker has, e.g. a GPU or a loaded model (at most "
        f"{MAX_LABELS} pairs); replaces the labels of its earlier leases",
        examples=[{"gpu": "a100", "model": "sdxl"}],
    ),
]


class LeaseCreate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"max_tasks": 1, "lease_seconds": 60, "wait_seconds": 20}]}
    )

    max_tasks: int = Field(default=1, ge=1, le=LIMITS.max_batch)
    lease_seconds: LeaseSeconds | None = Field(
        default=None, description="lease length; the task's timeout when omitted"
    )
    wait_seconds: float = Field(
        default=0.0,
        ge=0.0,
        le=LIMITS.max_wait_seconds,
        allow_inf_nan=False,
        description="long-poll: wait up to this long for a task to become ready",
    )
    worker_id: ShortText | None = Field(
        default=None, description="names the worker in the workers registry (GET /workers)"
    )
    labels: WorkerLabels | None = None
    sdk_version: ShortText | None = Field(
        default=None, description="the worker SDK's version, shown by GET /workers"
    )


MAX_LEASE_SERVICES = 64


class ServicesLeaseCreate(LeaseCreate):
    """A lease over several services: one long poll for a worker serving all of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "services": ["text-service", "audio-service"],
                    "max_tasks": 32,
                    "lease_seconds": 60,
                    "wait_seconds": 20,
                }
            ]
        }
    )

    services: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        min_length=1,
        max_length=MAX_LEASE_SERVICES,
        description="services to lease from; best tasks first across them "
        "(higher priority, then older), the list order gives no precedence",
    )
    complete: list[BatchItem] = Field(
        default_factory=list,
        max_length=LIMITS.max_batch,
        description="report these leased tasks done first (as POST /tasks/complete), then "
        "lease: a worker's round in one request",
    )


class LeasedTask(BaseModel):
    id: str
    scenario_id: str
    name: str
    service: str
    level: int
    payload: dict[str, Any]
    inputs: list[dict[str, Any]] = Field(description="upstream results, in dependency order")
    attempt: int
    max_attempts: int
    lease_token: str
    lease_expires_at: float
    traceparent: str | None = Field(
        default=None,
        description="W3C trace context of this attempt's span when tracing is on: continue "
        "it so the handler's own spans nest under the task",
    )


class LeasePublic(BaseModel):
    tasks: list[LeasedTask]


class HeartbeatCreate(StrictBody):
    lease_token: LeaseToken
    lease_seconds: LeaseSeconds | None = None


class HeartbeatPublic(BaseModel):
    id: str
    status: TaskStatus
    lease_token: str
    lease_expires_at: float


class CompleteCreate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lease_token": "9f2c4e1a0b7d3c55.1",
                    "result_ref": "output/video.mp4",
                    "result": {"mime_type": "video/mp4", "duration": 12.5},
                }
            ]
        }
    )

    lease_token: LeaseToken
    result_ref: ResultRef | None = None
    result: JsonObject | None = None
    usage: UsageReport | None = None


class CompletionPublic(TaskPublic):
    """The completed task, and whether this call completed it or repeated a completion
    already made with the same lease token (answered, not refused: decision 2)."""

    duplicate: bool = Field(description="true when the task was already completed by this token")

    @classmethod
    def of_completion(cls, completion: Completion) -> CompletionPublic:
        fields = TaskPublic.of(completion.task).model_dump()
        return cls(**fields, duplicate=completion.duplicate)


class FailCreate(StrictBody):
    lease_token: LeaseToken
    error: ErrorText
    retryable: bool = True
    usage: UsageReport | None = None


class BatchItem(StrictBody):
    id: str = Field(min_length=3, max_length=400, description="task id")
    lease_token: LeaseToken
    result_ref: ResultRef | None = None
    result: JsonObject | None = None
    usage: UsageReport | None = None


class BatchCompleteCreate(StrictBody):
    items: list[BatchItem] = Field(min_length=1, max_length=LIMITS.max_batch)


class BatchOutcome(BaseModel):
    id: str
    ok: bool
    duplicate: bool = False
    task: TaskPublic | None = None
    problem: Problem | None = None


class BatchCompletePublic(BaseModel):
    outcomes: list[BatchOutcome]


class ServicesLeasePublic(LeasePublic):
    outcomes: list[BatchOutcome] = Field(
        description="one per `complete` item, in order (empty when none were given)"
    )


ServicesLeaseCreate.model_rebuild()


class QueuePublic(BaseModel):
    service: str
    ready: int = Field(description="leasable now")
    delayed: int = Field(description="queued but waiting out a retry backoff")
    in_flight: int = Field(description="leased, processing")
    oldest_ready_age: float | None = Field(description="seconds the oldest ready task waited")
    held: int = Field(
        default=0,
        description="of the ready ones, held back because their group has `max_parallel` "
        "tasks processing",
    )
    held_by_key: int = Field(
        default=0,
        description="of the ready ones, held back because their `concurrency` key has "
        "`limit` tasks processing",
    )
    max_in_flight: int | None = Field(
        default=None, description="the service's cap on processing tasks (catalog), if any"
    )
    tokens: float | None = Field(
        default=None, description="tokens left now in the service's rate-limit bucket, if any"
    )
    held_by_cap: int = Field(
        default=0, description="of the ready ones, held back because `max_in_flight` is reached"
    )
    held_by_rate: int = Field(
        default=0, description="of the ready ones, held back because the bucket is empty"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="task templates whose `requires` labels no live worker of the service "
        "has: their tasks wait until one comes (decision 78)",
    )

    @classmethod
    def of(cls, stats: QueueStats, warnings: Sequence[str] = ()) -> QueuePublic:
        return cls(
            warnings=list(warnings),
            service=stats.service,
            ready=stats.ready,
            delayed=stats.delayed,
            in_flight=stats.in_flight,
            oldest_ready_age=stats.oldest_ready_age,
            held=stats.held,
            held_by_key=stats.held_by_key,
            max_in_flight=stats.max_in_flight,
            tokens=None if stats.tokens is None else round(stats.tokens, 3),
            held_by_cap=stats.held_by_cap,
            held_by_rate=stats.held_by_rate,
        )


class TenantPublic(BaseModel):
    tenant: str
    ready: int = Field(description="its tasks leasable now, every service")
    in_flight: int = Field(description="its tasks being processed, every service")
    weight: float = Field(description="its share of each service against the others'")
    max_in_flight: int | None = Field(description="its cap on processing tasks, if any")

    @classmethod
    def of(cls, view: TenantView) -> TenantPublic:
        return cls(
            tenant=view.tenant,
            ready=view.ready,
            in_flight=view.in_flight,
            weight=view.weight,
            max_in_flight=view.max_in_flight,
        )


class QueueList(BaseModel):
    queues: list[QueuePublic]
    tenants: list[TenantPublic] = Field(
        default_factory=list,
        description="each tenant of the catalog's `tenants` (and the default one when it has "
        "tasks): its ready and processing tasks, weight and cap; empty without tenants",
    )
