"""Kill -9 a master mid-run: a replica takes over, the store recovers by itself (callers
see StoreUnavailableError during the gap, never a hang), and with `wait_replicas=1` no
acknowledged state change is lost.

Replication is asynchronous, so without WAIT a change acknowledged by the old master
may never have reached the replica that replaced it; WAIT makes every state change wait
for one replica before the store answers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from scenarist.core.errors import StaleLeaseError, StoreUnavailableError
from scenarist.core.model import Task, TaskStatus
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import lease, plan, spec, submit
from tests.support.redis_cluster import RedisCluster, command, wait_until
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.redis_cluster, pytest.mark.slow]

SCENARIOS = 90
KILL_AFTER = 25  # completions before the kill
LEASE_SECONDS = 3.0
CALL_BOUND_SECONDS = 5.0  # no store call may take longer, failover or not


@dataclass
class Ledger:
    completed: set[str] = field(default_factory=set)  # acknowledged completions
    stale: list[str] = field(default_factory=list)  # a lease we were given was lost
    unavailable: int = 0
    slowest_call: float = 0.0


async def call(ledger: Ledger, operation: object) -> object:
    """Run one store call, timing it; StoreUnavailableError is counted, then re-raised."""
    started = time.monotonic()
    try:
        return await operation  # type: ignore[misc]
    except StoreUnavailableError:
        ledger.unavailable += 1
        raise
    finally:
        ledger.slowest_call = max(ledger.slowest_call, time.monotonic() - started)


async def complete(store: RedisStore, ledger: Ledger, task: Task) -> None:
    """Retry until the store acknowledges; the same token again is answered as duplicate."""
    while True:
        try:
            await call(
                ledger,
                store.complete(
                    task.id, task.lease_token, result_ref="r", result=None, now=time.time()
                ),
            )
        except StoreUnavailableError:
            await asyncio.sleep(0.05)
            continue
        except StaleLeaseError:
            ledger.stale.append(task.id)
            return
        ledger.completed.add(task.id)
        return


async def reap(store: RedisStore, ledger: Ledger) -> None:
    """Requeue leases that expired: a lease whose WAIT failed was never handed out."""
    now = time.time()
    for task in await call(ledger, store.find_expired(now=now, limit=100)):  # type: ignore[attr-defined]
        assert task.lease_token is not None
        await call(ledger, store.expire_lease(task.id, task.lease_token, retry_at=now, now=now))


async def work(store: RedisStore, ledger: Ledger, *, total: int, deadline: float) -> None:
    while len(ledger.completed) < total and time.monotonic() < deadline:
        try:
            leased = await call(
                ledger,
                lease(store, now=time.time(), max_tasks=5, lease_seconds=LEASE_SECONDS),
            )
            for task in leased:  # type: ignore[attr-defined]
                await complete(store, ledger, task)
            if not leased:
                await reap(store, ledger)
                await asyncio.sleep(0.05)
        except StoreUnavailableError:
            await asyncio.sleep(0.05)


def fail_over(cluster: RedisCluster, victim: RedisServer, replica: RedisServer) -> None:
    """Blocking: SIGKILL `victim`, wait for `replica` to take its slots, restart it (it
    comes back as a replica, so the promoted master has a replica to WAIT for again)."""
    victim.kill()
    wait_until(
        lambda: "role:master" in command(replica.port, "INFO", "replication"),
        20.0,
        f"replica {replica.port} promoted",
    )
    cluster.wait_ok(timeout=20.0)
    victim.start()
    cluster.wait_ok(timeout=20.0)


async def test_killed_master_loses_no_acknowledged_change(durable_cluster: RedisCluster) -> None:
    victim, replica = durable_cluster.nodes[0], durable_cluster.nodes[3]
    store = await RedisStore.open(
        f"{durable_cluster.url}?wait_replicas=1&wait_timeout_ms=500", key_prefix="fo"
    )
    ledger = Ledger()
    try:
        ids = [(await submit(store, plan(spec("a"))))[0].id for _ in range(SCENARIOS)]
        deadline = time.monotonic() + 60.0
        worker = asyncio.create_task(work(store, ledger, total=SCENARIOS, deadline=deadline))
        while len(ledger.completed) < KILL_AFTER:
            await asyncio.sleep(0.01)
        killed_at = len(ledger.completed)
        await asyncio.to_thread(fail_over, durable_cluster, victim, replica)
        await worker

        assert "role:slave" in command(victim.port, "INFO", "replication")
        assert killed_at < SCENARIOS, "the kill happened mid-run"
        assert ledger.unavailable > 0, "the failover gap was visible as StoreUnavailableError"
        assert ledger.slowest_call < CALL_BOUND_SECONDS
        assert ledger.stale == [], "an acknowledged lease was lost"
        assert len(ledger.completed) == SCENARIOS
        for sid in ids:
            task = await store.get_task(f"{sid}:a")
            assert task.status is TaskStatus.SUCCESS, task
            assert (await store.get_scenario(sid)).status.value == "success"
    finally:
        await store.close()
