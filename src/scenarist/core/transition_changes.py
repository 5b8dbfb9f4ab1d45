"""The changes each operation makes, built from the rows of the lifecycle table
(`core/transitions.py`) with `apply_rule`, so no operation can set a field its row does
not name. A store applies them in order inside one atomic step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scenarist.core.model import JSON, TaskStatus
from scenarist.core.transitions import (
    NON_FINAL,
    RETRYABLE,
    Change,
    Lookup,
    TaskFields,
    apply_rule,
)
from scenarist.core.usage import Usage, add_usage


def lease_change(
    task: TaskFields,
    *,
    rule: str = "lease",
    lease_seconds: float | None,
    worker_id: str | None,
    now: float,
    nonce: str,
) -> Change:
    attempt = task["attempt"] + 1
    seconds = lease_seconds if lease_seconds is not None else task["timeout_seconds"]
    return apply_rule(
        rule,
        task,
        attempt=attempt,
        lease_token=f"{nonce}.{attempt}",
        started_at=now,
        lease_expires_at=now + seconds,
        lease_seconds=seconds,
        worker_id=worker_id,
    )


def hand_back_change(task: TaskFields) -> Change:
    attempt = task["attempt"] - 1
    return apply_rule(
        "hand_back", task, attempt=attempt, started_at=task["started_at"] if attempt else None
    )


def heartbeat_change(task: TaskFields, *, lease_seconds: float | None, now: float) -> Change:
    seconds = lease_seconds if lease_seconds is not None else lease_length(task)
    return apply_rule("heartbeat", task, lease_expires_at=now + seconds, lease_seconds=seconds)


def lease_length(task: TaskFields) -> float:
    """The lease length the worker last asked for (a lease from before the field
    existed falls back to the task's timeout)."""
    seconds = task["lease_seconds"]
    return float(seconds if seconds is not None else task["timeout_seconds"])


def complete_changes(
    task: TaskFields,
    lookup: Lookup,
    *,
    result_ref: str | None,
    result: Mapping[str, JSON] | None,
    now: float,
    usage: Usage | None = None,
) -> list[Change]:
    changes = [
        apply_rule(
            "complete",
            task,
            result_ref=result_ref,
            result=result,
            finished_at=now,
            usage=add_usage(task["usage"], usage),
        )
    ]
    return [*changes, *count_off(task, lookup, now=now)]


def count_off(task: TaskFields, lookup: Lookup, *, now: float) -> list[Change]:
    """`task` succeeded: each distinct dependent waits for one parent fewer (row
    parent_succeeded), and a pending one waiting for none is released (row release)."""
    changes = []
    for name in dict.fromkeys(task["dependents"]):
        child = lookup(name)
        if child is None:
            continue
        waiting = child["waiting"] - 1
        changes.append(apply_rule("parent_succeeded", child, waiting=waiting))
        if waiting <= 0 and child["status"] == TaskStatus.PENDING:
            changes.append(apply_rule("release", child, queued_at=now))
    return changes


def fail_changes(
    task: TaskFields,
    lookup: Lookup,
    *,
    error: str,
    retry_at: float | None,
    now: float,
    usage: Usage | None = None,
) -> list[Change]:
    """A failed attempt (or an expired lease): back to the queue until `retry_at`, or
    failed for good with its loss cascading to its dependents (see LossCascade).
    `usage` (what the failed attempt reported) counts like a completion's."""
    total = add_usage(task["usage"], usage)
    if retry_at is not None:
        return [
            apply_rule(
                "requeue", task, error=error, available_at=retry_at, queued_at=now, usage=total
            )
        ]
    cascade = loss_cascade(task, lookup)
    failed = apply_rule(
        "fail",
        task,
        error=error,
        finished_at=now,
        usage=total,
        tolerated=cascade.tolerated(task),
    )
    return [failed, *cascade.changes(now)]


def loss_cascade(task: TaskFields, lookup: Lookup) -> LossCascade:
    """What the loss of `task` (failed for good) does downstream."""
    cascade = LossCascade(lookup, {task["name"]: task})
    cascade.spread(task)
    return cascade


class LossCascade:
    """The loss of a task, spread down the graph to a fixed point.

    A lost parent that is `optional` counts for its dependents as a finished parent (they
    run and see it failed in their inputs). Otherwise a non-final dependent is doomed
    (skipped) when its join can no longer be reached: more of its distinct parents are
    lost than its `need` allows (`need` None: all, so any loss dooms it, as without
    joins). A doomed task is itself lost, and so on down. A dependent that survives
    counts each lost parent off `waiting` (row parent_lost) and is released once it waits
    for none. A loss is tolerated when the task is optional, or when it has dependents and
    every one of them survives it."""

    def __init__(self, lookup: Lookup, lost: dict[str, TaskFields]) -> None:
        self.lookup = lookup
        self.lost = lost  # name -> fields: the failed task, then every doomed one
        self.doomed: list[TaskFields] = []

    def spread(self, task: TaskFields) -> None:
        frontier = [task]
        while frontier:
            parent = frontier.pop()
            for name in dict.fromkeys(parent["dependents"]):
                child = self.lookup(name)
                if child is None or name in self.lost or not _live(child):
                    continue
                if parent["optional"] and child["group_spec"] is None:
                    continue
                if self.out_of_reach(child):
                    self.lost[name] = child
                    self.doomed.append(child)
                    frontier.append(child)

    def doom(self, task: TaskFields) -> None:
        """`task` (live) is lost: skipped, and its loss spread."""
        self.lost[task["name"]] = task
        self.doomed.append(task)
        self.spread(task)

    def out_of_reach(self, child: TaskFields) -> bool:
        """A `for_each` group expands only from its parents' results, so any lost parent
        (optional ones too) dooms it."""
        parents = list(dict.fromkeys(child["depends_on"]))
        group = child["group_spec"] is not None
        lost = 0
        for name in parents:
            parent = self.lost.get(name) or self.lookup(name)
            if parent is None or (parent["optional"] and not group):
                continue
            if name in self.lost or TaskStatus(parent["status"]) in _LOSSES:
                lost += 1
        need = None if group else child["need"]
        return lost > 0 if need is None else len(parents) - lost < need

    def _survivors(self, task: TaskFields) -> list[TaskFields]:
        found = (self.lookup(name) for name in dict.fromkeys(task["dependents"]))
        return [c for c in found if c is not None and c["name"] not in self.lost and _live(c)]

    def tolerated(self, task: TaskFields) -> bool:
        if task["optional"]:
            return True
        dependents = task["dependents"]
        return bool(dependents) and len(self._survivors(task)) == len(dict.fromkeys(dependents))

    def changes(self, now: float) -> list[Change]:
        """The skips in plan order, then each survivor's count-off (and release) in plan
        order."""
        doomed = sorted(self.doomed, key=lambda c: c["seq"])
        changes = [
            apply_rule("skip", c, finished_at=now, tolerated=self.tolerated(c)) for c in doomed
        ]
        counted: dict[str, int] = {}
        survivors: dict[str, TaskFields] = {}
        for lost in self.lost.values():
            for child in self._survivors(lost):
                counted[child["name"]] = counted.get(child["name"], 0) + 1
                survivors[child["name"]] = child
        for child in sorted(survivors.values(), key=lambda c: c["seq"]):
            waiting = child["waiting"] - counted[child["name"]]
            changes.append(apply_rule("parent_lost", child, waiting=waiting))
            if waiting <= 0 and child["status"] == TaskStatus.PENDING:
                changes.append(apply_rule("release", child, queued_at=now))
        return changes


_LOSSES = frozenset({TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})


def _live(task: TaskFields) -> bool:
    return TaskStatus(task["status"]) in NON_FINAL


def cancel_changes(tasks: Sequence[TaskFields], *, now: float) -> list[Change]:
    """`tasks` in plan order."""
    return [
        apply_rule("cancel", t, finished_at=now)
        for t in tasks
        if TaskStatus(t["status"]) in NON_FINAL
    ]


def retry_changes(tasks: Sequence[TaskFields], *, now: float) -> list[Change]:
    """Scenario retry over `tasks` in plan order. Parents' statuses are read before any
    change (a retried parent is not a success), and each retried task's `waiting` is
    recounted from them."""
    succeeded = {t["name"] for t in tasks if t["status"] == TaskStatus.SUCCESS}
    changes = []
    for t in tasks:
        if TaskStatus(t["status"]) not in RETRYABLE:
            continue
        waiting = len(set(t["depends_on"]) - succeeded)
        if waiting == 0:
            changes.append(apply_rule("retry_ready", t, attempt=0, waiting=0, queued_at=now))
        else:
            changes.append(apply_rule("retry_waiting", t, attempt=0, waiting=waiting))
    return changes
