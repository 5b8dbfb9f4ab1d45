"""Scenario templates as loaded from a catalog: parameters, tasks, dependencies.

Everything here is checked at load time; only what depends on request parameters (a
templated `count`, payload rendering) is left to plan time (see `expand.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scenarist.core.model import JSON
from scenarist.core.params import ParamSpec, validate_params
from scenarist.core.render import CompiledLeaf

MAX_PLAN_TASKS = 10_000  # tasks in one expanded plan, and the largest literal count
DEFAULT_MAX_ITEMS = 1_000  # instances one `for_each` group may expand into, unless it says


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


class JoinKind(StrEnum):
    ALL = "all"  # every parent succeeded (today's rule)
    ANY = "any"  # at least one parent succeeded
    MIN_SUCCESS = "min_success"  # at least K parents succeeded
    MIN_SUCCESS_RATIO = "min_success_ratio"  # at least ceil(r * parents) succeeded


@dataclass(frozen=True, slots=True)
class Join:
    """When a task with parents may run: every parent is final and enough succeeded."""

    kind: JoinKind = JoinKind.ALL
    value: float = 0  # K for min_success, r for min_success_ratio

    def need(self, parents: int) -> int | None:
        """Successes required among `parents` distinct parents; None: all of them (the
        rule without a join, where any loss skips the task)."""
        if self.kind is JoinKind.ALL:
            return None
        if self.kind is JoinKind.ANY:
            return min(1, parents)
        if self.kind is JoinKind.MIN_SUCCESS:
            return int(self.value)
        return math.ceil(self.value * parents - 1e-9)

    def describe(self) -> JSON:
        if self.kind in (JoinKind.ALL, JoinKind.ANY):
            return self.kind.value
        value = int(self.value) if self.kind is JoinKind.MIN_SUCCESS else self.value
        return {self.kind.value: value}


@dataclass(frozen=True, slots=True)
class ForEach:
    """`for_each`: a template over `results.<parent>` giving a list (one instance per
    item), or the name of an upstream dynamic group (one instance per instance, zipped)."""

    source: str
    leaf: CompiledLeaf | None  # the template; None when `group` is set
    group: str | None = None  # the upstream dynamic group it zips with
    parents: tuple[str, ...] = ()  # the parents whose results the template reads

    def describe(self) -> JSON:
        return self.source


# A payload template: the YAML value with each string leaf that holds template syntax
# replaced by its CompiledLeaf (plain text stays a str).
PayloadTemplate = Any


@dataclass(frozen=True, slots=True)
class Concurrency:
    """A task template's `concurrency`: `key` rendered at plan time like a payload leaf."""

    key: CompiledLeaf | str
    limit: int

    def describe(self) -> dict[str, JSON]:
        key = self.key.source if isinstance(self.key, CompiledLeaf) else self.key
        return {"key": key, "limit": self.limit}


# A label value as loaded: plain text, or a template rendered at plan time.
LabelSource = CompiledLeaf | str


@dataclass(frozen=True, slots=True)
class AffinityTemplate:
    """A task template's `requires`, `prefers` and `prefer_wait_seconds` (core/affinity.py)."""

    requires: Mapping[str, LabelSource]
    prefers: Mapping[str, LabelSource]
    prefer_wait: float

    def describe(self) -> dict[str, JSON]:
        def sources(labels: Mapping[str, LabelSource]) -> dict[str, JSON]:
            return {k: v.source if isinstance(v, CompiledLeaf) else v for k, v in labels.items()}

        described: dict[str, JSON] = {}
        if self.requires:
            described["requires"] = sources(self.requires)
        if self.prefers:
            described["prefers"] = sources(self.prefers)
            described["prefer_wait_seconds"] = self.prefer_wait
        return described


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
    for_each: ForEach | None = None  # a dynamic group: expands when its parents succeed
    max_items: int | None = None  # None: DEFAULT_MAX_ITEMS (see item_limit)
    join: Join = Join()
    optional: bool = False  # its failure fails nothing and blocks nothing
    max_parallel: int | None = None  # instances processing at once, all workers together
    # Step cache (decision 64): seconds a success may stand in for a run with the same
    # inputs; None: not cached.
    cache_ttl: int | None = None
    concurrency: Concurrency | None = None  # tasks sharing the rendered key, all workers
    affinity: AffinityTemplate | None = None  # which workers may lease it (core/affinity.py)

    @property
    def multiplied(self) -> bool:
        return self.count is not None or self.for_each is not None

    @property
    def dynamic(self) -> bool:
        return self.for_each is not None

    @property
    def item_limit(self) -> int:
        return DEFAULT_MAX_ITEMS if self.max_items is None else self.max_items

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
        if self.for_each is not None:
            described["for_each"] = self.for_each.describe()
            described["max_items"] = self.item_limit
        if self.join.kind is not JoinKind.ALL:
            described["join"] = self.join.describe()
        if self.optional:
            described["optional"] = True
        if self.max_parallel is not None:
            described["max_parallel"] = self.max_parallel
        if self.cache_ttl is not None:
            described["cache"] = {"ttl_seconds": self.cache_ttl}
        if self.concurrency is not None:
            described["concurrency"] = self.concurrency.describe()
        if self.affinity is not None:
            described.update(self.affinity.describe())
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
