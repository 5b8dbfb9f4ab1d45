"""Turning one scenario's YAML mapping into a checked ScenarioTemplate.

Every error is a CatalogError naming the file, the line, the scenario and the task. A
problem in one parameter, task, task field or dependency is kept (`Problems`) and checking
goes on with the next, so that a load reports them all. A bad parameter or dependency is
left out; a task with a bad field keeps its place in the graph with that field's default,
so the graph checks see it and do not report it again as an unknown dependency.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from scenarist.core.catalog_affinity import AFFINITY_KEYS, parse_affinity
from scenarist.core.catalog_dynamic import dynamic_problems, parse_run_time_keys
from scenarist.core.catalog_problems import Problems
from scenarist.core.catalog_services import parse_concurrency
from scenarist.core.catalog_where import (
    Where,
    check_keys,
    field_where,
    line_of,
    positive_int,
    positive_number,
)
from scenarist.core.graph import find_cycle, stable_topological_order
from scenarist.core.params import ParamSpec, SpecError, parse_param_spec
from scenarist.core.render import CompiledLeaf, Renderer, TemplateCompileError
from scenarist.core.template import (
    MAX_PLAN_TASKS,
    Dependency,
    DependencyMode,
    PayloadTemplate,
    ScenarioTemplate,
    TaskTemplate,
)

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
SCENARIO_KEYS = frozenset({"description", "params", "tasks"})
TASK_KEYS = frozenset(
    {"id", "service", "depends_on", "count", "payload", "max_attempts", "timeout_seconds"}
    | {"description", "for_each", "max_items", "join", "optional", "max_parallel", "cache"}
    | {"concurrency"}
    | AFFINITY_KEYS
)
DEFAULTS_KEYS = frozenset({"max_attempts", "timeout_seconds"})


@dataclass(frozen=True, slots=True)
class TaskDefaults:
    max_attempts: int = 3
    timeout_seconds: float = 300.0


def parse_defaults(where: Where, raw: object, problems: Problems) -> TaskDefaults:
    if not isinstance(raw, Mapping):
        where.fail("'defaults' must be a mapping")
    check_keys(where, raw, DEFAULTS_KEYS, "defaults", problems)
    base = TaskDefaults()
    attempts, timeout = raw.get("max_attempts"), raw.get("timeout_seconds")
    return TaskDefaults(
        max_attempts=base.max_attempts
        if attempts is None
        else problems.checked(
            partial(positive_int, where.at(line_of(raw, "max_attempts")), attempts, "max_attempts"),
            base.max_attempts,
        ),
        timeout_seconds=base.timeout_seconds
        if timeout is None
        else problems.checked(
            partial(
                positive_number,
                where.at(line_of(raw, "timeout_seconds")),
                timeout,
                "timeout_seconds",
            ),
            base.timeout_seconds,
        ),
    )


@dataclass(frozen=True, slots=True)
class ScenarioParser:
    file: str
    renderer: Renderer
    defaults: TaskDefaults
    services: tuple[str, ...] | None
    problems: Problems  # the caller raises what it collected (see catalog.parse_catalog)

    def parse(self, name: str, raw: object, line: int | None) -> ScenarioTemplate:
        where = Where(self.file, line, scenario=name)
        if not NAME_PATTERN.match(name):
            with self.problems.recover():
                where.fail(f"scenario name {name!r} must match {NAME_PATTERN.pattern}")
        if not isinstance(raw, Mapping):
            where.fail("a scenario must be a mapping with description, params and tasks")
        check_keys(where, raw, SCENARIO_KEYS, "a scenario", self.problems)
        description = raw.get("description") or ""
        if not isinstance(description, str):
            with self.problems.recover():
                where.fail("'description' must be a string", line_of(raw, "description"))
            description = ""
        no_params: tuple[ParamSpec, ...] = ()
        params = self.problems.checked(
            partial(self._params, where.at(line_of(raw, "params")), raw.get("params")), no_params
        )
        tasks = self._tasks(where.at(line_of(raw, "tasks")), raw.get("tasks"))
        return ScenarioTemplate(name, description, params, tasks, line or 0)

    def _params(self, where: Where, raw: object) -> tuple[ParamSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            where.fail("'params' must be a mapping of parameter name to spec")
        specs = []
        for name, spec in raw.items():
            with self.problems.recover():
                specs.append(self._param(where.at(line_of(raw, name)), name, spec))
        return tuple(specs)

    def _param(self, where: Where, name: object, spec: object) -> ParamSpec:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            where.fail(f"parameter name {name!r} must match {NAME_PATTERN.pattern}")
        try:
            return parse_param_spec(name, spec)
        except SpecError as exc:
            where.fail(str(exc))

    def _tasks(self, where: Where, raw: object) -> tuple[TaskTemplate, ...]:
        if not isinstance(raw, list) or not raw:
            where.fail("'tasks' must be a non-empty list")
        tasks: dict[str, TaskTemplate] = {}
        for item in raw:
            with self.problems.recover():
                task = self._task(where.at(line_of(item)), item)
                if task.id in tasks:
                    Where(self.file, task.line, where.scenario, task.id).fail("duplicate task id")
                tasks[task.id] = task
        if not check_graph(Where(self.file, where.line, where.scenario), tasks, self.problems):
            return tuple(tasks.values())  # a cycle has no order; the load fails anyway
        edges = {
            t.id: [d.task for d in t.depends_on if d.task in tasks and d.task != t.id]
            for t in tasks.values()
        }
        return tuple(tasks[task_id] for task_id in stable_topological_order(list(tasks), edges))

    def _task(self, where: Where, raw: object) -> TaskTemplate:
        """A task with a bad field still loads, with that field's default, so the graph
        checks see its dependencies (and report nothing twice)."""
        if not isinstance(raw, Mapping):
            where.fail("a task must be a mapping with at least 'id' and 'service'")
        task_id = raw.get("id")
        if not isinstance(task_id, str) or not NAME_PATTERN.match(task_id):
            where.fail(f"task 'id' must match {NAME_PATTERN.pattern}, got {task_id!r}")
        where = Where(self.file, where.line, where.scenario, task_id)
        check_keys(where, raw, TASK_KEYS, "a task", self.problems)
        checked, at = self.problems.checked, partial(field_where, where, raw)
        return TaskTemplate(
            id=task_id,
            service=checked(partial(self._service, at("service"), raw.get("service")), ""),
            depends_on=checked(
                partial(parse_depends_on, at("depends_on"), raw.get("depends_on"), self.problems),
                (),
            ),
            count=checked(partial(self._count, at("count"), raw.get("count")), None),
            payload=checked(partial(self._payload, at("payload"), raw.get("payload")), {}),
            max_attempts=self.defaults.max_attempts
            if raw.get("max_attempts") is None
            else checked(
                partial(positive_int, at("max_attempts"), raw["max_attempts"], "max_attempts"),
                self.defaults.max_attempts,
            ),
            timeout_seconds=self.defaults.timeout_seconds
            if raw.get("timeout_seconds") is None
            else checked(
                partial(
                    positive_number,
                    at("timeout_seconds"),
                    raw["timeout_seconds"],
                    "timeout_seconds",
                ),
                self.defaults.timeout_seconds,
            ),
            description=str(raw.get("description") or ""),
            line=where.line or 0,
            concurrency=None
            if raw.get("concurrency") is None
            else checked(
                partial(parse_concurrency, at("concurrency"), raw["concurrency"], self._compile),
                None,
            ),
            affinity=None
            if AFFINITY_KEYS.isdisjoint(raw)
            else checked(partial(parse_affinity, where, raw, self._compile), None),
            **parse_run_time_keys(where, raw, self.problems, self._compile),
        )

    def _service(self, where: Where, value: object) -> str:
        if not isinstance(value, str) or not value:
            where.fail("'service' must be a non-empty string")
        if self.services is not None and value not in self.services:
            where.fail(f"unknown service {value!r}; declared services: {', '.join(self.services)}")
        return value

    def _count(self, where: Where, value: object) -> int | CompiledLeaf | None:
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= MAX_PLAN_TASKS:
                where.fail(f"'count' must be between 0 and {MAX_PLAN_TASKS}, got {value}")
            return value
        leaf = self._compile(where, value, "count") if isinstance(value, str) else None
        if leaf is None or leaf.template is None:
            where.fail(f"'count' must be a non-negative integer or a template, got {value!r}")
        return leaf

    def _payload(self, where: Where, value: object) -> Mapping[str, PayloadTemplate]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            where.fail("'payload' must be a mapping")
        compiled = self._compile_tree(where, value, "payload")
        assert isinstance(compiled, dict)
        return compiled

    def _compile_tree(self, where: Where, value: object, path: str) -> PayloadTemplate:
        if isinstance(value, str):
            leaf = self.problems.checked(partial(self._compile, where, value, path), None)
            # Plain text stays a str: expansion copies it as it is, with no render call.
            return leaf if leaf is not None and leaf.template is not None else value
        if isinstance(value, Mapping):
            compiled = {}
            for key, item in value.items():
                with self.problems.recover():
                    if not isinstance(key, str):
                        where.fail(
                            f"{path}: keys must be strings, got {key!r}", line_of(value, key)
                        )
                    compiled[key] = self._compile_tree(
                        where.at(line_of(value, key)), item, f"{path}.{key}"
                    )
            return compiled
        if isinstance(value, list):
            return [self._compile_tree(where, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if not (value is None or isinstance(value, bool | int) or _finite_float(value)):
            where.fail(f"{path}: {value!r} is not a JSON value")
        return value

    def _compile(self, where: Where, source: str, path: str) -> CompiledLeaf:
        try:
            return self.renderer.compile(source, path)
        except TemplateCompileError as exc:
            where.fail(
                f"{path}: template syntax error: {exc.message}",
                (where.line + exc.lineno - 1) if where.line else None,
            )


def _finite_float(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def parse_depends_on(where: Where, raw: object, problems: Problems) -> tuple[Dependency, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        where.fail("'depends_on' must be a list of task ids or {task, mode} mappings")
    deps: list[Dependency] = []
    for item in raw:
        with problems.recover():
            dep = _dependency(where.at(line_of(item)), item, problems)
            if any(d.task == dep.task for d in deps):
                where.fail(f"task {dep.task!r} is listed twice in depends_on")
            deps.append(dep)
    return tuple(deps)


def _dependency(where: Where, item: object, problems: Problems) -> Dependency:
    if isinstance(item, str):
        return Dependency(item)
    if not isinstance(item, Mapping):
        where.fail(f"a dependency must be a task id or a {{task, mode}} mapping, got {item!r}")
    check_keys(where, item, frozenset({"task", "mode"}), "a dependency", problems)
    task, mode = item.get("task"), item.get("mode", "all")
    if not isinstance(task, str):
        where.fail("a dependency mapping needs 'task': <task id>")
    if mode not in (DependencyMode.ALL.value, DependencyMode.ZIP.value):
        where.fail(f"dependency mode must be 'all' or 'zip', got {mode!r}")
    return Dependency(task, DependencyMode(mode))


def check_graph(where: Where, tasks: Mapping[str, TaskTemplate], problems: Problems) -> bool:
    """Unknown or self dependencies, cycles, and names a multiplied task would collide with.
    Each problem is kept in `problems`; the answer is whether the graph has no cycle."""
    for task in tasks.values():
        at = Where(where.file, task.line, where.scenario, task.id)
        for dep in task.depends_on:
            with problems.recover():
                _check_dependency(at, task, dep, tasks)
        for message in dynamic_problems(task, tasks):
            with problems.recover():
                at.fail(message)
        if task.multiplied:
            copy_name = re.compile(rf"^{re.escape(task.id)}_\d+$")
            for other in tasks:
                if copy_name.match(other):
                    with problems.recover():
                        at.fail(f"task id {other!r} collides with the copies of task {task.id!r}")
    # Self and unknown dependencies are reported above: not again as cycles.
    edges = {
        t.id: [d.task for d in t.depends_on if d.task in tasks and d.task != t.id]
        for t in tasks.values()
    }
    cycle = find_cycle(list(tasks), edges)
    if cycle is None:
        return True
    first = tasks[cycle[0]]
    with problems.recover():
        Where(where.file, first.line, where.scenario, first.id).fail(
            f"dependency cycle: {' -> '.join(cycle)}"
        )
    return False


def _check_dependency(
    at: Where, task: TaskTemplate, dep: Dependency, tasks: Mapping[str, TaskTemplate]
) -> None:
    if dep.task == task.id:
        at.fail("a task cannot depend on itself")
    if dep.task not in tasks:
        at.fail(f"unknown dependency {dep.task!r}; tasks: {', '.join(tasks)}")
    if dep.mode is DependencyMode.ZIP and not (task.multiplied and tasks[dep.task].multiplied):
        at.fail(f"zip dependency on {dep.task!r} needs both tasks to have a count")
