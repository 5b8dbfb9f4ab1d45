"""What each operation of the lifecycle table requires before its rule applies: the lease
token, the attempt, the reaper's compare-and-set, cancel and retry conflicts. Every store
calls these inside its atomic step (`core/transitions.py` has the rules themselves)."""

from __future__ import annotations

from collections.abc import Iterable

from scenarist.core.errors import (
    ConflictError,
    IllegalTransitionError,
    ParallelLimitError,
    StaleLeaseError,
)
from scenarist.core.model import TaskStatus
from scenarist.core.transitions import RETRYABLE, TaskFields


def check_lease(task: TaskFields, lease_token: str | None, requested: TaskStatus) -> None:
    """The task must be processing under `lease_token` (any lease when None: the seed's
    PATCH). A wrong token is StaleLeaseError; a token-less misuse IllegalTransitionError."""
    status = task["status"]
    if status == TaskStatus.PROCESSING and lease_token in (None, task["lease_token"]):
        return
    if lease_token is None:
        raise IllegalTransitionError(task["id"], status, requested)
    raise StaleLeaseError(task["id"], status)


def is_duplicate_completion(task: TaskFields, lease_token: str | None) -> bool:
    """A repeat of the completion that already happened (decision 2)."""
    return (
        lease_token is not None
        and task["status"] == TaskStatus.SUCCESS
        and task["lease_token"] == lease_token
    )


def holds_lease(task: TaskFields, lease_token: str) -> bool:
    """The task is processing under exactly `lease_token`."""
    return bool(task["status"] == TaskStatus.PROCESSING and task["lease_token"] == lease_token)


def check_heartbeat(task: TaskFields, lease_token: str) -> None:
    if not holds_lease(task, lease_token):
        raise StaleLeaseError(task["id"], task["status"])


def check_fail(task: TaskFields, lease_token: str | None, attempt: int) -> None:
    """As check_lease, and the attempt the service decided on must still be current."""
    check_lease(task, lease_token, TaskStatus.FAILED)
    if task["attempt"] != attempt:
        raise StaleLeaseError(task["id"], task["status"])


def check_claim(task: TaskFields) -> None:
    if task["status"] != TaskStatus.QUEUED:
        raise IllegalTransitionError(task["id"], task["status"], TaskStatus.PROCESSING)


def check_claim_room(task: TaskFields, running: int) -> None:
    """A claim, like a lease, keeps `max_parallel` (decision 56): `running` is how many
    tasks of the task's group are processing."""
    limit = task["max_parallel"]
    if limit is not None and running >= limit:
        raise ParallelLimitError(task["id"], task["parallel_group"], limit)


def can_expire(task: TaskFields | None, lease_token: str, now: float) -> bool:
    """The reaper's compare-and-set: still processing under the token it saw, and run out."""
    if task is None or not holds_lease(task, lease_token):
        return False
    return bool(task["lease_expires_at"] <= now)


def check_cancel(scenario_id: str, status: str, cancelled: bool) -> bool:
    """True when there is something to cancel; False when already cancelled (unchanged);
    ConflictError when the scenario already ended some other way."""
    if cancelled:
        return False
    if status in ("success", "failed"):
        raise ConflictError(
            f"scenario {scenario_id!r} is {status}; only an unfinished scenario can be cancelled",
            current_status=status,
            field="status",
        )
    return True


def check_retry(scenario_id: str, status: str, tasks: Iterable[TaskFields]) -> None:
    if not any(TaskStatus(t["status"]) in RETRYABLE for t in tasks):
        raise ConflictError(
            f"scenario {scenario_id!r} has no failed, skipped or cancelled task to retry",
            current_status=status,
            field="status",
        )


def can_hand_back(task: TaskFields | None, lease_token: str) -> bool:
    """Only the lease that was made for the departed caller is undone."""
    return task is not None and holds_lease(task, lease_token)
