"""From a scenario template and validated parameters to a ScenarioPlan.

A task with `count: N` becomes `<id>_1 .. <id>_N` (`index` and `count` in scope while its
copy renders); without a count it keeps its bare id. Dependencies between two multiplied
tasks with equal counts zip by index, anything else depends on every copy of the parent,
unless the template says `mode: zip|all`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scenarist.core.affinity import Affinity
from scenarist.core.errors import RenderError
from scenarist.core.model import JSON, ScenarioPlan, TaskSpec
from scenarist.core.render import CompiledLeaf, Renderer, RenderSession
from scenarist.core.template import (
    MAX_PLAN_TASKS,
    Dependency,
    DependencyMode,
    JoinKind,
    LabelSource,
    PayloadTemplate,
    ScenarioTemplate,
    TaskTemplate,
)
from scenarist.core.workers import MAX_LABEL_VALUE

_DIGITS = re.compile(r"^\s*\d+\s*$")


@dataclass(frozen=True, slots=True)
class _Copies:
    """The expanded names of one template task and their levels."""

    template: TaskTemplate
    count: int | None  # None: not multiplied
    names: tuple[str, ...]


def expand_plan(
    template: ScenarioTemplate, params: Mapping[str, JSON], renderer: Renderer
) -> ScenarioPlan:
    """Expand a template whose `params` were validated (see ScenarioTemplate.validate)."""
    session = renderer.session()
    counts = _counts(template, params, session)
    position = {task.id: i for i, task in enumerate(template.tasks)}
    copies: dict[str, _Copies] = {}
    dynamic = frozenset(t.id for t in template.tasks if t.for_each is not None)
    levels: dict[str, int] = {}
    specs: list[TaskSpec] = []
    for task in template.tasks:  # topological order: parents are expanded first
        count = counts[task.id]
        names = (
            (task.id,) if count is None else tuple(f"{task.id}_{i}" for i in range(1, count + 1))
        )
        if task.for_each is not None:
            # One node for the group: its items come from a result not known yet.
            parents = tuple(name for dep in task.depends_on for name in copies[dep.task].names)
            levels[task.id] = level = 1 + max((levels[p] for p in parents), default=-1)
            where = f"scenario {template.name!r}, task {task.id!r}"
            key = concurrency_key(session, task, params, where)
            affinity = render_affinity(session, task, params, where)
            specs.append(_group_spec(task, parents, level, key, affinity))
            copies[task.id] = _Copies(task, None, (task.id,))
            continue
        expanded = _Copies(task, count, names)
        # Parents in template order, then by index (see _parents_of_copy): one sort per task.
        deps = sorted(task.depends_on, key=lambda d: position[d.task])
        for copy, name in enumerate(names):
            parents = _parents_of_copy(template.name, expanded, deps, copy, copies) if deps else ()
            level = 1 + max((levels[p] for p in parents), default=-1)
            levels[name] = level
            # Rendering never mutates its variables, so an unmultiplied task reads `params`.
            variables = params if count is None else {**params, "index": copy + 1, "count": count}
            where = f"scenario {template.name!r}, task {name!r}"
            # Below a dynamic group the join is kept to apply once the group expands.
            below_group = bool(dynamic) and not dynamic.isdisjoint(parents)
            specs.append(
                _spec(
                    task,
                    name=name,
                    position=copy if count is not None else None,
                    payload=render_tree(session, task.payload, variables, where),
                    key=concurrency_key(session, task, variables, where),
                    affinity=render_affinity(session, task, variables, where),
                    parents=parents,
                    level=level,
                    need=None if below_group else _need(task, parents, where),
                    join=task.join.describe() if below_group else None,
                )
            )
        copies[task.id] = expanded
    return ScenarioPlan(template=template.name, params=dict(params), tasks=tuple(specs))


def _spec(
    task: TaskTemplate,
    *,
    name: str,
    position: int | None,
    payload: JSON,
    key: str | None,
    affinity: Affinity | None,
    parents: tuple[str, ...],
    level: int,
    need: int | None,
    join: JSON = None,
) -> TaskSpec:
    return TaskSpec(
        name=name,
        template_id=task.id,
        index=None if position is None else position + 1,
        service=task.service,
        payload=payload,
        depends_on=parents,
        level=level,
        max_attempts=task.max_attempts,
        timeout_seconds=task.timeout_seconds,
        need=need,
        optional=task.optional,
        max_parallel=task.max_parallel,
        concurrency_key=key,
        concurrency_limit=None if task.concurrency is None else task.concurrency.limit,
        affinity=affinity,
        join=join,
        cache_ttl=task.cache_ttl,
    )


def _group_spec(
    task: TaskTemplate,
    parents: tuple[str, ...],
    level: int,
    key: str | None,
    affinity: Affinity | None,
) -> TaskSpec:
    assert task.for_each is not None
    return TaskSpec(
        name=task.id,
        template_id=task.id,
        index=None,
        service=task.service,
        payload={},
        depends_on=tuple(dict.fromkeys(parents)),
        level=level,
        max_attempts=task.max_attempts,
        timeout_seconds=task.timeout_seconds,
        optional=task.optional,
        for_each=task.for_each.source,
        max_parallel=task.max_parallel,
        concurrency_key=key,
        concurrency_limit=None if task.concurrency is None else task.concurrency.limit,
        affinity=affinity,
        group_spec={
            "for_each": task.for_each.source,
            "zip": task.for_each.group,
            "payload": payload_source(task.payload),
            "max_items": task.item_limit,
        },
    )


MAX_KEY_LENGTH = 200  # a rendered concurrency key is an index key in every store


def concurrency_key(
    session: RenderSession, task: TaskTemplate, variables: Mapping[str, JSON], where: str
) -> str | None:
    """The task's rendered `concurrency.key` (a group's instances share the group's)."""
    if task.concurrency is None:
        return None
    key = task.concurrency.key
    value = session.render(key, variables, where) if isinstance(key, CompiledLeaf) else key
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RenderError(f"{where}, concurrency.key: must render to text, got {value!r}")
    text = str(value).strip()
    if not text or len(text) > MAX_KEY_LENGTH:
        raise RenderError(
            f"{where}, concurrency.key: must render to 1..{MAX_KEY_LENGTH} characters, got {text!r}"
        )
    return text


