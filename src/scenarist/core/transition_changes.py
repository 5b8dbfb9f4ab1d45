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
    failed for good with every transitive non-final dependent skipped in plan order.
    `usage` (what the failed attempt reported) counts like a completion's."""
    total = add_usage(task["usage"], usage)
    if retry_at is not None:
        return [
            apply_rule(
                "requeue", task, error=error, available_at=retry_at, queued_at=now, usage=total
            )
        ]
    failed = apply_rule("fail", task, error=error, finished_at=now, usage=total)
    return [failed, *skip_changes(task, lookup, now=now)]


def skip_changes(task: TaskFields, lookup: Lookup, *, now: float) -> list[Change]:
    found: dict[str, TaskFields] = {}
    frontier = list(task["dependents"])
    while frontier:
        name = frontier.pop()
        if name in found:
            continue
        child = lookup(name)
        if child is None:
            continue
        found[name] = child
        frontier.extend(child["dependents"])
    doomed = sorted(
        (c for c in found.values() if TaskStatus(c["status"]) in NON_FINAL),
        key=lambda c: c["seq"],
    )
    return [apply_rule("skip", child, finished_at=now) for child in doomed]


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
