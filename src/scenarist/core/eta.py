"""When will a scenario be done? A list-scheduling forecast of its remaining tasks.

Each service is a set of worker slots. The slots are first taken by the work already in
front of the scenario (other scenarios' running and ready tasks), then the scenario's own
remaining tasks are placed in the order they become ready: a task is ready when its last
unfinished parent is forecast to finish, starts on the first slot of its service free at
or after that, and runs for the service's typical run time. The ETA is the forecast end
of the last task less now: the remaining critical path, queueing included.

What it cannot know it leaves out: work of other scenarios that arrives later, and the
order the ready queue gives to priorities (deeper tasks first) among other scenarios'
tasks. The inputs come from the service (`service/run_stats.py`).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scenarist.core.model import Task, TaskStatus


@dataclass(frozen=True, slots=True)
class ServiceLoad:
    """What one service looks like now, besides the scenario being forecast."""

    run_seconds: float  # typical run time of one attempt
    workers: int  # worker slots (tasks it runs at once)
    ready_others: int = 0  # other scenarios' ready tasks, ahead in the queue
    running_others: int = 0  # other scenarios' tasks being processed


def _slots(load: ServiceLoad, now: float) -> list[float]:
    """Times each slot becomes free for this scenario, after the work ahead of it."""
    workers = max(1, load.workers)
    run = load.run_seconds
    busy = min(load.running_others, workers)
    # A running task of another scenario is, on average, half done.
    slots = [now + run / 2] * busy + [now] * (workers - busy)
    heapq.heapify(slots)
    rounds, rest = divmod(load.ready_others, workers)
    slots = [free + rounds * run for free in slots]
    heapq.heapify(slots)
    for _ in range(rest):
        heapq.heapreplace(slots, slots[0] + run)
    return slots


def estimate_finish(
    tasks: Sequence[Task], loads: Mapping[str, ServiceLoad], *, now: float
) -> dict[str, float] | None:
    """Forecast end time of every unfinished task (by name), or None when a service on
    the remaining path has no run time yet. `tasks` is the whole scenario."""
    remaining = [t for t in tasks if not t.status.is_final]
    if any(t.service not in loads for t in remaining):
        return None
    slots = {service: _slots(load, now) for service, load in loads.items()}
    finish: dict[str, float] = {}
    # Running tasks hold a slot until their forecast end (an overdue one: now).
    for t in remaining:
        if t.status is TaskStatus.PROCESSING:
            started = t.started_at if t.started_at is not None else now
            end = max(now, started + loads[t.service].run_seconds)
            heapq.heapreplace(slots[t.service], max(slots[t.service][0], end))
            finish[t.name] = end
    order = {t.name: i for i, t in enumerate(tasks)}
    unfinished = {t.name for t in remaining}
    blockers = {
        t.name: {p for p in t.depends_on if p in unfinished}
        for t in remaining
        if t.status is not TaskStatus.PROCESSING
    }
    by_name = {t.name: t for t in remaining}
    ready: list[tuple[float, int, str]] = []
    for name, parents in blockers.items():
        if not parents:
            heapq.heappush(ready, (_ready_at(by_name[name], now), order[name], name))
    children: dict[str, list[str]] = {}
    for name, parents in blockers.items():
        for parent in parents:
            children.setdefault(parent, []).append(name)

    def settle(name: str) -> None:
        for child in children.get(name, ()):
            waiting = blockers[child]
            waiting.discard(name)
            if not waiting:
                at = max(finish[p] for p in by_name[child].depends_on if p in finish)
                heapq.heappush(
                    ready, (max(at, _ready_at(by_name[child], now)), order[child], child)
                )

    for name in list(finish):
        settle(name)
    while ready:
        at, _, name = heapq.heappop(ready)
        task = by_name[name]
        free = heapq.heappop(slots[task.service])
        finish[name] = max(at, free) + loads[task.service].run_seconds
        heapq.heappush(slots[task.service], finish[name])
        settle(name)
    return finish


def estimate_eta(
    tasks: Sequence[Task], loads: Mapping[str, ServiceLoad], *, now: float
) -> float | None:
    """Seconds until the scenario's last task is forecast to end (0 when none is left)."""
    finish = estimate_finish(tasks, loads, now=now)
    return None if finish is None else eta_from(finish, now)


def eta_from(finish: Mapping[str, float], now: float) -> float:
    return round(max((end - now for end in finish.values()), default=0.0), 3)


def _ready_at(task: Task, now: float) -> float:
    """A queued task in retry backoff is not ready before its `available_at`."""
    if task.status is TaskStatus.QUEUED and task.available_at is not None:
        return max(now, task.available_at)
    return now


def critical_path(tasks: Sequence[Task], ends: Mapping[str, float]) -> list[str]:
    """The chain that decides when the scenario ends: from the task that ends last, back
    through the parent that ended (or is forecast to end) last, to a root. `ends` holds
    each task's end, actual or forecast; tasks without one are left out."""
    by_name = {t.name: t for t in tasks}
    if not ends:
        return []
    name: str | None = max(ends, key=lambda n: (ends[n], n))
    path = []
    while name is not None:
        path.append(name)
        parents = [p for p in by_name[name].depends_on if p in ends]
        name = max(parents, key=lambda p: (ends[p], p)) if parents else None
    return path[::-1]
