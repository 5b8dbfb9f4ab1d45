"""Cluster mode of the Redis store: URL options, refusals, slot placement, wake-ups."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from scenarist.core.errors import ParamError
from scenarist.storage import StoreConfigError, open_store
from scenarist.storage.redis.cluster import DEFAULT_CLUSTER_SHARDS, parse_cluster_url
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, lease, plan, spec, submit
from tests.support.redis_cluster import RedisCluster, command
from tests.support.waiting import wait_for_ready

pytestmark = [pytest.mark.redis, pytest.mark.redis_cluster]
_prefixes = (f"cl{i}" for i in itertools.count())


def test_cluster_url_lists_nodes_credentials_and_options() -> None:
    target = parse_cluster_url(
        "rediss+cluster://app:s%40cret@a.example:7000,b.example:7001/"
        "?shard_count=8&wait_replicas=1&wait_timeout_ms=250"
    )
    assert target.nodes == (("a.example", 7000), ("b.example", 7001))
    assert (target.tls, target.username, target.password) == (True, "app", "s@cret")
    assert (target.shard_count, target.wait_replicas, target.wait_timeout_ms) == (8, 1, 250)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("redis+cluster://a:7000?shards=4", "unknown option 'shards'"),
        ("redis+cluster://a:7000?shard_count=x", "shard_count must be"),
        ("redis+cluster://a:7000,b", "bad node 'b'"),
        ("redis+cluster://a:99999", "bad node 'a:99999'"),
    ],
)
def test_bad_cluster_urls_name_the_problem(url: str, named: str) -> None:
    with pytest.raises(ParamError, match=named):
        parse_cluster_url(url)


async def test_cluster_refuses_publish_lists_and_single_node_refuses_wait() -> None:
    with pytest.raises(ParamError, match="cannot work on Redis Cluster"):
        await RedisStore.open("redis+cluster://127.0.0.1:7000", publish_lists=True)
    with pytest.raises(ParamError, match="needs a redis\\+cluster:// store"):
        await RedisStore.open("redis://127.0.0.1:7000/0", wait_replicas=1)
    with pytest.raises(StoreConfigError, match="redis\\+cluster://"):
        await open_store("memcached://127.0.0.1:1")


async def test_scenarios_spread_over_every_master(cluster: RedisCluster) -> None:
    store = await RedisStore.open(cluster.url, key_prefix=next(_prefixes))
    try:
        assert store.key_space.shard_count == DEFAULT_CLUSTER_SHARDS
        ids = [(await submit(store, plan(spec("a"))))[0].id for _ in range(40)]
        per_master = [int(command(port, "DBSIZE")) for port in cluster.ports]
        assert all(count > 0 for count in per_master), per_master
        leased = await lease(store, now=T0 + 1, max_tasks=100)
        assert sorted(t.scenario_id for t in leased) == sorted(ids)
        stats = await store.queue_stats(now=T0 + 1)
        assert [(s.service, s.ready, s.in_flight) for s in stats] == [("svc", 0, 40)]
    finally:
        await store.close()


async def test_a_script_on_one_master_wakes_a_waiter_subscribed_elsewhere(
    cluster: RedisCluster,
) -> None:
    """Scripts PUBLISH; the cluster broadcasts, so the notifier's one node hears all."""
    prefix = next(_prefixes)
    waiter = await RedisStore.open(cluster.url, key_prefix=prefix)
    writer = await RedisStore.open(cluster.url, key_prefix=prefix)
    try:
        for _ in range(6):  # scenarios land on different shards, hence masters
            waiting = asyncio.create_task(wait_for_ready(waiter, ["svc"], 5.0))
            await asyncio.sleep(0.2)  # subscribed (the first wait also waits for that)
            started = asyncio.get_running_loop().time()
            await submit(writer, plan(spec("a")))
            await waiting
            assert asyncio.get_running_loop().time() - started < 2.0
    finally:
        await waiter.close()
        await writer.close()


async def test_every_key_of_the_store_lives_in_its_shard_slot(cluster: RedisCluster) -> None:
    prefix = next(_prefixes)
    store = await RedisStore.open(cluster.url, key_prefix=prefix, shard_count=6)
    client = ClusterClient.from_url(f"redis://127.0.0.1:{cluster.ports[0]}")
    try:
        for _ in range(12):
            await submit(store, plan(spec("a"), spec("b", "a")))
            [task] = await lease(store, now=T0 + 1, max_tasks=1)
            await store.complete(task.id, task.lease_token, result_ref="r", result=None, now=T0)
        slots = {client.keyslot(shard.prefix) for shard in store.key_space.shards()}
        async for key in client.scan_iter(match=f"{{{prefix}:*", count=1000):
            assert client.keyslot(key) in slots, key
    finally:
        await client.aclose()
        await store.close()


