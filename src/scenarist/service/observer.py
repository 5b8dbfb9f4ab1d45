"""Hooks the service calls after state changes (metrics, logs). Never raises into callers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from scenarist.core.model import Scenario, Task


class Observer(Protocol):
    def scenario_submitted(self, scenario: Scenario) -> None: ...

    def tasks_leased(self, tasks: Sequence[Task], now: float) -> None: ...

    def task_completed(self, task: Task) -> None: ...

    def task_failed(self, task: Task, *, final: bool) -> None: ...

    def leases_expired(self, count: int) -> None: ...

    def scenario_finished(self, scenario: Scenario) -> None: ...


class NullObserver:
    def scenario_submitted(self, scenario: Scenario) -> None:
        return None

    def tasks_leased(self, tasks: Sequence[Task], now: float) -> None:
        return None

    def task_completed(self, task: Task) -> None:
        return None

    def task_failed(self, task: Task, *, final: bool) -> None:
        return None

    def leases_expired(self, count: int) -> None:
        return None

    def scenario_finished(self, scenario: Scenario) -> None:
        return None


class FinishedScenarios:
    """Tells an observer about a scenario once per time it becomes final.

    The service re-reads a scenario after a change that may have ended it, and two
    changes that end up reading the same final scenario (the last two tasks completing
    at once) must count it once. A time it became final is told apart by `finished_at`,
    which a store stamps on becoming final and clears on retry. The memory of what was
    reported is bounded: it only has to cover changes that race each other.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._reported: OrderedDict[str, float | None] = OrderedDict()

    def report(self, scenario: Scenario, observer: Observer) -> None:
        if not scenario.status.is_final:
            return
        if scenario.id in self._reported and self._reported[scenario.id] == scenario.finished_at:
            return
        self._reported[scenario.id] = scenario.finished_at
        self._reported.move_to_end(scenario.id)
        while len(self._reported) > self.capacity:
            self._reported.popitem(last=False)
        observer.scenario_finished(scenario)
