"""Orchestrator-level tests run on the SQLite store with a fake clock and a fixed plan."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scenarist.core.errors import UnknownScenarioError
from scenarist.core.model import ScenarioPlan, Task
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.policy import Limits, RetryPolicy
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import T0, diamond, plan, spec


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


class FixedPlanner:
    """A catalog of hand-built plans, keyed by template name."""

    def __init__(self) -> None:
        self.plans = {
            "Diamond": diamond(),
            "Chain": plan(spec("a", max_attempts=2), spec("b", "a"), template="Chain"),
            "Once": plan(spec("a", max_attempts=1), spec("b", "a"), template="Once"),
        }

    def plan(self, name: str, params: Mapping[str, Any]) -> ScenarioPlan:
        if name not in self.plans:
            raise UnknownScenarioError(name, sorted(self.plans))
        return self.plans[name]


@dataclass
class RecordingObserver:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    runs: list[tuple[str, float]] = field(default_factory=list)  # attempt_ended, apart

    def scenario_submitted(self, scenario: Any) -> None:
        self.calls.append(("submitted", scenario.id))

    def tasks_leased(self, tasks: Any, now: float) -> None:
        self.calls.append(("leased", len(tasks)))

    def task_completed(self, task: Task) -> None:
        self.calls.append(("completed", task.name))

    def attempt_ended(self, service: str, run_seconds: float) -> None:
        self.runs.append((service, run_seconds))

    def task_failed(self, task: Task, *, final: bool) -> None:
        self.calls.append(("failed", (task.name, final)))

    def leases_expired(self, count: int) -> None:
        self.calls.append(("expired", count))

    def scenario_finished(self, scenario: Any) -> None:
        self.calls.append(("finished", (scenario.id, scenario.status.value)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
async def orchestrator(
    tmp_path: Path, clock: FakeClock, observer: RecordingObserver
) -> AsyncIterator[Orchestrator]:
    store = await SqliteStore.open(tmp_path / "service.db")
    try:
        yield Orchestrator(
            store,
            FixedPlanner(),
            clock=clock,
            rng=random.Random(7),
            retry_policy=RetryPolicy(base_seconds=2.0, max_seconds=10.0, jitter=0.5),
            limits=Limits(max_batch=50, max_wait_seconds=5.0, recheck_seconds=1.0),
            observer=observer,
        )
    finally:
        await store.close()
