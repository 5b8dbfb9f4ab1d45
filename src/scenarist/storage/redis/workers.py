"""The workers registry on Redis: a hash of worker records and a zset by last seen, both
under the registry's own hash tag (keys.py).

A sighting writes both in one MULTI (single slot, so Redis Cluster accepts it). A
heartbeat moves the zset score only (`ZADD XX GT`: an unknown worker stays unknown, a
late heartbeat never moves it back), and the read takes `last_seen` from the score.
Tasks in flight are counted from the lease-expiry zsets and the task records at read
time, so they cannot drift from the leases."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, cast

from redis.asyncio import Redis

from scenarist.core.workers import WorkerRecord, WorkerSighting
from scenarist.storage.redis.keys import KeySpace


async def record_worker(
    client: Redis, space: KeySpace, sighting: WorkerSighting, *, now: float
) -> None:
    first_seen = now
    known = await client.hget(space.workers, sighting.worker_id)
    if known is not None:
        first_seen = float(json.loads(known).get("first_seen", now))
    record = {
        "services": list(sighting.services),
        "labels": dict(sighting.labels),
        "sdk_version": sighting.sdk_version,
        "poll_seconds": sighting.poll_seconds,
        "first_seen": first_seen,
    }
    # GT: a sighting that arrives late never moves last_seen back (new ids are added).
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(space.workers, sighting.worker_id, json.dumps(record, sort_keys=True))
        pipe.zadd(space.workers_seen, {sighting.worker_id: now}, gt=True)
        await pipe.execute()


async def touch_worker(client: Redis, space: KeySpace, worker_id: str, *, now: float) -> None:
    await client.zadd(space.workers_seen, {worker_id: now}, xx=True, gt=True)


async def list_workers(
    client: Redis, space: KeySpace, *, forget_before: float, count_in_flight: bool
) -> list[WorkerRecord]:
    forgotten = await client.zrangebyscore(space.workers_seen, "-inf", f"({forget_before!r}")
    if forgotten:
        async with client.pipeline(transaction=True) as pipe:
            pipe.zrem(space.workers_seen, *forgotten)
            pipe.hdel(space.workers, *forgotten)
            await pipe.execute()
    seen = cast(
        "list[tuple[str, float]]",
        await client.zrange(space.workers_seen, 0, -1, withscores=True),
    )
    if not seen:
        return []
    ids = sorted(worker_id for worker_id, _ in seen)
    raw = cast("list[str | None]", await client.hmget(space.workers, ids))
    last_seen = dict(seen)
    in_flight = await _in_flight(client, space) if count_in_flight else Counter[str]()
    return [
        _record(worker_id, json.loads(text), last_seen[worker_id], in_flight[worker_id])
        for worker_id, text in zip(ids, raw, strict=True)
        if text is not None
    ]


def _record(
    worker_id: str, stored: dict[str, Any], last_seen: float, in_flight: int
) -> WorkerRecord:
    return WorkerRecord(
        worker_id=worker_id,
        services=tuple(stored["services"]),
        labels=stored["labels"],
        sdk_version=stored["sdk_version"],
        poll_seconds=float(stored["poll_seconds"]),
        first_seen=float(stored["first_seen"]),
        last_seen=last_seen,
        in_flight=in_flight,
    )


async def _in_flight(client: Redis, space: KeySpace) -> Counter[str]:
    """Processing tasks by worker id, over every shard's lease-expiry zset."""
    async with client.pipeline(transaction=False) as pipe:
        for shard in space.shards():
            pipe.zrange(shard.lease_expiry, 0, -1)
        per_shard: list[list[str]] = await pipe.execute()
    # A task id is "<scenario_id>:<name>" (names have no ':' of their own).
    located = [tid.partition(":")[::2] for ids in per_shard for tid in ids if ":" in tid]
    async with client.pipeline(transaction=False) as pipe:
        for sid, name in located:
            pipe.hget(space.for_scenario(sid).tasks(sid), name)
        records: list[str | None] = await pipe.execute()
    counts: Counter[str] = Counter()
    for raw in records:
        if raw is None:
            continue
        worker_id = json.loads(raw).get("w")  # codec.py's short name of worker_id
        if isinstance(worker_id, str) and worker_id:
            counts[worker_id] += 1
    return counts
