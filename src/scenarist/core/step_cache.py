"""The step cache (decision 64): a cached task that becomes ready with the same inputs as
an earlier success completes at once with that success's result, in the same atomic step.

The key of a task is built from three digests, so that only the last, cheap one has to be
computed where the release happens (Redis: inside Lua, which has SHA-1 but no SHA-256):

- `base_digest`: SHA-256 of the canonical JSON of [service, rendered payload], known when
  the task's record is built (the Redis record keeps it);
- `result_digest`: SHA-256 of the canonical JSON of [result_ref, result], known when a
  task succeeds (the Redis record keeps it; a cache hit copies the entry's);
- `cache_key`: SHA-1 of the base digest followed by ":" and each parent's result digest,
  in `depends_on` order. Lua builds the same string from the stored digests
  (`cache_key` in `_lib.lua`); the lockstep test compares the keys every store stored.

A task is looked up only when every parent succeeded (a join or an optional parent that
let it run on a loss has no key). `ready_changes` is the one definition of what happens
to tasks that just became ready: row `cache_hit` (success, dependents released, and those
looked up in turn, first come first served) or row `cache_miss` (the task keeps its key;
its completion writes the entry, see `entry_of`). A task whose record says `no_cache`
(a rerun forcing a miss) gets `cache_miss` without a lookup.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from scenarist.core.model import JSON, Task, TaskStatus, task_id
from scenarist.core.transition_changes import count_off
from scenarist.core.transitions import Change, Lookup, TaskFields, apply_rule

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _sha256(value: JSON) -> str:
    return hashlib.sha256(orjson.dumps(value, option=_CANONICAL)).hexdigest()


def base_digest(service: str, payload: Mapping[str, JSON]) -> str:
    return _sha256([service, payload])


def result_digest(result_ref: str | None, result: Mapping[str, JSON] | None) -> str:
    return _sha256([result_ref, result])


def cache_key(base: str, parent_results: Iterable[str]) -> str:
    material = base + "".join(":" + digest for digest in parent_results)
    return hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A success that may stand in for a run with the same key until `expires_at`."""

    key: str
    service: str
    task_id: str  # the task whose run it records (a hit's `cached_from`)
    result_ref: str | None
    result: Mapping[str, JSON] | None
    expires_at: float


Entries = Callable[[str], CacheEntry | None]  # key -> its entry (None when absent)


def entry_of(
    task: TaskFields,
    *,
    result_ref: str | None,
    result: Mapping[str, JSON] | None,
    now: float,
) -> CacheEntry | None:
    """The entry the completion of `task` writes, in its step: a cached task that was
    looked up (it has a key) and ran. (A cache hit writes none: the entry it copied
    stays as it was.)"""
    key = task["cache_key"]
    if key is None:
        return None
    return CacheEntry(
        key=key,
        service=task["service"],
        task_id=task_id(task["scenario_id"], task["name"]),
        result_ref=result_ref,
        result=result,
        expires_at=now + task["cache_ttl"],
    )


def served_at_submit(tasks: Iterable[Task]) -> bool:
    """Whether the step that stores `tasks` may have served a root from the cache (so
    the stored records may differ from the ones built)."""
    return any(t.cache_ttl is not None and not t.depends_on for t in tasks)


def _no_cache(task: TaskFields) -> bool:
    """A rerun's forced miss; records from before the flag existed have none."""
    try:
        return bool(task["no_cache"])
    except (KeyError, IndexError):
        return False


def _decoded(value: Any) -> Any:
    """A payload or result as stored: JSON text (SQLite) or the value itself."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def key_of(task: TaskFields, lookup: Lookup) -> str | None:
    """The task's key, or None when it is not cached or a parent did not succeed."""
    if task["cache_ttl"] is None:
        return None
    digests = []
    for name in task["depends_on"]:
        parent = lookup(name)
        if parent is None or parent["status"] != TaskStatus.SUCCESS:
            return None
        digests.append(result_digest(parent["result_ref"], _decoded(parent["result"])))
    return cache_key(base_digest(task["service"], _decoded(task["payload"])), digests)


def _feeds_group(task: TaskFields, lookup: Lookup) -> bool:
    """A `for_each` group expands from results the service renders before the step; a
    hit inside the step cannot, so a task below which a group waits always runs."""
    for name in task["dependents"]:
        child = lookup(name)
        if child is not None and child["group_spec"] is not None:
            return True
    return False


class _Overlay:
    """The tasks as this step's earlier changes left them (the store applies the changes
    after they are all built)."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.changed: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> TaskFields | None:
        return self.changed.get(name) or self.lookup(name)

    def apply(self, change: Change) -> None:
        current = self.get(change.name)
        assert current is not None
        fields = {key: current[key] for key in _READ}
        fields.update(change.fields)
        fields["status"] = change.after.value
        self.changed[change.name] = fields


# Every field ready_changes and apply_rule read from a task.
_READ = (
    "name",
    "scenario_id",
    "service",
    "payload",
    "status",
    "attempt",
    "depends_on",
    "dependents",
    "waiting",
    "cache_ttl",
    "cache_key",
    "cached",
    "result_ref",
    "result",
    "group_spec",
)


def ready_changes(
    ready: Iterable[str],
    lookup: Lookup,
    entries: Entries,
    *,
    now: float,
) -> list[Change]:
    """The cache's answer for the tasks that just became ready (queued), in order, and
    for the dependents its hits release, after them (first in, first out; each task at
    most once, so the chain ends). `lookup` reads the tasks after the step's other
    changes; an entry counts only while `expires_at > now`."""
    overlay = _Overlay(lookup)
    changes: list[Change] = []
    queue = deque(ready)
    while queue:
        task = overlay.get(queue.popleft())
        if task is None or task["status"] != TaskStatus.QUEUED:
            continue
        key = key_of(task, overlay.get)
        if key is None or _feeds_group(task, overlay.get):
            continue
        entry = None if _no_cache(task) else entries(key)
        if entry is None or entry.expires_at <= now:
            changes.append(apply_rule("cache_miss", task, cache_key=key))
            overlay.apply(changes[-1])
            continue
        hit = apply_rule(
            "cache_hit",
            task,
            cache_key=key,
            cached=True,
            cached_from=entry.task_id,
            result_ref=entry.result_ref,
            result=entry.result,
            finished_at=now,
        )
        overlay.apply(hit)
        # Each change of the count-off is of another dependent (or its own release).
        released = count_off(task, overlay.get, now=now)
        for change in released:
            overlay.apply(change)
        changes += [hit, *released]
        queue.extend(c.name for c in released if c.rule == "release")
    return changes


@dataclass(frozen=True, slots=True)
class CacheCount:
    """Lookups of one service's cached tasks so far (counted in the steps that made them)."""

    service: str
    hits: int
    misses: int
