"""Conformance: the step cache (core/step_cache.py) on every backend. A cached task that
becomes ready with the inputs of an earlier success completes in the same step without a
worker, its dependents are released (and looked up in turn); a changed payload, a
changed parent result or an expired entry misses; clearing empties the cache; hits and
misses are counted per service."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scenarist.core.model import ScenarioPlan, TaskStatus
from scenarist.core.step_cache import CacheCount
from scenarist.storage.base import Store
from scenarist.storage.sqlite.schema import SCHEMA_VERSION
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import T0, lease, plan, spec, statuses, submit
from tests.storage.test_sqlite_waiting import drop_version_10_columns


def chain(*, ttl: int = 100, text: str = "hello", cache_image: bool = True) -> ScenarioPlan:
    """prompt (cached) -> image (cached or not) -> video (never cached)."""
    return plan(
        spec("prompt", service="text", payload={"text": text}, cache_ttl=ttl),
        spec("image", "prompt", service="gpu", cache_ttl=ttl if cache_image else None),
        spec("video", "image", service="video"),
    )


async def run_all(store: Store, scenario_id: str, *, now: float) -> list[str]:
    """Lease and complete every ready task until none is left; the names leased of
    `scenario_id` (the tests run one scenario at a time)."""
    leased: list[str] = []
    while True:
        ready = [
            t for service in ("text", "gpu", "video") for t in await lease(store, service, now=now)
        ]
        if not ready:
            return leased
        for task in ready:
            if task.scenario_id == scenario_id:
                leased.append(task.name)
            await store.complete(
                task.id,
                task.lease_token,
                result_ref=f"ref:{task.name}",
                result={"made": task.name},
                now=now,
            )


async def test_a_second_identical_run_leases_only_the_uncached_task(store: Store) -> None:
    first, _ = await submit(store, chain(), scenario_id="first", now=T0)
    assert await run_all(store, first.id, now=T0 + 1) == ["prompt", "image", "video"]
    second, _ = await submit(store, chain(), scenario_id="second", now=T0 + 2)
    assert await statuses(store, second.id) == {
        "prompt": "success",
        "image": "success",
        "video": "queued",
    }
    assert await run_all(store, second.id, now=T0 + 3) == ["video"]
    tasks = {t.name: t for t in await store.list_tasks(second.id)}
    prompt, image = tasks["prompt"], tasks["image"]
    assert (prompt.cached, prompt.cached_from) == (True, "first:prompt")
    assert (image.cached, image.cached_from) == (True, "first:image")
    assert (image.result_ref, image.result) == ("ref:image", {"made": "image"})
    assert (image.attempt, image.worker_id) == (0, None)
    assert prompt.cache_key is not None
    assert prompt.cache_key == (await store.get_task("first:prompt")).cache_key
    assert not tasks["video"].cached
    assert (await store.get_scenario(second.id)).status.value == "success"
    events = [(e.task, e.status) for e in await store.read_events(second.id, after=None, limit=50)]
    assert events[:5] == [
        (None, "pending"),
        ("prompt", "success"),
        ("image", "queued"),
        ("image", "success"),
        ("video", "queued"),
    ]
    assert await store.cache_counts() == [
        CacheCount("gpu", hits=1, misses=1),
        CacheCount("text", hits=1, misses=1),
    ]


async def test_a_changed_payload_or_parent_result_misses(store: Store) -> None:
    first, _ = await submit(store, chain(), scenario_id="first", now=T0)
    await run_all(store, first.id, now=T0 + 1)
    await submit(store, chain(text="bye"), scenario_id="other", now=T0 + 2)
    assert await statuses(store, "other") == {
        "prompt": "queued",
        "image": "pending",
        "video": "pending",
    }
    [prompt] = await lease(store, "text", now=T0 + 3)
    # Another result upstream: the image's key changes with it.
    await store.complete(
        prompt.id, prompt.lease_token, result_ref="ref:other", result=None, now=T0 + 3
    )
    assert (await store.get_task("other:image")).status is TaskStatus.QUEUED
    assert [c.misses for c in await store.cache_counts()] == [2, 2]


async def test_an_expired_entry_misses(store: Store) -> None:
    first, _ = await submit(store, chain(ttl=10), scenario_id="first", now=T0)
    await run_all(store, first.id, now=T0 + 1)  # entries expire at T0 + 11
    await submit(store, chain(ttl=10), scenario_id="fresh", now=T0 + 10.5)
    assert (await store.get_task("fresh:prompt")).cached
    await submit(store, chain(ttl=10), scenario_id="late", now=T0 + 11)
    assert (await store.get_task("late:prompt")).status is TaskStatus.QUEUED
    # SQLite deletes the two expired entries; Redis's own expiry does it there.
    swept = await store.sweep_cache(now=T0 + 11, limit=100)
    assert swept == (2 if isinstance(store, SqliteStore) else 0)


async def test_clearing_empties_the_cache_of_one_service_or_all(store: Store) -> None:
    first, _ = await submit(store, chain(), scenario_id="first", now=T0)
    await run_all(store, first.id, now=T0 + 1)
    await store.clear_cache(service="text")
    again, _ = await submit(store, chain(), scenario_id="again", now=T0 + 2)
    assert (await store.get_task("again:prompt")).status is TaskStatus.QUEUED
    await run_all(store, again.id, now=T0 + 3)  # the image hits: same prompt result
    assert (await store.get_task("again:image")).cached
    await store.clear_cache(service=None)
    await submit(store, chain(), scenario_id="third", now=T0 + 4)
    assert (await store.get_task("third:prompt")).status is TaskStatus.QUEUED


async def test_a_retried_task_is_looked_up_again(store: Store) -> None:
    first, _ = await submit(store, chain(cache_image=False), scenario_id="first", now=T0)
    await run_all(store, first.id, now=T0 + 1)
    the_plan = plan(
        spec("prompt", service="text", payload={"text": "hello"}, cache_ttl=100, max_attempts=1)
    )
    await submit(store, the_plan, scenario_id="other", now=T0 + 2)
    assert (await store.get_task("other:prompt")).cached  # same service and payload
    await store.clear_cache(service=None)
    lone, _ = await submit(store, the_plan, scenario_id="lone", now=T0 + 3)
    [task] = await lease(store, "text", now=T0 + 4)
    await store.fail(task.id, task.lease_token, attempt=1, error="x", retry_at=None, now=T0 + 4)
    await submit(store, chain(cache_image=False), scenario_id="writer", now=T0 + 6)
    await run_all(store, "writer", now=T0 + 7)
    await store.retry_scenario(lone.id, now=T0 + 8)
    retried = await store.get_task("lone:prompt")
    assert (retried.cached, retried.cached_from) == (True, "writer:prompt")
    assert (await store.get_scenario(lone.id)).status.value == "success"


async def test_a_version_7_file_migrates_and_its_tasks_are_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        await submit(store, chain(), scenario_id="old", now=T0)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_10_columns(conn)
        conn.execute("PRAGMA user_version = 9")
    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # The old scenario's tasks have no lifetime: they run and write no entry.
        old = await reopened.get_task("old:prompt")
        assert (old.cache_ttl, old.cache_key, old.cached) == (None, None, False)
        await run_all(reopened, "old", now=T0 + 1)
        await submit(reopened, chain(), scenario_id="new", now=T0 + 2)
        assert (await reopened.get_task("new:prompt")).status is TaskStatus.QUEUED
        await run_all(reopened, "new", now=T0 + 3)
        await submit(reopened, chain(), scenario_id="newer", now=T0 + 4)
        assert (await reopened.get_task("newer:prompt")).cached
    finally:
        await reopened.close()


async def test_an_entry_serves_scenarios_on_every_shard(store: Store) -> None:
    """A Redis Cluster keeps an entry on the shard of the success it records and copies
    it to the others after the step (decision 66): a submission on another shard hits."""
    from scenarist.storage.redis.store import RedisStore

    ids = [f"sc{n}" for n in range(40)]
    if isinstance(store, RedisStore) and store.key_space.shard_count > 1:
        space = store.key_space
        home = space.shard_of(ids[0])
        others = {space.shard_of(i): i for i in ids[1:] if space.shard_of(i) != home}
        assert others, "the ids should spread over the shards"
        ids = [ids[0], *others.values()]
    await submit(store, chain(), scenario_id=ids[0], now=T0)
    await run_all(store, ids[0], now=T0 + 1)
    for n, scenario_id in enumerate(ids[1:], start=2):
        await submit(store, chain(), scenario_id=scenario_id, now=T0 + n)
        image = await store.get_task(f"{scenario_id}:image")
        assert (image.cached, image.cached_from) == (True, f"{ids[0]}:image")
