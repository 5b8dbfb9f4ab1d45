"""Request and response models at the HTTP edge (`XCreate` in, `XPublic` out).

Times are POSIX seconds (floats). Strings and JSON values are bounded so that no request
can make the server allocate without limit; the body itself is capped by `limits.py`.
Request bodies are strict (`StrictBody`): an unknown field or a value of another JSON type
is refused, never ignored or converted.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from scenarist.api.timing_schemas import ATTEMPTS_TEXT, AttemptPublic, attempts_public
from scenarist.api.usage_schemas import USAGE_TEXT, UsageReport
from scenarist.core.durations import AttemptSpan
from scenarist.core.errors import ParamError
from scenarist.core.explain import Failure, FailureReason, progress_summary
from scenarist.core.explain import failures as explain_failures
from scenarist.core.explain import skipped_because as explain_skips
from scenarist.core.model import Lane, Progress, Scenario, ScenarioStatus, Task, TaskStatus
from scenarist.service.policy import Limits

MAX_JSON_DEPTH = 16
LIMITS = Limits()
SEED_GENERATE_EXAMPLE: dict[str, Any] = {
    "scenario": "CreateVideo",
    "description": "A video about cats",
    "slides_count": 3,
}


# What every store can encode (orjson writes 64-bit integers; JSON has no NaN/Infinity).
JSON_INT_MIN, JSON_INT_MAX = -(2**63), 2**64 - 1


def check_json_depth(value: Any) -> Any:
    """Refuse what a store cannot keep as sent: JSON nested deeper than MAX_JSON_DEPTH
    (pydantic has no depth limit of its own), integers beyond 64 bits (Python's parser
    reads any size; the stores' encoder raised on them, a 500 after a claim) and NaN,
    Infinity or an overflowing float (not JSON; they were stored as null)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not JSON_INT_MIN <= item <= JSON_INT_MAX:
            raise ValueError(f"integer {str(item)[:20]}... is outside the 64-bit range")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{item} is not a JSON number (NaN and Infinity are not JSON)")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_depth)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LeaseToken = Annotated[str, Field(min_length=1, max_length=200)]
ResultRef = Annotated[str, Field(max_length=2048, examples=["output/video.mp4"])]
ErrorText = Annotated[str, Field(min_length=1, max_length=8192)]
LeaseSeconds = Annotated[
    float, Field(ge=LIMITS.min_lease_seconds, le=LIMITS.max_lease_seconds, allow_inf_nan=False)
]


class StrictBody(BaseModel):
    """A request body. A misspelled field is refused rather than ignored (`lease_second`
    used to give the default lease, `retriable: false` a retry), and values keep their
    JSON type: no `false` for a number, no `"5"` for an integer, no `1` for a boolean.
    Integral JSON numbers still fill float fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- submit -------------------------------------------------------------------------------


class GenerateCreate(StrictBody):
    """Parameters go at the top level (the seed's shape) or under `params`; unknown names
    there are refused by the template's parameter check (422 invalid-param)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                SEED_GENERATE_EXAMPLE,
                {"scenario": "CreateVoice", "params": {"description": "Hi", "count": 2}},
            ]
        },
    )

    scenario: ShortText = Field(description="template name, e.g. CreateVideo")
    params: JsonObject | None = None
    callback_url: Annotated[HttpUrl, Field(strict=False)] | None = Field(
        default=None, description="POSTed (HMAC-signed) once the scenario ends"
    )
    priority: Annotated[Lane, Field(strict=False)] = Field(
        default=Lane.NORMAL,
        description="the scenario's lane: a lease takes every ready task of a higher lane "
        "first (interactive, then normal, then batch), then the level order inside the "
        "lane. A template parameter named `priority` goes under `params`",
    )
    tenant: ShortText | None = Field(
        default=None,
        description="the tenant whose fair share the scenario's tasks take (the catalog's "
        "`tenants`); default: the bearer token's name when the catalog names such a tenant, "
        "else `default`. A template parameter named `tenant` goes under `params`",
    )

    @model_validator(mode="after")
    def _bounded_extras(self) -> GenerateCreate:
        check_json_depth(self.model_extra or {})
        return self

    def merged_params(self) -> dict[str, Any]:
        """Top-level extras and `params` together; a name given twice is an error."""
        extras = dict(self.model_extra or {})
        nested = dict(self.params or {})
        both = sorted(set(extras) & set(nested))
        if both:
            raise ParamError(
                f"parameter {both[0]!r} is given both at the top level and under params",
                field=both[0],
            )
        return {**extras, **nested}


