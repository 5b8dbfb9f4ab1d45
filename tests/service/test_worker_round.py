"""Orchestrator.complete_then_lease: a worker's report and its next lease in one store call,
waiting only when that first attempt finds nothing (on SQLite and on Redis)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scenarist.core.errors import ParamError, StaleLeaseError
from scenarist.core.model import Completion, TaskStatus
from scenarist.service.orchestrator import CompletionItem, Orchestrator
from scenarist.service.policy import Limits
from scenarist.storage.base import Store
from tests.service.conftest import FakeClock, FixedPlanner, RecordingObserver
from tests.support.redis_server import RedisServer


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        from scenarist.storage.sqlite.store import SqliteStore

        store = await SqliteStore.open(tmp_path / "round.db")
        try:
            yield store
        finally:
            await store.close()
        return
    from scenarist.storage.redis.store import RedisStore

    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        redis_store = await RedisStore.open(server.url)
        try:
            yield redis_store
        finally:
            await redis_store.close()
    finally:
        server.stop()


@pytest.fixture
def service(any_store: Store, clock: FakeClock, observer: RecordingObserver) -> Orchestrator:
    return Orchestrator(
        any_store,
        FixedPlanner(),
        clock=clock,
        rng=random.Random(7),
        limits=Limits(max_batch=50, max_wait_seconds=5.0, recheck_seconds=1.0),
        observer=observer,
    )


def done(task_id: str, token: str | None, ref: str = "r") -> CompletionItem:
    return CompletionItem(task_id, token, ref)


async def test_a_round_leases_what_its_report_released(
    service: Orchestrator, observer: RecordingObserver
) -> None:
    submitted = await service.submit("Diamond", {})
    [a] = await service.lease("svc")
    outcomes, leased = await service.complete_then_lease(
        [done(a.id, a.lease_token, "r:a"), done(a.id, "stale.1")], "svc", max_tasks=5
    )
    ok, stale = outcomes
    assert isinstance(ok, Completion)
    assert isinstance(stale, StaleLeaseError)
    sid = submitted.scenario.id
    assert sorted(t.id for t in leased) == [f"{sid}:b", f"{sid}:c"]
    assert observer.calls[-2:] == [("completed", "a"), ("leased", 2)]


async def test_an_empty_first_attempt_waits_and_wakes(
    service: Orchestrator, observer: RecordingObserver
) -> None:
    submitted = await service.submit("Diamond", {})
    [a] = await service.lease("svc")
    await service.complete(a.id, a.lease_token, result_ref="r:a")
    b, c = await service.lease("svc", max_tasks=2)
    # Reporting b releases nothing (d still waits for c), so the round waits for d.
    waiting = asyncio.create_task(
        service.complete_then_lease([done(b.id, b.lease_token)], ["svc"], wait_seconds=5.0)
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert (await service.get_task(b.id)).status is TaskStatus.SUCCESS
    started = time.monotonic()
    await service.complete(c.id, c.lease_token, result_ref="r:c")
    [outcome], [d] = await asyncio.wait_for(waiting, 5.0)
    assert time.monotonic() - started < 0.5  # woken, not found by the 1 s re-check
    assert isinstance(outcome, Completion)
    assert outcome.released == ()
    assert d.id == f"{submitted.scenario.id}:d"
    assert observer.calls.count(("completed", "b")) == 1


async def test_an_empty_first_attempt_without_wait_returns_at_once(
    service: Orchestrator,
) -> None:
    await service.submit("Chain", {})
    [a] = await service.lease("svc")
    [stale], leased = await service.complete_then_lease(
        [done(a.id, "stale.1")], "svc", wait_seconds=0.0
    )
    assert isinstance(stale, StaleLeaseError)
    assert leased == []


async def test_bad_lease_options_refuse_the_round_before_any_completion(
    service: Orchestrator,
) -> None:
    await service.submit("Chain", {})
    [a] = await service.lease("svc")
    items = [done(a.id, a.lease_token)]
    with pytest.raises(ParamError) as caught:
        await service.complete_then_lease(items, "svc", lease_seconds=0.1)
    assert caught.value.field == "lease_seconds"
    with pytest.raises(ParamError) as caught:
        await service.complete_then_lease(items, "svc", max_tasks=0)
    assert caught.value.field == "max_tasks"
    with pytest.raises(ParamError) as caught:
        await service.complete_then_lease(items, [])
    assert caught.value.field == "services"
    assert (await service.get_task(a.id)).status is TaskStatus.PROCESSING


async def test_a_round_without_items_is_a_plain_lease(service: Orchestrator) -> None:
    await service.submit("Chain", {})
    outcomes, [a] = await service.complete_then_lease([], "svc")
    assert (outcomes, a.name) == ([], "a")
