"""Hooks the service calls after state changes (metrics, logs). Never raises into callers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from scenarist.core.errors import NotFoundError, StoreUnavailableError
from scenarist.core.model import Scenario, Task


class Observer(Protocol):
    def scenario_submitted(self, scenario: Scenario) -> None: ...

    def tasks_leased(self, tasks: Sequence[Task], now: float) -> None: ...

    def task_completed(self, task: Task) -> None: ...

    def attempt_ended(self, service: str, run_seconds: float) -> None: ...

    def task_failed(self, task: Task, *, final: bool) -> None: ...

    def leases_expired(self, count: int) -> None: ...

    def scenario_finished(self, scenario: Scenario) -> None: ...


class NullObserver:
    def scenario_submitted(self, scenario: Scenario) -> None:
        return None

    def tasks_leased(self, tasks: Sequence[Task], now: float) -> None:
        return None

    def attempt_ended(self, service: str, run_seconds: float) -> None:
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

    A store does not say whether a change ended its scenario, so the service notes the
    scenarios a change may have ended (`suspect`, cheap, on the request path) and a
    background round re-reads them (`flush`): many completions of one scenario between
    two rounds cost one read, and none costs a read on the request path. Two reads of the
    same end (two rounds, or a cancel and a round) must count it once: a time it became
    final is told apart by `finished_at`, which a store stamps on becoming final and
    clears on retry. Both memories are bounded. What can be missed is a count, never a
    state: an end past the bounds, or one a retry undid before the next round.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._suspects: dict[str, None] = {}  # insertion-ordered set
        self._reported: OrderedDict[str, float | None] = OrderedDict()

    def suspect(self, scenario_id: str) -> None:
        if len(self._suspects) < self.capacity:
            self._suspects[scenario_id] = None

    async def flush(self, read: Callable[[str], Awaitable[Scenario]], observer: Observer) -> int:
        """Re-read every suspect and report those that are final; returns how many were
        reported. A store outage leaves the unread ones for the next round."""
        suspects, self._suspects = list(self._suspects), {}
        reported = 0
        for at, scenario_id in enumerate(suspects):
            try:
                scenario = await read(scenario_id)
            except StoreUnavailableError:
                for later in suspects[at:]:
                    self.suspect(later)
                raise
            except NotFoundError:
                continue  # purged since: its end was long ago
            reported += self.report(scenario, observer)
        return reported

    def report(self, scenario: Scenario, observer: Observer) -> bool:
        if not scenario.status.is_final:
            return False
        if scenario.id in self._reported and self._reported[scenario.id] == scenario.finished_at:
            return False
        self._reported[scenario.id] = scenario.finished_at
        self._reported.move_to_end(scenario.id)
        while len(self._reported) > self.capacity:
            self._reported.popitem(last=False)
        observer.scenario_finished(scenario)
        return True
