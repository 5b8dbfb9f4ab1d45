"""Scenario templates as loaded from a catalog: parameters, tasks, dependencies.

Everything here is checked at load time; only what depends on request parameters (a
templated `count`, payload rendering) is left to plan time (see `expand.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scenarist.core.model import JSON
from scenarist.core.params import ParamSpec, validate_params
from scenarist.core.render import CompiledLeaf

MAX_PLAN_TASKS = 10_000  # tasks in one expanded plan, and the largest literal count


class DependencyMode(StrEnum):
    AUTO = "auto"  # zip when both tasks are multiplied with equal counts, else all
    ALL = "all"  # depend on every copy of the parent
    ZIP = "zip"  # copy i depends on the parent's copy i; counts must be equal


@dataclass(frozen=True, slots=True)
class Dependency:
    task: str
    mode: DependencyMode = DependencyMode.AUTO

    def describe(self) -> JSON:
        if self.mode is DependencyMode.AUTO:
            return self.task
        return {"task": self.task, "mode": self.mode.value}


# A payload template: the YAML value with each string leaf that holds template syntax
# replaced by its CompiledLeaf (plain text stays a str).
PayloadTemplate = Any


@dataclass(frozen=True, slots=True, eq=False)
class TaskTemplate:
    id: str
    service: str
    depends_on: tuple[Dependency, ...]
    count: int | CompiledLeaf | None  # None: one task with the bare id
    payload: Mapping[str, PayloadTemplate]
    max_attempts: int
    timeout_seconds: float
    description: str = ""
    line: int = 0

    @property
    def multiplied(self) -> bool:
        return self.count is not None

    def describe(self) -> dict[str, JSON]:
        count = self.count.source if isinstance(self.count, CompiledLeaf) else self.count
        described: dict[str, JSON] = {
            "id": self.id,
            "service": self.service,
            "depends_on": [d.describe() for d in self.depends_on],
            "max_attempts": self.max_attempts,
            "timeout_seconds": self.timeout_seconds,
        }
        if count is not None:
            described["count"] = count
        if self.description:
            described["description"] = self.description
        return described


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioTemplate:
    name: str
    description: str
    params: tuple[ParamSpec, ...]
    tasks: tuple[TaskTemplate, ...]  # topological order, stable by catalog order
    line: int = 0

    def validate(self, params: Mapping[str, JSON]) -> dict[str, JSON]:
        """Request parameters checked against the declared specs, defaults filled in."""
        return validate_params(self.params, params)

    def describe(self) -> dict[str, JSON]:
        """The template as `GET /templates` shows it: a JSON Schema of its parameters."""
        return {
            "name": self.name,
            "description": self.description,
            "params": {
                "type": "object",
                "properties": {spec.name: spec.describe() for spec in self.params},
                "required": [spec.name for spec in self.params if spec.required],
                "additionalProperties": False,
            },
            "tasks": [task.describe() for task in self.tasks],
        }