CACHED_TEXT = "its success was copied from an earlier run with the same inputs (step cache)"
CACHED_FROM_TEXT = "the task whose success a cached task copies"


class TaskSummary(BaseModel):
    id: str
    name: str
    service: str
    level: int
    depends_on: list[str]
    status: TaskStatus
    run: int = Field(default=1, description="the current run (a rerun starts a new one)")
    runs: int = Field(default=1, description="runs in the task's history, this one included")
    cached: bool = Field(default=False, description=CACHED_TEXT)
    cached_from: str | None = Field(default=None, description=CACHED_FROM_TEXT)

    @classmethod
    def of(cls, task: Task) -> TaskSummary:
        return cls(**summary_of(task))


def summary_of(task: Task) -> dict[str, Any]:
    """TaskSummary's fields of `task`, for the models that extend it."""
    return {
        "id": task.id,
        "name": task.name,
        "service": task.service,
        "level": task.level,
        "depends_on": list(task.depends_on),
        "status": task.status,
        "run": task.run,
        "runs": task.runs,
        "cached": task.cached,
        "cached_from": task.cached_from,
    }


class GeneratePublic(BaseModel):
    scenario_id: str
    scenario: str = Field(description="template name")
    status: ScenarioStatus
    task_count: int
    created: bool = Field(description="false when an Idempotency-Key replayed a submission")
    tasks: list[TaskSummary]


class PlannedTask(BaseModel):
    name: str
    service: str
    level: int
    depends_on: list[str]
    payload: dict[str, Any]
    dynamic: bool = Field(
        default=False,
        description="an unexpanded `for_each` group: one node until its parents' results "
        "say how many instances it has",
    )
    for_each: str | None = Field(default=None, description="the group's `for_each`")


class DryRunPublic(BaseModel):
    dry_run: Literal[True] = True
    scenario: str
    params: dict[str, Any]
    task_count: int
    levels: int
    tasks: list[PlannedTask]


# --- scenarios and tasks ------------------------------------------------------------------


class ProgressPublic(BaseModel):
    total: int
    finished: int
    percent: float
    by_status: dict[str, int]
    by_service: dict[str, dict[str, int]]
    summary: str = Field(
        description="finished tasks by outcome, e.g. `9/9 finished: 6 succeeded, 1 failed, "
        "2 skipped` (percent counts every finished task, failed ones included)"
    )
    growing: bool = Field(
        default=False,
        description="a `for_each` group has not expanded yet: `total` counts it as one task "
        "until its parents' results say how many instances it has",
    )

    @classmethod
    def of(cls, progress: Progress) -> ProgressPublic:
        return cls(
            total=progress.total,
            finished=progress.finished,
            percent=progress.percent,
            summary=progress_summary(progress),
            growing=progress.growing,
            by_status={str(s): n for s, n in progress.by_status.items()},
            by_service={
                service: {str(s): n for s, n in counts.items()}
                for service, counts in progress.by_service.items()
            },
        )


class ScenarioSummary(BaseModel):
    id: str
    scenario: str = Field(description="template name")
    status: ScenarioStatus
    progress: ProgressPublic
    created_at: float
    started_at: float | None
    finished_at: float | None

    @classmethod
    def of(cls, scenario: Scenario) -> ScenarioSummary:
        return cls(**summary_fields(scenario))


def summary_fields(scenario: Scenario) -> dict[str, Any]:
    return {
        "id": scenario.id,
        "scenario": scenario.template,
        "status": scenario.status,
        "progress": ProgressPublic.of(scenario.progress),
        "created_at": scenario.created_at,
        "started_at": scenario.started_at,
        "finished_at": scenario.finished_at,
    }


class FailurePublic(BaseModel):
    """A task that failed for good: its error, why it was not retried, what it skipped."""

    task: str = Field(description="task name")
    error: str | None
    attempt: int
    max_attempts: int
    reason: FailureReason = Field(
        description="`not_retryable`: failed for good before its attempts ran out; "
        "`attempts_exhausted`: its last allowed attempt failed"
    )
    description: str = Field(examples=["failed for good after attempt 1 of 3 (not retryable)"])
    skipped: list[str] = Field(description="tasks skipped because of this failure")

    @classmethod
    def of(cls, failure: Failure) -> FailurePublic:
        return cls(
            task=failure.task,
            error=failure.error,
            attempt=failure.attempt,
            max_attempts=failure.max_attempts,
            reason=failure.reason,
            description=failure.description,
            skipped=list(failure.skipped),
        )


