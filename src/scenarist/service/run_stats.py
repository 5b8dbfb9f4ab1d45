"""Per-service run-time statistics and worker counts for the ETA (`core/eta.py`).

Each API process keeps its own: the run time of every attempt it ended (an exponentially
weighted mean, so a service that gets slower shows it within a few tasks) and the most
tasks of a service it saw processing at once over a sliding window (the worker slots: a
busy farm runs as many tasks as it has slots). Nothing is stored: a restarted process
learns again from the next attempts, and until then falls back to the run times of the
scenario's own finished tasks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from scenarist.core.eta import ServiceLoad
from scenarist.core.model import QueueStats, Task, TaskStatus

EWMA_WEIGHT = 0.2  # weight of the newest run time
WORKERS_WINDOW_SECONDS = 300.0


class RunStats:
    def __init__(
        self, *, weight: float = EWMA_WEIGHT, window: float = WORKERS_WINDOW_SECONDS
    ) -> None:
        self.weight = weight
        self.window = window
        self._mean: dict[str, float] = {}
        self._in_flight: dict[str, deque[tuple[float, int]]] = {}

    def observe_run(self, service: str, seconds: float) -> None:
        mean = self._mean.get(service)
        self._mean[service] = seconds if mean is None else mean + self.weight * (seconds - mean)

    def observe_in_flight(self, service: str, count: int, now: float) -> None:
        """Keep a window of (time, count) whose counts fall from oldest to newest, so its
        head is the most seen at once within the window."""
        seen = self._in_flight.setdefault(service, deque())
        while seen and (seen[-1][1] <= count):
            seen.pop()
        seen.append((now, count))
        while seen[0][0] < now - self.window:
            seen.popleft()

    def run_seconds(self, service: str) -> float | None:
        return self._mean.get(service)

    def workers(self, service: str, now: float) -> int:
        seen = self._in_flight.get(service)
        while seen and seen[0][0] < now - self.window:
            seen.popleft()
        return max(1, seen[0][1]) if seen else 1

    def loads(
        self, tasks: Sequence[Task], queues: Iterable[QueueStats], *, now: float
    ) -> dict[str, ServiceLoad]:
        """The load of every service the scenario still needs that has a run time."""
        stats = {q.service: q for q in queues}
        for queue in stats.values():
            self.observe_in_flight(queue.service, queue.in_flight, now)
        fallback = _own_run_times(tasks)
        loads = {}
        for service in {t.service for t in tasks if not t.status.is_final}:
            run = self.run_seconds(service)
            run = fallback.get(service) if run is None else run
            if run is None:
                continue
            mine = [t for t in tasks if t.service == service]
            q = stats.get(service)
            ready_mine = sum(1 for t in mine if t.status is TaskStatus.QUEUED)
            running_mine = sum(1 for t in mine if t.status is TaskStatus.PROCESSING)
            ready_others = max(0, (q.ready + q.delayed if q else 0) - ready_mine)
            running_others = max(0, (q.in_flight if q else 0) - running_mine)
            loads[service] = ServiceLoad(
                run_seconds=run,
                workers=max(self.workers(service, now), running_mine + running_others),
                ready_others=ready_others,
                running_others=running_others,
            )
        return loads


def _own_run_times(tasks: Iterable[Task]) -> Mapping[str, float]:
    """Mean run time of the last attempt of each succeeded task, by service."""
    runs: dict[str, list[float]] = {}
    for t in tasks:
        if t.status is TaskStatus.SUCCESS and t.started_at is not None and t.finished_at:
            runs.setdefault(t.service, []).append(max(0.0, t.finished_at - t.started_at))
    return {service: sum(r) / len(r) for service, r in runs.items()}