async def test_more_concurrent_calls_than_a_node_pool_holds(cluster: RedisCluster) -> None:
    """redis-py's cluster pool fails instead of waiting when exhausted; the store queues."""
    store = await RedisStore.open(cluster.url, key_prefix=next(_prefixes), shard_count=1)
    try:
        for _ in range(8):
            await submit(store, plan(*(spec(f"t{i}") for i in range(100))))
        leased = await lease(store, now=T0 + 1, max_tasks=1000)
        assert len(leased) == 800
        done = await asyncio.gather(
            *(
                store.complete(t.id, t.lease_token, result_ref="r", result=None, now=T0 + 2)
                for t in leased
            )
        )
        assert all(d.task.status.value == "success" for d in done)
    finally:
        await store.close()


async def test_a_held_task_at_a_shards_head_wins_that_shard_no_share(cluster: RedisCluster) -> None:
    """The cluster lease ranks the shards' heads without the tasks a full max_parallel
    group holds back, so it takes the globally next ready task, not the held shard's."""
    store = await RedisStore.open(cluster.url, key_prefix=next(_prefixes))
    try:
        space = store.key_space
        ids = (f"held{i:04d}" for i in itertools.count())
        first = next(ids)
        same = next(i for i in ids if space.shard_of(i) == space.shard_of(first))
        other = next(i for i in ids if space.shard_of(i) != space.shard_of(first))
        limited = [dataclasses.replace(spec(n), max_parallel=1) for n in ("x_1", "x_2")]
        await submit(store, plan(*limited), now=T0, scenario_id=first)
        [running] = await lease(store, now=T0 + 0.5, max_tasks=1)
        assert running.name == "x_1"  # x_2 is held from now on, at the head of its shard
        await submit(store, plan(spec("b")), now=T0 + 1, scenario_id=other)
        await submit(store, plan(spec("c")), now=T0 + 2, scenario_id=same)
        [taken] = await lease(store, now=T0 + 3, max_tasks=1)
        assert taken.id == f"{other}:b"
        [stats] = await store.queue_stats(now=T0 + 3)
        assert (stats.ready, stats.held) == (2, 1)
    finally:
        await store.close()


async def test_a_candidate_its_own_lease_filled_the_group_of_is_passed_over(
    cluster: RedisCluster,
) -> None:
    """Two tasks of one group with room for one are both at the heads of their shard, but
    the plan counts the group's room on (heads.lua): the second is no candidate, and the
    lease takes the globally next task from another shard, as the walk over one queue
    would (core/gates.py LeaseRoom)."""
    store = await RedisStore.open(cluster.url, key_prefix=next(_prefixes))
    try:
        space = store.key_space
        ids = (f"room{i:04d}" for i in itertools.count())
        first = next(ids)
        other = next(i for i in ids if space.shard_of(i) != space.shard_of(first))
        limited = [dataclasses.replace(spec(n), max_parallel=1) for n in ("x_1", "x_2")]
        await submit(store, plan(*limited), now=T0, scenario_id=first)
        await submit(store, plan(spec("b")), now=T0 + 1, scenario_id=other)
        taken = await lease(store, now=T0 + 2, max_tasks=2)
        assert [t.id for t in taken] == [f"{first}:x_1", f"{other}:b"]
        [stats] = await store.queue_stats(now=T0 + 2)
        assert (stats.ready, stats.held, stats.in_flight) == (1, 1, 2)
    finally:
        await store.close()


async def test_a_lease_passing_a_held_candidate_changes_its_shard_in_one_step(
    cluster: RedisCluster,
) -> None:
    """A group with room for one ahead of a plain task of the same scenario: the lease
    takes the first instance and the plain task in one script, so the scenario's events
    are the one rule's: both tasks, then the scenario running (not running in between,
    as a second script on the shard would write)."""
    store = await RedisStore.open(cluster.url, key_prefix=next(_prefixes))
    try:
        limited = [dataclasses.replace(spec(n), max_parallel=1) for n in ("x_1", "x_2")]
        await submit(store, plan(*limited, spec("z")), now=T0, scenario_id="onestep")
        taken = await lease(store, now=T0 + 2, max_tasks=2)
        assert [t.name for t in taken] == ["x_1", "z"]
        events = await store.read_events("onestep", after=None, limit=100)
        assert [(e.task, e.status) for e in events] == [
            (None, "pending"),
            ("x_1", "processing"),
            ("z", "processing"),
            (None, "running"),
        ]
    finally:
        await store.close()
