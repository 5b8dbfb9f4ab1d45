"""Pure rules of the task lifecycle shared by the service layer, the stores and the tests."""

from __future__ import annotations

from collections.abc import Iterable

from scenarist.core.model import Progress, ScenarioStatus, TaskStatus

# Copied for every counter: iterating an enum class is slow, copying a dict is not.
_ZERO_BY_STATUS: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)


def count_progress(tasks: Iterable[tuple[str, TaskStatus]]) -> Progress:
    """Progress from (service, status) pairs. Every status appears as a key, also when 0,
    so clients can read `by_status["failed"]` without guarding."""
    by_status = _ZERO_BY_STATUS.copy()
    by_service: dict[str, dict[TaskStatus, int]] = {}
    total = 0
    for service, status in tasks:
        total += 1
        by_status[status] += 1
        counts = by_service.get(service)
        if counts is None:
            counts = by_service[service] = _ZERO_BY_STATUS.copy()
        counts[status] += 1
    return Progress(total=total, by_status=by_status, by_service=by_service)


def derive_scenario_status(
    progress: Progress, *, started: bool, cancelled: bool, tolerated: int = 0
) -> ScenarioStatus:
    """The scenario's status is a function of its tasks (see storage/base.py): `success`
    when every task succeeded or its failure was tolerated (`tolerated` of them, by a join
    or `optional`)."""
    if cancelled:
        return ScenarioStatus.CANCELLED
    if progress.finished < progress.total:
        return ScenarioStatus.RUNNING if started else ScenarioStatus.PENDING
    if progress.by_status.get(TaskStatus.SUCCESS, 0) + tolerated == progress.total:
        return ScenarioStatus.SUCCESS
    return ScenarioStatus.FAILED


def lease_token(nonce: str, attempt: int) -> str:
    """A lease token binds one lease attempt; a re-lease makes the old token stale."""
    return f"{nonce}.{attempt}"


# The seed's PATCH /tasks/{id}/status targets and the statuses they may start from.
SEED_PATCH_SOURCES: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PROCESSING: frozenset({TaskStatus.QUEUED}),
    TaskStatus.SUCCESS: frozenset({TaskStatus.QUEUED, TaskStatus.PROCESSING}),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED, TaskStatus.PROCESSING}),
}
