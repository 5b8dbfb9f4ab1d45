"""Worker affinity (decision 78): which workers may lease a task, by the labels a worker
sends with its lease.

- `requires: {gpu: a100}`: only a worker whose labels include every pair may lease it;
- `prefers: {model: "{{ model }}"}`: a worker whose labels include every pair may lease
  it at once; any other (eligible) worker only once it waited `prefer_wait_seconds`
  (default 2 s) since it became ready. A warm worker thus gets first call on the tasks
  for its model, and a task nobody warm takes is not stranded. This is Temporal's sticky
  queue with a schedule-to-start timeout, decided inside the lease's atomic step.

The values are rendered with the scenario's parameters at submit (a group's instances
share the group's), so a stored task carries plain strings; `admits` is the rule the
lockstep model and SQLite apply (`LeaseRoom`) and `affinity_admits` in
storage/redis/lua/_lease.lua mirrors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_PREFER_WAIT = 2.0


@dataclass(frozen=True, slots=True)
class Affinity:
    requires: Mapping[str, str]
    prefers: Mapping[str, str]
    prefer_wait: float = DEFAULT_PREFER_WAIT

    def admits(self, labels: Mapping[str, str], ready_at: float, now: float) -> bool:
        """May a worker with `labels` lease the task, ready since `ready_at`, at `now`?"""
        if not has_labels(labels, self.requires):
            return False
        return has_labels(labels, self.prefers) or now >= ready_at + self.prefer_wait

    def to_json(self) -> dict[str, Any]:
        """The stored form (SQLite's `affinity` column, the Redis record's `af`)."""
        return {
            "requires": dict(self.requires),
            "prefers": dict(self.prefers),
            "prefer_wait": self.prefer_wait,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Affinity:
        return cls(
            requires=dict(raw.get("requires") or {}),
            prefers=dict(raw.get("prefers") or {}),
            prefer_wait=float(raw.get("prefer_wait", DEFAULT_PREFER_WAIT)),
        )


def has_labels(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(name) == value for name, value in wanted.items())


def unreachable(
    requirements: Mapping[str, Sequence[tuple[str, Mapping[str, str]]]],
    workers: Sequence[tuple[Sequence[str], Mapping[str, str]]],
    services: Sequence[str],
) -> dict[str, list[str]]:
    """Per service of `services` (those with queued tasks): a warning for each task
    template whose `requires` (service -> [(where, labels)]) no live worker of the service
    has, where `workers` are the live workers' (services, labels)."""
    warnings: dict[str, list[str]] = {}
    for service in services:
        for where, wanted in requirements.get(service, ()):
            if any(service in served and has_labels(labels, wanted) for served, labels in workers):
                continue
            shown = ", ".join(f"{name}: {value}" for name, value in wanted.items())
            warnings.setdefault(service, []).append(
                f"tasks of {where} require {{{shown}}}: no live worker of {service} has "
                "those labels"
            )
    return warnings
