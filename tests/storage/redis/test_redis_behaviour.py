"""Redis-only behaviour: seed lists, outages, memory, event ids, retention, shards, keys."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from scenarist.core.errors import IllegalTransitionError, ParamError, StoreUnavailableError
from scenarist.core.model import ScenarioPlan
from scenarist.core.rerun import RerunRequest
from scenarist.storage.redis.keys import FUNCTION_LIBRARIES
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, diamond, lease, plan, spec, submit
from tests.storage.redis.conftest import OpenStore
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for_events, wait_for_ready

pytestmark = pytest.mark.redis


async def _brpop(url: str, key: str) -> dict[str, Any]:
    consumer = Redis.from_url(url, decode_responses=True)
    try:
        popped = await consumer.brpop([key], timeout=2)
        assert popped is not None, f"nothing was pushed onto {key}"
        return dict(json.loads(popped[1]))
    finally:
        await consumer.aclose()


async def test_publish_lists_delivers_ready_tasks_to_a_plain_consumer(
    open_store: OpenStore, redis_server: RedisServer
) -> None:
    store = await open_store(publish_lists=True, list_prefix="")
    the_plan = plan(spec("a", service="text-service"), spec("b", "a", service="text-service"))
    scenario, _ = await submit(store, the_plan)
    root = await _brpop(redis_server.url, "text-service")
    assert root == {
        "id": f"{scenario.id}:a", "scenario_id": scenario.id, "name": "a",
        "service": "text-service", "payload": {"name": "a"}, "inputs": [], "level": 0,
    }  # fmt: skip
    (leased,) = await lease(store, "text-service", now=T0 + 1)
    with pytest.raises(IllegalTransitionError):  # a leased task is not claimed twice
        await store.claim(leased.id, lease_seconds=None, worker_id=None, now=T0 + 1, nonce="x")
    await store.complete(
        leased.id, leased.lease_token, result_ref="s3://a", result={"n": 1}, now=T0 + 2
    )
    child = await _brpop(redis_server.url, "text-service")
    assert child["id"] == f"{scenario.id}:b"
    assert child["inputs"] == [
        {"task": "a", "status": "success", "result_ref": "s3://a", "result": {"n": 1}}
    ]


async def test_publish_lists_pushes_a_retried_task_when_its_backoff_is_over(
    open_store: OpenStore, redis_server: RedisServer
) -> None:
    store = await open_store(publish_lists=True, list_prefix="q:")
    scenario, _ = await submit(store, plan(spec("a", service="svc")))
    await _brpop(redis_server.url, "q:svc")
    (task,) = await lease(store, now=T0 + 1)
    await store.fail(task.id, task.lease_token, attempt=1, error="x", retry_at=T0 + 10, now=T0 + 2)
    await store.purge_finished(now=T0 + 5, limit=10)
    assert await store.client.llen("q:svc") == 0, "not pushed before the backoff ends"
    await store.purge_finished(now=T0 + 10, limit=10)
    assert (await _brpop(redis_server.url, "q:svc"))["id"] == f"{scenario.id}:a"


async def test_publish_lists_is_refused_with_several_shards(open_store: OpenStore) -> None:
    with pytest.raises(ParamError, match="single-node") as raised:
        await open_store(publish_lists=True, shard_count=4)
    assert raised.value.field == "publish_lists"


async def test_outage_raises_store_unavailable_then_recovers(
    rstore: RedisStore, redis_server: RedisServer
) -> None:
    scenario, _ = await submit(rstore, diamond())
    redis_server.kill()
    with pytest.raises(StoreUnavailableError):
        await rstore.get_scenario(scenario.id)
    with pytest.raises(StoreUnavailableError):
        await rstore.ping()
    redis_server.start()  # same port, empty data (no persistence in tests)
    await rstore.ping()
    waiter = asyncio.create_task(wait_for_ready(rstore, ["svc"], 10.0))
    await asyncio.sleep(1.5)  # the pub/sub connection reconnects and re-subscribes
    started = time.monotonic()
    again, _ = await submit(rstore, diamond())
    await asyncio.wait_for(waiter, 5.0)
    assert time.monotonic() - started < 2.0, "the waiter was woken, not timed out"
    assert (await rstore.get_scenario(again.id)).id == again.id


async def test_waiters_wake_on_ready_tasks_and_new_events(rstore: RedisStore) -> None:
    scenario, _ = await submit(rstore, diamond())
    events = asyncio.create_task(wait_for_events(rstore, scenario.id, 5.0))
    ready = asyncio.create_task(wait_for_ready(rstore, ["other"], 5.0))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    (task,) = await lease(rstore, now=T0 + 1)
    await asyncio.wait_for(events, 2.0)
    await submit(rstore, plan(spec("x", service="other")))
    await asyncio.wait_for(ready, 2.0)
    assert time.monotonic() - started < 2.0
    assert task.name == "a"


def _video_plan(slides: int = 3) -> ScenarioPlan:
    specs = [spec("script"), spec("voice", "script")]
    for i in range(1, slides + 1):
        specs += [spec(f"prompt_{i}", "script"), spec(f"image_{i}", f"prompt_{i}")]
    specs.append(spec("video", "voice", *(f"image_{i}" for i in range(1, slides + 1))))
    return plan(*specs)


async def test_memory_per_finished_task_is_small(rstore: RedisStore) -> None:
    client = rstore.client
    await client.execute_command("MEMORY", "PURGE")
    before = (await client.info("memory"))["used_memory"]
    the_plan, scenarios = _video_plan(), 60
    for _ in range(scenarios):
        await submit(rstore, the_plan)
    finished, now = 0, T0
    while batch := await lease(rstore, now=now):
        now += 1
        for task in batch:
            await rstore.complete(task.id, task.lease_token, result_ref="r", result=None, now=now)
        finished += len(batch)
    assert finished == scenarios * len(the_plan.tasks)
    await client.execute_command("MEMORY", "PURGE")
    per_task = ((await client.info("memory"))["used_memory"] - before) / finished
    print(f"redis memory per finished task: {per_task:.0f} bytes")
    assert per_task < 3000


async def test_event_ids_increase_within_a_scenario(rstore: RedisStore) -> None:
    scenario, _ = await submit(rstore, diamond())
    now = T0
    while batch := await lease(rstore, now=now):
        now += 1
        for task in batch:
            await rstore.complete(task.id, task.lease_token, result_ref="r", result=None, now=now)
    events = await rstore.read_events(scenario.id, after=None, limit=1000)
    ids = [tuple(int(part) for part in e.id.split("-")) for e in events]
    assert len(ids) > 8
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    tail = await rstore.read_events(scenario.id, after=events[3].id, limit=1000)
    assert [e.id for e in tail] == [e.id for e in events[4:]]
    with pytest.raises(ParamError):
        await rstore.read_events(scenario.id, after="not-an-id", limit=10)


async def test_finished_scenarios_expire_and_leave_the_listing(open_store: OpenStore) -> None:
    store = await open_store(retention_seconds=0.3)
    scenario, _ = await submit(store, plan(spec("a")))
    (task,) = await lease(store, now=T0 + 1)
    await store.fail(task.id, task.lease_token, attempt=1, error="x", retry_at=None, now=T0 + 2)
    shard = store.key_space.for_scenario(scenario.id)
    assert 0 < await store.client.pttl(shard.scenario(scenario.id)) <= 300
    await store.retry_scenario(scenario.id, now=T0 + 3)
    assert await store.client.pttl(shard.tasks(scenario.id)) == -1, "retry clears retention"
    kept, _ = await submit(store, plan(spec("b")))
    leased = {t.scenario_id: t for t in await lease(store, now=T0 + 4)}
    task = leased[scenario.id]  # fails for good again; `kept` stays running
    await store.fail(task.id, task.lease_token, attempt=1, error="x", retry_at=None, now=T0 + 5)
    await asyncio.sleep(0.5)
    page, cursor = await store.list_scenarios(status=None, template=None, cursor=None, limit=10)
    assert [s.id for s in page] == [kept.id]
    assert cursor is None
    assert await store.client.zcard(shard.index(None)) == 1, "expired entries are pruned"


async def test_lease_polls_every_shard(open_store: OpenStore) -> None:
    store = await open_store(shard_count=3)
    ids = [(await submit(store, plan(spec("a"))))[0].id for _ in range(12)]
    shards = {store.key_space.shard_of(sid) for sid in ids}
    assert len(shards) > 1
    first = await lease(store, now=T0 + 1, max_tasks=5)
    rest = await lease(store, now=T0 + 1, max_tasks=100)
    assert sorted(t.scenario_id for t in first + rest) == sorted(ids)
    page, _ = await store.list_scenarios(status=None, template=None, cursor=None, limit=100)
    assert sorted(s.id for s in page) == sorted(ids)
    again, created = await store.create_scenario(*_records(ids[0], "k"))
    assert created
    same, created = await store.create_scenario(*_records("other-id", "k"))
    assert not created
    assert same.id == again.id


def _records(scenario_id: str, key: str) -> tuple[Any, Any]:
    from scenarist.service.records import build_records

    return build_records(
        plan(spec("a")), scenario_id=f"{scenario_id}-{key}" if scenario_id != "other-id"
        else scenario_id, now=T0, idempotency_key=key,
    )  # fmt: skip


async def test_every_key_follows_the_documented_layout(rstore: RedisStore) -> None:
    scenario, _ = await submit(rstore, diamond(), callback_url="http://cb", idempotency_key="k")
    (task,) = await lease(rstore, now=T0 + 1)
    await rstore.fail(task.id, task.lease_token, attempt=1, error="x", retry_at=None, now=T0 + 2)
    shard = rstore.key_space.for_scenario(scenario.id)
    expected = {
        shard.scenario(scenario.id): "hash",
        shard.tasks(scenario.id): "hash",
        shard.events(scenario.id): "stream",
        shard.in_flight: "hash",
        shard.outbox: "zset",
        shard.services: "set",
        shard.index(None): "zset",
        shard.index("failed"): "zset",
        shard.idempotency("k"): "string",
        FUNCTION_LIBRARIES: "hash",  # server-wide, outside every key prefix
    }
    found = {key: await rstore.client.type(key) async for key in rstore.client.scan_iter()}
    assert found == expected
    assert all(key.startswith(shard.prefix) for key in found if key != FUNCTION_LIBRARIES)


async def test_a_tasks_history_expires_with_its_finished_scenario(open_store: OpenStore) -> None:
    store = await open_store(retention_seconds=0.3)
    scenario, _ = await submit(store, plan(spec("a")))
    (task,) = await lease(store, now=T0 + 1)
    await store.complete(task.id, task.lease_token, result_ref="r1", result=None, now=T0 + 2)
    await store.rerun_scenario(scenario.id, RerunRequest(("a",)), now=T0 + 3)
    shard = store.key_space.for_scenario(scenario.id)
    history = shard.history(scenario.id)
    assert await store.client.pttl(history) == -1, "running again: kept"
    (task,) = await lease(store, now=T0 + 4)
    await store.complete(task.id, task.lease_token, result_ref="r2", result=None, now=T0 + 5)
    assert 0 < await store.client.pttl(history) <= 300
    [run] = await store.task_history(task.id)
    assert run.result_ref == "r1"
    await asyncio.sleep(0.4)
    assert not await store.client.exists(history)


async def test_an_override_merged_from_a_stale_payload_is_merged_again(
    rstore: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script writes a merged payload only over the payload it was merged from."""
    from scenarist.storage.redis import rerun as rerun_module

    scenario, _ = await submit(rstore, plan(spec("a", payload={"k": 1})))
    real = rerun_module._overrides
    calls: list[int] = []

    async def stale_first(client: Any, key: str, payloads: Any) -> list[list[str]]:
        found = await real(client, key, payloads)
        calls.append(len(found))
        if len(calls) == 1:  # as if another rerun changed the payload after this read
            stale = '{"k": 0}', '{"k": 0, "style": "old"}'
            return [[name, *stale, digest] for name, _, _, digest in found]
        return found

    monkeypatch.setattr(rerun_module, "_overrides", stale_first)
    request = RerunRequest(("a",), {"a": {"style": "noir"}})
    await rstore.rerun_scenario(scenario.id, request, now=T0 + 1)
    assert calls == [1, 1]
    assert (await rstore.get_task(f"{scenario.id}:a")).payload == {"k": 1, "style": "noir"}
