"""`scenario_finished`: the service tells its observer once per time a scenario becomes
final, whichever change ended it (orchestrator on SQLite with a fake clock; the
maintenance round that re-reads suspected scenarios is called by hand)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from scenarist.core.errors import StoreUnavailableError
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


async def finished(orchestrator: Orchestrator) -> list[tuple[str, str]]:
    """What the observer was told, after the round the maintenance loop would run."""
    await orchestrator.report_ended()
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
    assert await finished(orchestrator) == [(sid, "success")]


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
    assert await finished(orchestrator) == [(sid, "success")]


async def test_a_batch_that_ends_it_reports_it_once(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Pair", {})).scenario.id
    leased = await orchestrator.lease("svc", max_tasks=2)
    items = [CompletionItem(t.id, t.lease_token, None) for t in leased]
    await orchestrator.complete_many(items + items)  # the repeats are duplicates
    assert await finished(orchestrator) == [(sid, "success")]


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
    assert await finished(orchestrator) == [(failing, "failed"), (lapsing, "failed")]


async def test_a_retryable_failure_reports_nothing(service: tuple[Orchestrator, FakeClock]) -> None:
    orchestrator, _ = service
    await orchestrator.submit("Diamond", {})
    (task,) = await orchestrator.lease("svc")
    await orchestrator.fail(task.id, task.lease_token, error="busy", retryable=True)
    assert await finished(orchestrator) == []


async def test_cancel_reports_once_even_when_repeated(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Diamond", {})).scenario.id
    await orchestrator.cancel(sid)
    await orchestrator.cancel(sid)
    assert await finished(orchestrator) == [(sid, "cancelled")]


async def test_a_retried_scenario_is_reported_again_when_it_ends_again(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, clock = service
    sid = (await orchestrator.submit("Once", {})).scenario.id
    (task,) = await orchestrator.lease("svc")
    await orchestrator.fail(task.id, task.lease_token, error="boom", retryable=False)
    assert await finished(orchestrator) == [(sid, "failed")]
    clock.now += 1
    await orchestrator.retry(sid)
    await run_all(orchestrator)
    assert await finished(orchestrator) == [(sid, "failed"), (sid, "success")]


async def test_a_scenario_without_tasks_is_reported_at_submit(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Empty", {})).scenario.id
    assert await finished(orchestrator) == [(sid, "success")]


async def test_a_round_reads_each_suspect_once_and_a_late_round_counts_nothing(
    service: tuple[Orchestrator, FakeClock],
) -> None:
    orchestrator, _ = service
    sid = (await orchestrator.submit("Pair", {})).scenario.id
    for task in await orchestrator.lease("svc", max_tasks=2):
        await orchestrator.complete(task.id, task.lease_token, result_ref=None)
    reads: list[str] = []

    async def read(scenario_id: str) -> Scenario:
        reads.append(scenario_id)
        return await orchestrator.get_scenario(scenario_id)

    assert await orchestrator.finished.flush(read, orchestrator.observer) == 1
    assert reads == [sid]
    orchestrator.finished.suspect(sid)  # e.g. a duplicate completion arriving late
    assert await orchestrator.finished.flush(read, orchestrator.observer) == 0
    assert await finished(orchestrator) == [(sid, "success")]


async def test_a_store_outage_keeps_the_suspects_for_the_next_round() -> None:
    observer = RecordingObserver()
    reported = FinishedScenarios()
    for scenario_id in ("s0", "s1"):
        reported.suspect(scenario_id)

    async def unavailable(scenario_id: str) -> Scenario:
        raise StoreUnavailableError("down")

    with pytest.raises(StoreUnavailableError):
        await reported.flush(unavailable, observer)

    async def ended_now(scenario_id: str) -> Scenario:
        return ended(scenario_id)

    assert await reported.flush(ended_now, observer) == 2


def ended(scenario_id: str) -> Scenario:
    return Scenario(
        id=scenario_id,
        template="T",
        params={},
        status=ScenarioStatus.SUCCESS,
        progress=Progress(total=0, by_status={}, by_service={}),
        created_at=0.0,
        finished_at=1.0,
    )


def test_the_memory_of_reported_scenarios_is_bounded() -> None:
    observer = RecordingObserver()
    reported = FinishedScenarios(capacity=2)
    ends = [ended(f"s{i}") for i in range(3)]
    for scenario in [*ends, ends[2], ends[0]]:
        reported.report(scenario, observer)
    # s2 again is remembered; s0 was forgotten to make room, so it counts again
    assert [args[0] for _, args in observer.calls] == ["s0", "s1", "s2", "s0"]
