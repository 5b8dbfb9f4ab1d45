"""`scenario_finished`: the service tells its observer once per time a scenario becomes
final, whichever change ended it (orchestrator on SQLite with a fake clock)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from scenarist.core.model import Progress, Scenario, ScenarioPlan, ScenarioStatus
from scenarist.service.observer import FinishedScenarios
from scenarist.service.orchestrator import CompletionItem, Orchestrator
from scenarist.storage.sqlite.store import SqliteStore
from tests.service.conftest import FakeClock, RecordingObserver
from tests.storage.plans import diamond, plan, spec

PLANS = {
    "Diamond": diamond(),
    "Pair": plan(spec("a"), spec("b"), template="Pair"),  # two leaves that may end it
    "Once": plan(spec("a", max_attempts=1), spec("b", "a"), template="Once"),
    "Empty": plan(template="Empty"),
}


class Planner:
    def plan(self, name: str, params: Mapping[str, Any]) -> ScenarioPlan:
        return PLANS[name]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Orchestrator, FakeClock]]:
    store = await SqliteStore.open(tmp_path / "finished.db")
    clock = FakeClock()
    try:
        yield (
            Orchestrator(
                store, Planner(), clock=clock, rng=random.Random(1), observer=RecordingObserver()
            ),
            clock,
        )
    finally:
        await store.close()


def finished(orchestrator: Orchestrator) -> list[tuple[str, str]]:
    observer = orchestrator.observer
    assert isinstance(observer, RecordingObserver)
    return [args for name, args in observer.calls if name == "finished"]


async def run_all(orchestrator: Orchestrator, service: str = "svc") -> None:
    while tasks := await orchestrator.lease(service, max_tasks=10):
        for task in tasks:
            await orchestrator.complete(task.id, task.lease_token, result_ref=None)


async def test_success_is_reported_once(service: tuple[Orchestrator, FakeClock]) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Diamond", {})).scenario.id
    await run_all(orchestrator)
    assert finished(orchestrator) == [(sid, "success")]


async def test_two_leaves_completing_at_once_report_it_once(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Pair", {})).scenario.id
    a, b = await orchestrator.lease("svc", max_tasks=2)
    await asyncio.gather(
        orchestrator.complete(a.id, a.lease_token, result_ref=None),
        orchestrator.complete(b.id, b.lease_token, result_ref=None),
    )
    assert finished(orchestrator) == [(sid, "success")]


async def test_a_batch_that_ends_it_reports_it_once(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Pair", {})).scenario.id
    leased = await orchestrator.lease("svc", max_tasks=2)
    items = [CompletionItem(t.id, t.lease_token, None) for t in leased]
    await orchestrator.complete_many(items + items)  # the repeats are duplicates
    assert finished(orchestrator) == [(sid, "success")]


async def test_a_final_failure_and_a_lapsed_last_lease_report_failed(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, clock = service
    failing = (await orchestrator.submit("Once", {})).scenario.id
    (task,) = await orchestrator.lease("svc")
    await orchestrator.fail(task.id, task.lease_token, error="boom", retryable=False)
    lapsing = (await orchestrator.submit("Once", {})).scenario.id
    await orchestrator.lease("svc", lease_seconds=5)
    clock.now += 10
    assert await orchestrator.reap_expired() == 1
    assert finished(orchestrator) == [(failing, "failed"), (lapsing, "failed")]


async def test_a_retryable_failure_reports_nothing(service: tuple[Orchestrator, FakeClock]) -> None:
    orchestrator, _ = service
    await orchestrator.submit("Diamond", {})
    (task,) = await orchestrator.lease("svc")
    await orchestrator.fail(task.id, task.lease_token, error="busy", retryable=True)
    assert finished(orchestrator) == []


async def test_cancel_reports_once_even_when_repeated(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Diamond", {})).scenario.id
    await orchestrator.cancel(sid)
    await orchestrator.cancel(sid)
    assert finished(orchestrator) == [(sid, "cancelled")]


async def test_a_retried_scenario_is_reported_again_when_it_ends_again(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, clock = service
    sid = (await orchestrator.submit("Once", {})).scenario.id
    (task,) = await orchestrator.lease("svc")
    await orchestrator.fail(task.id, task.lease_token, error="boom", retryable=False)
    clock.now += 1
    await orchestrator.retry(sid)
    await run_all(orchestrator)
    assert finished(orchestrator) == [(sid, "failed"), (sid, "success")]


async def test_a_scenario_without_tasks_is_reported_at_submit(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Empty", {})).scenario.id
    assert finished(orchestrator) == [(sid, "success")]


def test_the_memory_of_reported_scenarios_is_bounded() -> None:
    observer = RecordingObserver()
    reported = FinishedScenarios(capacity=2)
    ends = [
        Scenario(
            id=f"s{i}",
            template="T",
            params={},
            status=ScenarioStatus.SUCCESS,
            progress=Progress(total=0, by_status={}, by_service={}),
            created_at=0.0,
            finished_at=1.0,
        )
        for i in range(3)
    ]
    for scenario in [*ends, ends[2], ends[0]]:
        reported.report(scenario, observer)
    # s2 again is remembered; s0 was forgotten to make room, so it counts again
    assert [args[0] for _, args in observer.calls] == ["s0", "s1", "s2", "s0"]
