"""Ready order: which ready task a lease takes first. The one definition every backend
follows (SQLite's query, the Redis queues' scores, the cluster's merge of shard heads)."""

from __future__ import annotations

from scenarist.core.model import Lane, TaskStatus, queue_priority
from scenarist.core.transitions import TaskFields


def ready_at(task: TaskFields) -> float:
    """When the task became (or becomes) leasable: its backoff end, else when queued."""
    available = task["available_at"]
    return float(available if available is not None else task["queued_at"])


ReadyRank = tuple[int, float, str]


def ready_rank(task_priority: int, task_ready_at: float, task_id: str) -> ReadyRank:
    """Ready order, smallest first: higher priority, then older, then task id (bytewise).
    SQLite's `ORDER BY priority DESC, ready_at, id`, Redis's per-priority sorted sets
    (score = ready_at, ties by member, merged by lease_many.lua) and the cluster's merge
    of shard heads (shard_lease.py, with this function) implement it; the lockstep test
    holds them to it."""
    return (-task_priority, task_ready_at, task_id)


def ready_key(task: TaskFields) -> ReadyRank:
    """The rank of a task's fields; its priority is `model.queue_priority` (lane, then
    the level capped at the seed's 0-4)."""
    priority = queue_priority(task["level"], Lane(task["lane"]))
    return ready_rank(priority, ready_at(task), task["id"])


def is_ready(task: TaskFields, now: float) -> bool:
    available = task["available_at"]
    return task["status"] == TaskStatus.QUEUED and (available is None or available <= now)
