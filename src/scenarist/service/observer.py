"""Hooks the service calls after state changes (metrics, logs). Never raises into callers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from scenarist.core.model import Scenario, Task


class Observer(Protocol):
    def scenario_submitted(self, scenario: Scenario) -> None: ...

    def tasks_leased(self, tasks: Sequence[Task], now: float) -> None: ...

    def task_completed(self, task: Task) -> None: ...

    def task_failed(self, task: Task, *, final: bool) -> None: ...

    def leases_expired(self, count: int) -> None: ...


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
