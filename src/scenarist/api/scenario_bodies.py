"""The bodies of `GET /scenarios/{id}` and `GET /scenarios/{id}/tasks`: the scenario with
its tasks (or without them, for scenarios of thousands of tasks), a page of tasks, and
the failures that explain how it ended."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from scenarist.api.schemas import (
    SKIPPED_BECAUSE_TEXT,
    FailurePublic,
    ScenarioSummary,
    TaskSummary,
    summary_fields,
    summary_of,
)
from scenarist.api.timing_schemas import ATTEMPTS_TEXT, ETA_TEXT, AttemptPublic, attempts_public
from scenarist.api.usage_schemas import USAGE_TEXT
from scenarist.core.durations import AttemptSpan
from scenarist.core.explain import failures as explain_failures
from scenarist.core.explain import skipped_because as explain_skips
from scenarist.core.groups import TaskPage
from scenarist.core.model import Lane, Scenario, Task
from scenarist.core.usage import sum_usage


class ScenarioTaskPublic(TaskSummary):
    """A task in a scenario's body: the summary plus what explains its outcome."""

    attempt: int
    max_attempts: int
    error: str | None
    skipped_because: list[str] = Field(default_factory=list, description=SKIPPED_BECAUSE_TEXT)
    attempts: list[AttemptPublic] = Field(default_factory=list, description=ATTEMPTS_TEXT)
    usage: dict[str, float] = Field(default_factory=dict, description=USAGE_TEXT)

    @classmethod
    def explained(
        cls,
        task: Task,
        skips: Mapping[str, Sequence[str]],
        attempts: list[AttemptSpan] | None = None,
    ) -> ScenarioTaskPublic:
        return cls(
            **summary_of(task),
            attempt=task.attempt,
            max_attempts=task.max_attempts,
            error=task.error,
            skipped_because=list(skips.get(task.name, ())),
            attempts=attempts_public(attempts),
            usage=dict(task.usage or {}),
        )


class TasksDetail(StrEnum):
    """How much of a scenario's task list its body carries."""

    ALL = "all"
    NONE = "none"


class ScenarioPublic(ScenarioSummary):
    params: dict[str, Any]
    callback_url: str | None
    priority: Lane = Field(default=Lane.NORMAL, description="its lane, as submitted")
    tenant: str = Field(default="default", description="its tenant (the catalog's `tenants`)")
    eta_seconds: float | None = Field(default=None, description=ETA_TEXT)
    tolerated_failures: int = Field(
        default=0,
        description="failed or skipped tasks whose failure a join or `optional: true` "
        "tolerated; the scenario is `success` when every other task succeeded",
    )
    usage: dict[str, float] | None = Field(
        description="its tasks' usage added up (every attempt); null with `?tasks=none`"
    )
    tasks: list[ScenarioTaskPublic] | None = Field(
        description="every task in plan order; null with `?tasks=none` (page them with "
        "`GET /scenarios/{id}/tasks`)"
    )
    failures: list[FailurePublic] | None = Field(
        description="failed tasks (plan order) with their errors and the skips they caused; "
        "null with `?tasks=none` (finding them reads every task)"
    )

    @classmethod
    def with_tasks(
        cls,
        scenario: Scenario,
        tasks: list[Task] | None,
        *,
        attempts: Mapping[str, list[AttemptSpan]] | None = None,
        eta_seconds: float | None = None,
    ) -> ScenarioPublic:
        """The body with every task, or without tasks and failures when `tasks` is None."""
        head = {
            **summary_fields(scenario),
            "params": dict(scenario.params),
            "callback_url": scenario.callback_url,
            "priority": scenario.lane,
            "tenant": scenario.tenant,
            "eta_seconds": eta_seconds,
            "tolerated_failures": scenario.tolerated_failures,
        }
        if tasks is None:
            return cls(**head, usage=None, tasks=None, failures=None)
        skips = explain_skips(tasks)
        spans = attempts or {}
        return cls(
            **head,
            usage=sum_usage(t.usage for t in tasks),
            tasks=[ScenarioTaskPublic.explained(t, skips, spans.get(t.name)) for t in tasks],
            failures=[FailurePublic.of(f) for f in explain_failures(tasks, skips)],
        )


class ScenarioTaskPage(BaseModel):
    items: list[ScenarioTaskPublic] = Field(description="tasks in plan order")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null last")

    @classmethod
    def of(
        cls,
        tasks: list[Task],
        page: TaskPage,
        attempts: Mapping[str, list[AttemptSpan]] | None = None,
    ) -> ScenarioTaskPage:
        skips = explain_skips(tasks)  # a skip's cause may lie outside the page
        spans = attempts or {}
        items = [ScenarioTaskPublic.explained(t, skips, spans.get(t.name)) for t in page.tasks]
        return cls(items=items, next_cursor=page.next_cursor)
