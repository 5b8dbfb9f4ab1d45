"""Read-time durations and ETA of a scenario (both derived, nothing stored for them)."""

from __future__ import annotations

from collections.abc import Sequence

from scenarist.core.durations import AttemptSpan, task_attempts
from scenarist.core.eta import estimate_finish, eta_from
from scenarist.core.model import Event, Scenario, Task
from scenarist.service.orchestrator import Orchestrator

EVENT_PAGE = 500


async def all_events(orchestrator: Orchestrator, scenario_id: str) -> list[Event]:
    events: list[Event] = []
    while True:
        after = events[-1].id if events else None
        page = await orchestrator.read_events(scenario_id, after=after, limit=EVENT_PAGE)
        events.extend(page)
        if len(page) < EVENT_PAGE:
            return events


async def attempts_of(
    orchestrator: Orchestrator, scenario_id: str, tasks: Sequence[Task]
) -> dict[str, list[AttemptSpan]]:
    """Each task's attempts with their queue wait and run time (core/durations.py)."""
    return task_attempts(tasks, await all_events(orchestrator, scenario_id))


async def forecast(
    orchestrator: Orchestrator, scenario: Scenario, tasks: Sequence[Task]
) -> dict[str, float] | None:
    """Forecast end of every unfinished task (core/eta.py); None once the scenario has
    ended, or while a service it still needs has no run time to go by."""
    if scenario.status.is_final:
        return None
    now = orchestrator.clock()
    queues = await orchestrator.queue_stats()
    loads = orchestrator.run_stats.loads(tasks, queues, now=now)
    return estimate_finish(tasks, loads, now=now)


async def eta_seconds(
    orchestrator: Orchestrator, scenario: Scenario, tasks: Sequence[Task]
) -> float | None:
    """Seconds until the scenario is forecast to end (see `forecast`)."""
    ends = await forecast(orchestrator, scenario, tasks)
    if ends is None:
        return None
    return eta_from(ends, orchestrator.clock())
