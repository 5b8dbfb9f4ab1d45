"""Gates under concurrency: 8 leasers, each with a store of its own (its own SQLite
connection and thread, its own Redis connections), lease and complete at once; a sampler
reads the processing tasks all along. The cap and the key are never exceeded. And the
rate limit: 8 leasers on an injected clock take no more than the bucket allows."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scenarist.core.gates import NO_GATES, RateLimit, ServiceGate
from scenarist.core.model import DEFAULT_TENANT, TaskStatus
from scenarist.core.tenants import NO_TENANTS, TenantPolicy
from scenarist.service.records import build_records
from scenarist.storage.base import Store
from tests.storage.plans import T0, plan, spec
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

LEASERS = 8
TASKS = 48
CAP = 3
GATES = {"gpu": ServiceGate(max_in_flight=CAP)}
TENANTS = {"capped": TenantPolicy(max_in_flight=CAP)}
_ids = itertools.count()

Opener = Callable[[], Awaitable[Store]]


async def open_sqlite_at(path: Path) -> Store:
    from scenarist.storage.sqlite.store import SqliteStore

    return await SqliteStore.open(path)


async def open_redis_at(url: str, prefix: str) -> Store:
    from scenarist.storage.redis.store import RedisStore

    return await RedisStore.open(url, key_prefix=prefix)


SCENARIOS = 4  # on a cluster, spread over its shards


async def submit(
    store: Store, *, keyed: bool, now: float = T0, tenant: str = DEFAULT_TENANT
) -> list[str]:
    """TASKS ready gpu tasks in SCENARIOS scenarios of `tenant`; with `keyed`, a third of
    them share the key "voice" (limit 1). Returns the scenario ids."""
    scenario_ids = []
    for number in range(SCENARIOS):
        specs = []
        for i in range(TASKS // SCENARIOS):
            task = spec(f"t{i}", service="gpu")
            if keyed and i % 3 == 0:
                task = dataclasses.replace(task, concurrency_key="voice", concurrency_limit=1)
            specs.append(task)
        scenario_id = f"race{next(_ids)}-{number}"
        scenario, tasks = build_records(
            plan(*specs), scenario_id=scenario_id, now=now, tenant=tenant
        )
        await store.create_scenario(scenario, tasks)
        scenario_ids.append(scenario_id)
    return scenario_ids


async def race(
    open_store: Opener, *, keyed: bool = True, capped_tenant: bool = False
) -> tuple[int, int]:
    """Returns (the most gpu tasks seen processing at once, tasks completed). The cap is
    the gpu service's, or with `capped_tenant` the tenant's whose scenarios they all are."""
    stores = [await open_store() for _ in range(LEASERS + 1)]
    gates, tenants = (NO_GATES, TENANTS) if capped_tenant else (GATES, NO_TENANTS)
    tenant = "capped" if capped_tenant else DEFAULT_TENANT
    scenario_ids = await submit(stores[0], keyed=keyed, tenant=tenant)
    holding = {"now": 0, "most": 0, "key": 0, "done": 0}
    finished = asyncio.Event()

    async def leaser(store: Store, number: int) -> None:
        for round_ in range(400):
            if holding["done"] >= TASKS:
                return
            leased = await store.lease(
                "gpu",
                max_tasks=2,
                lease_seconds=30.0,
                worker_id=f"w{number}",
                now=T0 + 1,
                nonce=f"w{number}r{round_}",
                gates=gates,
                tenants=tenants,
            )
            holding["now"] += len(leased)
            holding["key"] += sum(t.concurrency_key == "voice" for t in leased)
            holding["most"] = max(holding["most"], holding["now"])
            assert holding["now"] <= CAP, holding
            assert holding["key"] <= 1, holding
            await asyncio.sleep(0.001)
            for task in leased:
                # Counted off before the completion: it can only be below the truth.
                holding["now"] -= 1
                holding["key"] -= task.concurrency_key == "voice"
                await store.complete(
                    task.id, task.lease_token, result_ref="r", result=None, now=T0 + 2
                )
                holding["done"] += 1
            if not leased:
                await asyncio.sleep(0.002)

    async def sampler(store: Store) -> int:
        most = 0
        while not finished.is_set():
            stats = {q.service: q for q in await store.queue_stats(now=T0 + 1)}
            if "gpu" in stats:
                most = max(most, stats["gpu"].in_flight)
                assert stats["gpu"].in_flight <= CAP
            await asyncio.sleep(0.001)
        return most

    sampling = asyncio.create_task(sampler(stores[-1]))
    try:
        await asyncio.wait_for(
            asyncio.gather(*(leaser(s, n) for n, s in enumerate(stores[:LEASERS]))), 60
        )
    finally:
        finished.set()
        sampled = await sampling
        tasks = [t for sid in scenario_ids for t in await stores[0].list_tasks(sid)]
        for store in stores:
            await store.close()
    assert all(t.status is TaskStatus.SUCCESS for t in tasks)
    return max(sampled, holding["most"]), holding["done"]


def test_eight_sqlite_leasers_never_exceed_the_cap(tmp_path: Path) -> None:
    most, done = asyncio.run(race(lambda: open_sqlite_at(tmp_path / "race.db")))
    assert done == TASKS
    assert 1 <= most <= CAP


@pytest.mark.redis
def test_eight_redis_leasers_never_exceed_the_cap(redis_server: RedisServer) -> None:
    prefix = f"race{next(_ids)}"
    most, done = asyncio.run(race(lambda: open_redis_at(redis_server.url, prefix)))
    assert done == TASKS
    assert 1 <= most <= CAP


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_eight_redis_cluster_leasers_never_exceed_the_cap(
    conformance_cluster: RedisCluster,
) -> None:
    """Scenarios on several shards, the cap in its own slot: reservations and confirmed
    leases count together (decision 68). Keys are refused on a cluster."""
    prefix = f"race{next(_ids)}"
    opener = lambda: open_redis_at(conformance_cluster.url, prefix)  # noqa: E731
    most, done = asyncio.run(race(opener, keyed=False))
    assert done == TASKS
    assert 1 <= most <= CAP


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_eight_redis_cluster_leasers_never_exceed_a_tenants_cap(
    conformance_cluster: RedisCluster,
) -> None:
    """A tenant's max_in_flight on a cluster: its room reserved in the tenant's gate slot
    before the plan, confirmed after (fair_lease.py, decision 80)."""
    prefix = f"race{next(_ids)}"
    opener = lambda: open_redis_at(conformance_cluster.url, prefix)  # noqa: E731
    most, done = asyncio.run(race(opener, keyed=False, capped_tenant=True))
    assert done == TASKS
    assert 1 <= most <= CAP


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_eight_leasers_never_exceed_a_tenants_cap(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        opener: Opener = lambda: open_sqlite_at(tmp_path / "race.db")  # noqa: E731
    else:
        url = request.getfixturevalue("redis_server").url
        prefix = f"race{next(_ids)}"
        opener = lambda: open_redis_at(url, prefix)  # noqa: E731
    most, done = asyncio.run(race(opener, keyed=False, capped_tenant=True))
    assert done == TASKS
    assert 1 <= most <= CAP


async def rate_run(open_store: Opener) -> list[int]:
    """8 leasers, each asking for 3 tasks per step of an injected clock (0.1 s a step);
    the bucket: 4 tokens a second, 5 at most. Returns the tasks leased at each step."""
    gates = {"gpu": ServiceGate(rate_limit=RateLimit(per_second=4.0, burst=5))}
    stores = [await open_store() for _ in range(LEASERS)]
    try:
        await submit(stores[0], keyed=False)
        per_step = []
        for step in range(10):
            now = T0 + 0.1 * step
            leased = await asyncio.gather(
                *(
                    s.lease(
                        "gpu",
                        max_tasks=3,
                        lease_seconds=30.0,
                        worker_id=None,
                        now=now,
                        nonce=f"s{step}w{n}",
                        gates=gates,
                    )
                    for n, s in enumerate(stores)
                )
            )
            per_step.append(sum(len(batch) for batch in leased))
        return per_step
    finally:
        for store in stores:
            await store.close()


def check_rate(per_step: list[int]) -> None:
    """A full bucket of 5 at the start, then 0.4 tokens a step: over steps 0..k at most
    5 + 0.4 k leased, and (with far more asked for) the bucket is used, not left idle."""
    total = 0
    for k, n in enumerate(per_step):
        total += n
        assert total <= 5 + 0.4 * k + 1e-9, per_step
    assert per_step[0] == 5
    assert total == 5 + int(0.4 * 9 + 1e-9), per_step


def test_eight_sqlite_leasers_stay_within_the_rate_limit(tmp_path: Path) -> None:
    check_rate(asyncio.run(rate_run(lambda: open_sqlite_at(tmp_path / "rate.db"))))


@pytest.mark.redis
def test_eight_redis_leasers_stay_within_the_rate_limit(redis_server: RedisServer) -> None:
    prefix = f"rate{next(_ids)}"
    check_rate(asyncio.run(rate_run(lambda: open_redis_at(redis_server.url, prefix))))


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_eight_redis_cluster_leasers_stay_within_the_rate_limit(
    conformance_cluster: RedisCluster,
) -> None:
    prefix = f"rate{next(_ids)}"
    check_rate(asyncio.run(rate_run(lambda: open_redis_at(conformance_cluster.url, prefix))))


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_a_cluster_top_up_lease_stays_within_the_reserved_room(
    conformance_cluster: RedisCluster,
) -> None:
    """When a concurrent leaser took a planned task, the lease tops up shard by shard:
    each shard's script is held to what is left of the reserved room (its `quota`), not
    to the count asked for."""
    from scenarist.storage.redis.store import RedisStore

    async def scenario() -> int:
        store = await RedisStore.open(conformance_cluster.url, key_prefix=f"topup{next(_ids)}")
        try:
            await submit(store, keyed=False)
            args = ("", "", repr(T0 + 1), "topup", "{}")
            leased = await store._leaser._lease_rotating(["gpu"], 10, args, {"gpu": 2})
            return len(leased)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 2
