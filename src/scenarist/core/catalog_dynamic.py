"""Load-time checks of the run-time graph keys of a task: `for_each`, `max_items`, `join`,
`optional`, `max_parallel`, `cache`. Field checks run per task (catalog_parse._task); the checks
that need the whole graph (which parents `for_each` may name, `join` needs parents) run
from catalog_parse.check_graph. Every error names file, line, scenario and task."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from scenarist.core.catalog_problems import Problems
from scenarist.core.catalog_where import Where, field_where, positive_int
from scenarist.core.template import ForEach, Join, JoinKind, TaskTemplate

if TYPE_CHECKING:
    from scenarist.core.render import CompiledLeaf

_GROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# `results.outline`, `results["outline"]`, `results['outline']`
_RESULTS_REF = re.compile(
    r"\bresults\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*[\"']([A-Za-z][A-Za-z0-9_-]*)[\"']\s*\])"
)
_BARE_RESULTS = re.compile(r"\bresults\b")


def parse_for_each(where: Where, value: object, compile_leaf: Any) -> ForEach:
    """`compile_leaf(source)` compiles a template leaf (reporting its syntax errors)."""
    if not isinstance(value, str) or not value.strip():
        where.fail(
            "'for_each' must be a template over results.<parent> or the name of an upstream "
            f"dynamic group, got {value!r}"
        )
    source = value.strip()
    if _GROUP_NAME.match(source):
        return ForEach(source, None, group=source, parents=(source,))
    leaf: CompiledLeaf = compile_leaf(source)
    if leaf.template is None:
        where.fail(f"'for_each' {source!r} is neither a template nor a task name")
    parents = tuple(dict.fromkeys(a or b for a, b in _RESULTS_REF.findall(source)))
    if not parents or len(_BARE_RESULTS.findall(source)) != len(_RESULTS_REF.findall(source)):
        where.fail(
            f"'for_each' {source!r} must read its parents' results as results.<parent id> "
            "(the list to expand over)"
        )
    return ForEach(source, leaf, parents=parents)


def parse_join(where: Where, value: object) -> Join:
    if value in (JoinKind.ALL.value, JoinKind.ANY.value):
        return Join(JoinKind(value))
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, number),) = value.items()
        if key == JoinKind.MIN_SUCCESS.value:
            if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
                return Join(JoinKind.MIN_SUCCESS, number)
            where.fail(f"join min_success must be a positive integer, got {number!r}")
        if key == JoinKind.MIN_SUCCESS_RATIO.value:
            ok = isinstance(number, int | float) and not isinstance(number, bool)
            if ok and math.isfinite(number) and 0 < number <= 1:
                return Join(JoinKind.MIN_SUCCESS_RATIO, float(number))
            where.fail(f"join min_success_ratio must be a number in (0, 1], got {number!r}")
    where.fail(
        f"'join' must be all, any, {{min_success: K}} or {{min_success_ratio: r}}, got {value!r}"
    )
    return None


def parse_optional(where: Where, value: object) -> bool:
    if not isinstance(value, bool):
        where.fail(f"'optional' must be true or false, got {value!r}")
    return value


# `cache: true`: a success stands in for a run with the same inputs for a day.
DEFAULT_CACHE_TTL_SECONDS = 86_400


def parse_cache(where: Where, value: object) -> int | None:
    """`cache: true | false | {ttl_seconds: N}` -> the entry's lifetime (None: no cache)."""
    if isinstance(value, bool):
        return DEFAULT_CACHE_TTL_SECONDS if value else None
    if isinstance(value, Mapping) and set(value) == {"ttl_seconds"}:
        return positive_int(where, value["ttl_seconds"], "cache.ttl_seconds")
    where.fail(f"'cache' must be true, false or {{ttl_seconds: N}}, got {value!r}")
    return None


def dynamic_problems(task: TaskTemplate, tasks: Mapping[str, TaskTemplate]) -> list[str]:
    """What is wrong with one task's run-time keys given the whole graph."""
    problems = []
    parents = {d.task for d in task.depends_on}
    if task.for_each is not None:
        if task.count is not None:
            problems.append("a task cannot have both 'count' and 'for_each'")
        problems.extend(
            f"'for_each' names {name!r}, which is not in this task's depends_on"
            for name in task.for_each.parents
            if name not in parents
        )
        group = task.for_each.group
        if group is not None and group in tasks and not tasks[group].dynamic:
            problems.append(
                f"'for_each: {group}' zips with an upstream dynamic group, but task "
                f"{group!r} has no for_each"
            )
    elif task.max_items is not None:
        problems.append("'max_items' only applies to a task with 'for_each'")
    if task.join.kind is not JoinKind.ALL and not task.depends_on:
        problems.append("'join' needs a task with depends_on")
    return problems


def parse_run_time_keys(
    where: Where, raw: Mapping[Any, Any], problems: Problems, compile_leaf: Any
) -> dict[str, Any]:
    """for_each, max_items, join, optional, max_parallel, cache (each absent: its default)."""
    checked, at = problems.checked, partial(field_where, where, raw)
    keys: dict[str, Any] = {}
    if raw.get("for_each") is not None:
        compile_here = partial(compile_leaf, at("for_each"), path="for_each")
        no_group: ForEach | None = None
        keys["for_each"] = checked(
            partial(parse_for_each, at("for_each"), raw["for_each"], compile_here), no_group
        )
    for key in ("max_items", "max_parallel"):
        if raw.get(key) is not None:
            keys[key] = checked(partial(positive_int, at(key), raw[key], key), None)
    if raw.get("join") is not None:
        keys["join"] = checked(partial(parse_join, at("join"), raw["join"]), Join())
    if raw.get("optional") is not None:
        keys["optional"] = checked(partial(parse_optional, at("optional"), raw["optional"]), False)
    if raw.get("cache") is not None:
        keys["cache_ttl"] = checked(partial(parse_cache, at("cache"), raw["cache"]), None)
    return keys