SKIPPED_BECAUSE_TEXT = "on a skipped task: the failed or cancelled upstream tasks that caused it"


class ScenarioPage(BaseModel):
    items: list[ScenarioSummary]
    next_cursor: str | None


class TaskPublic(BaseModel):
    id: str
    scenario_id: str
    name: str
    service: str
    level: int
    status: TaskStatus
    depends_on: list[str]
    dependents: list[str]
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout_seconds: float
    created_at: float
    queued_at: float | None
    available_at: float | None
    started_at: float | None
    finished_at: float | None
    lease_expires_at: float | None
    lease_seconds: float | None = Field(
        default=None, description="the lease length asked for; a heartbeat renews it"
    )
    worker_id: str | None
    result_ref: str | None
    result: dict[str, Any] | None
    error: str | None
    usage: dict[str, float] = Field(default_factory=dict, description=USAGE_TEXT)
    run: int = Field(default=1, description="the current run (a rerun starts a new one)")
    runs: int = Field(default=1, description="runs in the task's history, this one included")
    no_cache: bool = Field(default=False, description="this run may not come from a cache")
    cached: bool = Field(default=False, description=CACHED_TEXT)
    cached_from: str | None = Field(default=None, description=CACHED_FROM_TEXT)

    @classmethod
    def of(cls, task: Task) -> TaskPublic:
        return cls(
            id=task.id,
            scenario_id=task.scenario_id,
            name=task.name,
            service=task.service,
            level=task.level,
            status=task.status,
            depends_on=list(task.depends_on),
            dependents=list(task.dependents),
            payload=dict(task.payload),
            attempt=task.attempt,
            max_attempts=task.max_attempts,
            timeout_seconds=task.timeout_seconds,
            created_at=task.created_at,
            queued_at=task.queued_at,
            available_at=task.available_at,
            started_at=task.started_at,
            finished_at=task.finished_at,
            lease_expires_at=task.lease_expires_at,
            lease_seconds=task.lease_seconds,
            worker_id=task.worker_id,
            result_ref=task.result_ref,
            result=dict(task.result) if task.result is not None else None,
            error=task.error,
            usage=dict(task.usage or {}),
            run=task.run,
            runs=task.runs,
            no_cache=task.no_cache,
            cached=task.cached,
            cached_from=task.cached_from,
        )


class TaskDetailPublic(TaskPublic):
    """`GET /tasks/{id}`: the task plus why it ended as it did, derived from its
    scenario's tasks at read time (the answers of worker calls stay plain `TaskPublic`)."""

    skipped_because: list[str] = Field(default_factory=list, description=SKIPPED_BECAUSE_TEXT)
    failure: FailurePublic | None = Field(
        default=None, description="on a failed task: its reason and the skips it caused"
    )
    attempts: list[AttemptPublic] = Field(default_factory=list, description=ATTEMPTS_TEXT)

    @classmethod
    def explained(
        cls, task: Task, scenario_tasks: list[Task], attempts: list[AttemptSpan] | None = None
    ) -> TaskDetailPublic:
        """`scenario_tasks` is needed only for a failed or skipped task (else pass [])."""
        skips = explain_skips(scenario_tasks)
        failure = next(
            (f for f in explain_failures(scenario_tasks, skips) if f.task == task.name), None
        )
        return cls(
            **TaskPublic.of(task).model_dump(),
            skipped_because=list(skips.get(task.name, ())),
            failure=FailurePublic.of(failure) if failure is not None else None,
            attempts=attempts_public(attempts),
        )


class TaskStatusUpdate(StrictBody):
    """The seed's status update: `processing` claims, `success`/`failed` finish."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "success", "result_ref": "output/video.mp4"}]}
    )

    status: Annotated[TaskStatus, Field(strict=False)]  # the enum from its JSON string
    result_ref: ResultRef | None = None
    result: JsonObject | None = None
    error: ErrorText | None = None
    retryable: bool = Field(default=False, description="on failed: retry while attempts remain")
    worker_id: ShortText | None = None
    usage: UsageReport | None = None
