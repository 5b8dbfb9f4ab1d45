"""Why a scenario ended the way it did, derived at read time from its task records.

Nothing here is stored: a skipped task's cause is the set of its nearest failed or
cancelled ancestors, found by walking up the graph, and whether a failed task could
have been retried follows from its attempt counter. Reads of a scenario or a task call
these functions, so stores keep only the lifecycle's own fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from scenarist.core.model import Progress, Task, TaskStatus

# Statuses that end a task without success and make its dependents skipped.
BLOCKING_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


class FailureReason(StrEnum):
    NOT_RETRYABLE = "not_retryable"  # failed for good before its attempts ran out
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # the last allowed attempt failed


@dataclass(frozen=True, slots=True)
class Failure:
    """A task that failed for good, and the tasks its failure caused to be skipped."""

    task: str
    error: str | None
    attempt: int
    max_attempts: int
    reason: FailureReason
    skipped: tuple[str, ...]  # in plan order

    @property
    def description(self) -> str:
        """e.g. "failed for good after attempt 1 of 3 (not retryable)"."""
        return failure_description(self.attempt, self.max_attempts, self.reason)


def failure_reason(task: Task) -> FailureReason | None:
    """Why a failed task was not retried; None for a task that is not failed."""
    if task.status is not TaskStatus.FAILED:
        return None
    if task.attempt < task.max_attempts:
        return FailureReason.NOT_RETRYABLE
    return FailureReason.ATTEMPTS_EXHAUSTED


def failure_description(attempt: int, max_attempts: int, reason: FailureReason) -> str:
    if reason is FailureReason.NOT_RETRYABLE:
        return f"failed for good after attempt {attempt} of {max_attempts} (not retryable)"
    return f"failed after attempt {attempt} of {max_attempts} (attempts exhausted)"


def skipped_because(tasks: Sequence[Task]) -> dict[str, tuple[str, ...]]:
    """For every skipped task: the failed or cancelled tasks that caused the skip.

    A cause is an ancestor that is failed or cancelled and reached through skipped tasks
    only (the nearest blocking ancestor on each path). Causes are listed in the order of
    `tasks` (plan order). A skipped task without such an ancestor maps to ().
    """
    by_name = {task.name: task for task in tasks}
    position = {task.name: index for index, task in enumerate(tasks)}
    causes: dict[str, frozenset[str]] = {}

    def causes_of(name: str) -> frozenset[str]:
        # Iterative post-order: scenario graphs can be deeper than Python's recursion limit.
        stack = [name]
        while stack:
            current = stack[-1]
            if current in causes:
                stack.pop()
                continue
            pending = [
                parent
                for parent in by_name[current].depends_on
                if parent in by_name
                and by_name[parent].status is TaskStatus.SKIPPED
                and parent not in causes
            ]
            if pending:
                stack.extend(pending)
                continue
            found: set[str] = set()
            for parent in by_name[current].depends_on:
                upstream = by_name.get(parent)
                if upstream is None:
                    continue
                if upstream.status in BLOCKING_STATUSES:
                    found.add(parent)
                elif upstream.status is TaskStatus.SKIPPED:
                    found |= causes[parent]
            causes[current] = frozenset(found)
            stack.pop()
        return causes[name]

    return {
        task.name: tuple(sorted(causes_of(task.name), key=position.__getitem__))
        for task in tasks
        if task.status is TaskStatus.SKIPPED
    }


def failures(
    tasks: Sequence[Task], skipped: Mapping[str, tuple[str, ...]] | None = None
) -> list[Failure]:
    """Every failed task, in plan order, with its error, reason and the skips it caused.
    `skipped` is `skipped_because(tasks)` when the caller already has it."""
    causes = skipped_because(tasks) if skipped is None else skipped
    caused: dict[str, list[str]] = {}
    for task in tasks:
        for cause in causes.get(task.name, ()):
            caused.setdefault(cause, []).append(task.name)
    found: list[Failure] = []
    for task in tasks:
        reason = failure_reason(task)
        if reason is None:
            continue
        found.append(
            Failure(
                task=task.name,
                error=task.error,
                attempt=task.attempt,
                max_attempts=task.max_attempts,
                reason=reason,
                skipped=tuple(caused.get(task.name, ())),
            )
        )
    return found


# How each final status is counted in a progress line, in the order it is listed.
_FINISHED_WORDS = (
    (TaskStatus.SUCCESS, "succeeded"),
    (TaskStatus.FAILED, "failed"),
    (TaskStatus.SKIPPED, "skipped"),
    (TaskStatus.CANCELLED, "cancelled"),
)


def progress_summary(progress: Progress) -> str:
    """e.g. "9/9 finished: 6 succeeded, 1 failed, 2 skipped" — a failed scenario never
    reads as a bare 100%. Outcomes with no task are left out."""
    counts = [
        f"{progress.by_status.get(status, 0)} {word}"
        for status, word in _FINISHED_WORDS
        if progress.by_status.get(status, 0)
    ]
    head = f"{progress.finished}/{progress.total} finished"
    return f"{head}: {', '.join(counts)}" if counts else head