def render_affinity(
    session: RenderSession, task: TaskTemplate, variables: Mapping[str, JSON], where: str
) -> Affinity | None:
    """The task's `requires` and `prefers` with their values rendered (a group's
    instances share the group's)."""
    if task.affinity is None:
        return None

    def rendered(labels: Mapping[str, LabelSource], key: str) -> dict[str, str]:
        out = {}
        for name, source in labels.items():
            value = source
            if isinstance(source, CompiledLeaf):
                value = session.render(source, variables, where)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise RenderError(f"{where}, {key}.{name}: must render to text, got {value!r}")
            text = str(value)
            if len(text) > MAX_LABEL_VALUE:
                raise RenderError(
                    f"{where}, {key}.{name}: must render to at most {MAX_LABEL_VALUE} characters"
                )
            out[name] = text
        return out

    affinity = task.affinity
    return Affinity(
        requires=rendered(affinity.requires, "requires"),
        prefers=rendered(affinity.prefers, "prefers"),
        prefer_wait=affinity.prefer_wait,
    )


def payload_source(value: PayloadTemplate) -> JSON:
    """A payload template back as the YAML value it was loaded from (leaves as text)."""
    if isinstance(value, CompiledLeaf):
        return value.source
    if isinstance(value, dict):
        return {key: payload_source(item) for key, item in value.items()}
    if isinstance(value, list):
        return [payload_source(item) for item in value]
    return value


def _need(task: TaskTemplate, parents: tuple[str, ...], where: str) -> int | None:
    """The successes the task's join needs among its expanded parents; a bar above the
    parent count could never be reached, so the submission is refused. (Below a dynamic
    group the parent count is known only once the group expands: not called there.)"""
    if task.join.kind is JoinKind.ALL:  # the common join needs no parent count
        return None
    distinct = len(set(parents))
    need = task.join.need(distinct)
    if need is not None and need > distinct:
        raise RenderError(
            f"{where}: join {task.join.describe()} needs {need} successful parents, "
            f"but the task has {distinct}"
        )
    return need


def _counts(
    template: ScenarioTemplate, params: Mapping[str, JSON], session: RenderSession
) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    total = 0
    for task in template.tasks:
        count = task.count
        if isinstance(count, CompiledLeaf):
            where = f"scenario {template.name!r}, task {task.id!r}"
            count = _count_value(session.render(count, params, where), f"{where}, {count.path}")
        counts[task.id] = count
        total += 1 if count is None else count
        if total > MAX_PLAN_TASKS:
            raise RenderError(
                f"scenario {template.name!r} would expand to more than {MAX_PLAN_TASKS} tasks "
                f"(task {task.id!r} has count {count})"
            )
    return counts


def _count_value(value: JSON, where: str) -> int:
    if isinstance(value, str) and _DIGITS.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RenderError(f"{where}: must render to a non-negative integer, got {value!r}")
    if value > MAX_PLAN_TASKS:
        raise RenderError(f"{where}: {value} is over the limit of {MAX_PLAN_TASKS}")
    return value


def _parents_of_copy(
    scenario: str,
    child: _Copies,
    deps: Sequence[Dependency],
    position: int,
    copies: Mapping[str, _Copies],
) -> tuple[str, ...]:
    """Parent names of one copy: `deps` sorted by the parents' template order, then index."""
    parents: list[str] = []
    for dep in deps:
        parent = copies[dep.task]
        if _zips(scenario, child, dep, parent):
            parents.append(parent.names[position])
        else:
            parents.extend(parent.names)
    return tuple(parents)


def _zips(scenario: str, child: _Copies, dep: Dependency, parent: _Copies) -> bool:
    both = child.count is not None and parent.count is not None
    if dep.mode is DependencyMode.ALL:
        return False
    if dep.mode is DependencyMode.AUTO:
        return both and child.count == parent.count
    if not both or child.count != parent.count:
        raise RenderError(
            f"scenario {scenario!r}: task {child.template.id!r} (count {child.count}) zips with "
            f"task {parent.template.id!r} (count {parent.count}) but the counts differ"
        )
    return True


def render_tree(
    session: RenderSession, value: PayloadTemplate, variables: Mapping[str, JSON], where: str
) -> JSON:
    """Render every leaf of a payload; each leaf knows its own path for error messages."""
    if isinstance(value, CompiledLeaf):
        return session.render(value, variables, where)
    if isinstance(value, dict):
        return {key: render_tree(session, item, variables, where) for key, item in value.items()}
    if isinstance(value, list):
        return [render_tree(session, item, variables, where) for item in value]
    return value
