"""The Redis store's connection pool waits for a free connection instead of failing
(pool.py), on one node and on a cluster, and gives up after `pool_timeout`."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import BlockingConnectionPool

from scenarist.core.errors import StoreUnavailableError
from scenarist.settings import Settings
from scenarist.storage.redis.pool import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT_SECONDS,
    GatedCluster,
)
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, lease, plan, spec, submit
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis
KINDS = ["single", pytest.param("cluster", marks=pytest.mark.redis_cluster)]
_prefixes = itertools.count()


@pytest.fixture(params=KINDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "cluster":
        cluster: RedisCluster = request.getfixturevalue("conformance_cluster")
        yield cluster.url
        cluster.flush()
        return
    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


async def open_small(url: str, *, connections: int, timeout: float) -> RedisStore:
    return await RedisStore.open(
        url,
        key_prefix=f"pool{next(_prefixes)}",
        max_connections=connections,
        pool_timeout=timeout,
    )


async def test_more_calls_than_connections_wait_their_turn(store_url: str) -> None:
    store = await open_small(store_url, connections=2, timeout=30.0)
    try:
        scenario, tasks = await submit(store, plan(*(spec(f"t{i}") for i in range(20))))
        leased = await lease(store, now=T0 + 1, max_tasks=20)
        reads = [store.get_task(t.id) for t in tasks] + [store.get_scenario(scenario.id)] * 100
        fails = [
            store.fail(t.id, t.lease_token, attempt=1, error="x", retry_at=T0 + 5, now=T0 + 2)
            for t in leased
        ]
        answers = await asyncio.gather(*reads, *fails)
        assert len(answers) == len(reads) + len(fails)
        assert all(t.status.value == "queued" for t in await store.list_tasks(scenario.id))
    finally:
        await store.close()


async def test_a_call_that_finds_no_connection_in_time_is_store_unavailable(
    store_url: str,
) -> None:
    store = await open_small(store_url, connections=1, timeout=0.2)
    try:
        await store.ping()
        taken, release = asyncio.Event(), asyncio.Event()

        async def hold_the_only_connection() -> None:
            client = store.client
            if isinstance(client, GatedCluster):
                async with client.gate.turn():
                    taken.set()
                    await release.wait()
                return
            pool = client.connection_pool
            connection = await pool.get_connection()
            taken.set()
            await release.wait()
            await pool.release(connection)

        holder = asyncio.create_task(hold_the_only_connection())
        await taken.wait()
        with pytest.raises(StoreUnavailableError):
            await store.ping()
        release.set()
        await holder
        await store.ping()  # the connection is back: calls go through again
    finally:
        await store.close()


async def test_single_node_pool_is_a_blocking_pool_sized_by_the_settings(tmp_path: Path) -> None:
    settings = Settings()
    assert (settings.redis_max_connections, settings.redis_pool_timeout) == (
        DEFAULT_MAX_CONNECTIONS,
        DEFAULT_POOL_TIMEOUT_SECONDS,
    )
    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        store = await open_small(server.url, connections=7, timeout=3.0)
        pool = store.client.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert (pool.max_connections, pool.timeout) == (7, 3.0)
        await store.close()
    finally:
        server.stop()
