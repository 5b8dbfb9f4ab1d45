"""The step cache on Redis (core/step_cache.py; the lookups and entry writes are Lua, see
make_ready and write_cache_entry in lua/_lib.lua): the counts, the clear, and the copies
of new entries to the other shards of a cluster.

A shard's scripts can only read their own slot, so an entry lives on the shard of the
scenario whose success it records (written in that completion's step). With several
shards, each new entry is then copied to every other shard right after the step, with the
same expiry, so identical submissions that land on other shards hit too. The copy is not
part of the atomic step: until it lands (or if the process stops before) other shards
miss, which costs a run, never a wrong result (decision 65)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from redis.asyncio import Redis

from scenarist.core.model import Completion
from scenarist.core.step_cache import CacheCount, result_digest
from scenarist.storage.redis.codec import dump_json, opt, ts
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.scripts import Scripts

# Mirrors CACHE_GRACE_MS in _lib.lua: Redis keeps an entry this much longer than its
# lifetime (the entry's own expiry decides hits).
CACHE_GRACE_MS = 60_000


async def copy_entries(
    client: Redis, space: KeySpace, outcomes: Sequence[object], *, now: float
) -> None:
    """Copy the entries the completions in `outcomes` wrote to every other shard."""
    if space.shard_count == 1:
        return
    writes: list[Awaitable[object]] = []
    for outcome in outcomes:
        if not isinstance(outcome, Completion) or outcome.duplicate:
            continue
        task = outcome.task
        if task.cache_key is None or task.cached or task.cache_ttl is None:
            continue
        entry = {
            "v": task.service,
            "f": task.id,
            "rd": result_digest(task.result_ref, task.result),
            "x": ts(now + task.cache_ttl),
        }
        if task.result_ref is not None:
            entry["r"] = task.result_ref
        if task.result is not None:
            entry["R"] = dump_json(task.result)
        home = space.shard_of(task.scenario_id)
        ttl_ms = task.cache_ttl * 1000 + CACHE_GRACE_MS
        for index in range(space.shard_count):
            if index != home:
                shard = space.shard(index)
                writes.append(
                    client.set(f"{shard.prefix}c:{task.cache_key}", dump_json(entry), px=ttl_ms)
                )
                member = task.cache_key + task.service
                writes.append(client.zadd(f"{shard.prefix}ci", {member: now + task.cache_ttl}))
    if writes:
        await asyncio.gather(*writes)


async def cache_counts(client: Redis, space: KeySpace) -> list[CacheCount]:
    """The shards' counts added up, per service."""
    counts: dict[str, list[int]] = {}
    for shard in space.shards():
        for field, value in (await client.hgetall(f"{shard.prefix}cc")).items():
            kind, _, service = str(field).partition(":")
            counts.setdefault(service, [0, 0])[kind == "m"] += int(value)
    return [CacheCount(service, *pair) for service, pair in sorted(counts.items())]


async def clear_cache(scripts: Scripts, space: KeySpace, *, service: str | None) -> None:
    for shard in space.shards():
        await scripts.run("cache_clear", [shard.prefix, f"{shard.prefix}ci"], [opt(service)])
