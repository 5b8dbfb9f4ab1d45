"""`POST /scenarios/{id}/rerun` and `GET /tasks/{id}/history` (decision 60)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarist.api.schemas import JsonObject, ScenarioSummary, ShortText, StrictBody
from scenarist.core.errors import ParamError
from scenarist.core.model import RunRecord, Scenario, Task, TaskStatus
from scenarist.core.rerun import run_record

MAX_RERUN_TASKS = 1000
MAX_OVERRIDE_BYTES = 64 * 1024  # one task's payload override, as JSON


class RerunCreate(StrictBody):
    """The named tasks and every task below them run again; `payload` overrides are
    merged into the named tasks' payloads (top-level keys replaced)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"tasks": ["slide_prompt_2"], "payload": {"slide_prompt_2": {"style": "noir"}}}
            ]
        }
    )

    tasks: list[ShortText] = Field(min_length=1, max_length=MAX_RERUN_TASKS)
    payload: dict[ShortText, JsonObject] = Field(
        default_factory=dict, description="task name -> keys to replace in its payload"
    )
    cancel_running: bool = Field(
        default=False, description="cancel the leases of processing tasks first (else 409)"
    )
    no_cache: bool = Field(default=False, description="the new runs may not come from a cache")

    @model_validator(mode="after")
    def _overrides_of_named_tasks(self) -> RerunCreate:
        for name, override in self.payload.items():
            if name not in self.tasks:
                raise ParamError(
                    f"payload override for {name!r}, which is not among the tasks to rerun",
                    field=f"payload.{name}",
                )
            if len(orjson.dumps(override)) > MAX_OVERRIDE_BYTES:
                raise ParamError(
                    f"payload override for {name!r} is larger than {MAX_OVERRIDE_BYTES} bytes",
                    field=f"payload.{name}",
                )
        return self


class RerunPublic(ScenarioSummary):
    rerun: list[str] = Field(description="the tasks that run again, in plan order")

    @classmethod
    def answer(cls, scenario: Scenario, names: tuple[str, ...]) -> RerunPublic:
        return cls(**ScenarioSummary.of(scenario).model_dump(), rerun=list(names))


class RunPublic(BaseModel):
    """One run of a task: the current one, or one a rerun ended."""

    run: int
    attempt: Annotated[int, Field(description="attempts the run used")]
    status: TaskStatus
    worker_id: str | None
    queued_at: float | None
    started_at: float | None = Field(description="its last attempt's lease")
    finished_at: float | None
    result_ref: str | None
    result: dict[str, Any] | None
    error: str | None
    payload: dict[str, Any] = Field(description="the payload the run was given")

    @classmethod
    def of(cls, record: RunRecord) -> RunPublic:
        return cls(
            run=record.run,
            attempt=record.attempt,
            status=record.status,
            worker_id=record.worker_id,
            queued_at=record.queued_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            result_ref=record.result_ref,
            result=None if record.result is None else dict(record.result),
            error=record.error,
            payload=dict(record.payload),
        )

    @classmethod
    def current(cls, task: Task) -> RunPublic:
        return cls.of(run_record(asdict(task), payload=task.payload, result=task.result))


class TaskHistoryPublic(BaseModel):
    task_id: str
    run: int = Field(description="the current run")
    runs: int = Field(description="the runs listed: the current one and those kept")
    items: list[RunPublic] = Field(description="newest first; the current run is the first")

    @classmethod
    def of(cls, task: Task, ended: list[RunRecord]) -> TaskHistoryPublic:
        items = [RunPublic.current(task), *(RunPublic.of(r) for r in ended)]
        return cls(task_id=task.id, run=task.run, runs=len(items), items=items)
