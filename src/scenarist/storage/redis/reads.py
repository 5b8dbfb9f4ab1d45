"""Read-only queries that span keys or shards: listing, events, expiry scans, stats.

None of them needs atomicity across shards, so they merge per-shard results in Python
and never issue a multi-slot command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from scenarist.core.errors import ParamError, ScenarioNotFoundError
from scenarist.core.model import (
    Event,
    QueueStats,
    Scenario,
    ScenarioStatus,
    Task,
    TenantStats,
)
from scenarist.core.usage import UsageTotal, usage_hour
from scenarist.storage.redis.codec import (
    check_cursor,
    decode_event,
    decode_scenario,
    decode_task,
    load_json,
    member_scenario_id,
)
from scenarist.storage.redis.keys import KeySpace, ShardKeys

_STREAM_ID = re.compile(r"([0-9]+)-([0-9]+)\Z")
MAX_STREAM_ID_PART = 2**64 - 1
LARGEST_STREAM_ID = f"{MAX_STREAM_ID_PART}-{MAX_STREAM_ID_PART}"
_LISTING_BATCH = 100


def _split_task_id(task_id: str) -> tuple[str, str] | None:
    scenario_id, sep, name = task_id.partition(":")
    return (scenario_id, name) if sep and scenario_id and name else None


def check_stream_id(after: str) -> str:
    """A stream entry id Redis can parse: `<ms>-<seq>`, ASCII digits, each part a 64-bit
    unsigned integer (a larger one made XRANGE fail), written without leading zeros
    (Redis refuses a part longer than 20 characters, zeros included)."""
    match = _STREAM_ID.match(after)
    if match is None or max(int(match[1]), int(match[2])) > MAX_STREAM_ID_PART:
        raise ParamError(
            f"malformed event id {after!r}: expected an event id of this store "
            f"(<ms>-<seq>, each part an integer from 0 to {MAX_STREAM_ID_PART})",
            field="after",
        )
    return f"{int(match[1])}-{int(match[2])}"


async def read_events(
    client: Redis, keys: ShardKeys, scenario_id: str, *, after: str | None, limit: int
) -> list[Event]:
    resume = None if after is None else check_stream_id(after)
    async with client.pipeline(transaction=False) as pipe:
        pipe.exists(keys.scenario(scenario_id))
        if resume != LARGEST_STREAM_ID:  # nothing follows it, and XRANGE refuses "(" on it
            start = "-" if resume is None else f"({resume}"
            pipe.xrange(keys.events(scenario_id), start, "+", count=limit)
        exists, *found = await pipe.execute()
    if not exists:
        raise ScenarioNotFoundError(scenario_id)
    entries = found[0] if found else []
    return [decode_event(scenario_id, entry_id, fields) for entry_id, fields in entries]


async def get_tasks(client: Redis, space: KeySpace, task_ids: Sequence[str]) -> dict[str, Task]:
    """One pipelined HMGET per scenario (its tasks are one hash), whatever the shards."""
    by_scenario: dict[str, list[str]] = {}
    for task_id in dict.fromkeys(task_ids):
        parts = _split_task_id(task_id)
        if parts is not None:
            by_scenario.setdefault(parts[0], []).append(parts[1])
    if not by_scenario:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for sid, names in by_scenario.items():
            pipe.hmget(space.for_scenario(sid).tasks(sid), names)
        replies: list[list[str | None]] = await pipe.execute()
    return {
        f"{sid}:{name}": decode_task(sid, name, raw)
        for (sid, names), records in zip(by_scenario.items(), replies, strict=True)
        for name, raw in zip(names, records, strict=True)
        if raw is not None
    }


async def get_scenarios(
    client: Redis, space: KeySpace, scenario_ids: Sequence[str]
) -> dict[str, Scenario]:
    """The scenarios of `scenario_ids` by id, one pipelined HGETALL each; raise
    ScenarioNotFoundError for the first one absent (expired since it was named)."""
    wanted = list(dict.fromkeys(scenario_ids))
    if not wanted:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for sid in wanted:
            pipe.hgetall(space.for_scenario(sid).scenario(sid))
        replies: list[dict[str, str]] = await pipe.execute()
    found = {}
    for sid, fields in zip(wanted, replies, strict=True):
        if not fields:
            raise ScenarioNotFoundError(sid)
        found[sid] = decode_scenario(sid, fields)
    return found


async def find_expired(client: Redis, space: KeySpace, *, now: float, limit: int) -> list[Task]:
    """Processing tasks whose lease ran out, oldest expiry first, across every shard."""
    async with client.pipeline(transaction=False) as pipe:
        for shard in space.shards():
            pipe.zrangebyscore(shard.lease_expiry, "-inf", now, start=0, num=limit, withscores=True)
        per_shard: list[list[tuple[str, float]]] = await pipe.execute()
    expired = sorted((score, task_id) for entries in per_shard for task_id, score in entries)[
        :limit
    ]
    located = [(tid, _split_task_id(tid)) for _, tid in expired]
    found = [(tid, parts) for tid, parts in located if parts is not None]
    async with client.pipeline(transaction=False) as pipe:
        for _, (sid, name) in found:
            pipe.hget(space.for_scenario(sid).tasks(sid), name)
        records: list[str | None] = await pipe.execute()
    return [
        decode_task(sid, name, raw)
        for (_, (sid, name)), raw in zip(found, records, strict=True)
        if raw is not None
    ]


def queue_stats(rows: list[list[Any]], *, now: float) -> list[QueueStats]:
    """Merge the per-shard rows of stats.lua into one entry per service."""
    merged: dict[str, list[Any]] = {}
    for flat in rows:
        for j in range(0, len(flat), 9):
            service, ready, delayed, in_flight, oldest, held, by_key, tokens, at = flat[j : j + 9]
            entry = merged.setdefault(service, [0, 0, 0, None, 0, 0, None, None])
            entry[0] += int(ready)
            entry[1] += int(delayed)
            entry[2] += int(in_flight)
            if oldest != "" and (entry[3] is None or float(oldest) < entry[3]):
                entry[3] = float(oldest)
            entry[4] += int(held)
            entry[5] += int(by_key)
            if tokens != "":  # one shard holds a service's bucket (decision 68)
                entry[6], entry[7] = float(tokens), float(at)
    return [
        QueueStats(
            service=service,
            ready=ready,
            delayed=delayed,
            in_flight=max(in_flight, 0),
            oldest_ready_age=None if oldest is None else max(now - oldest, 0.0),
            held=held,
            held_by_key=by_key,
            bucket_tokens=tokens,
            bucket_at=at,
        )
        for service, (ready, delayed, in_flight, oldest, held, by_key, tokens, at) in sorted(
            merged.items()
        )
    ]


def tenant_stats(rows: list[list[Any]]) -> list[TenantStats]:
    """Merge the per-shard rows of tenant_stats.lua into one entry per tenant."""
    merged: dict[str, list[int]] = {}
    for flat in rows:
        for j in range(0, len(flat), 3):
            entry = merged.setdefault(str(flat[j]), [0, 0])
            entry[0] += int(flat[j + 1])
            entry[1] += int(flat[j + 2])
    return [
        TenantStats(tenant, ready, max(in_flight, 0))
        for tenant, (ready, in_flight) in sorted(merged.items())
        if ready > 0 or in_flight > 0
    ]


class ScenarioListing:
    """Newest-first pages over the per-shard index sorted sets.

    Index members are "<created_at fixed width>|<id>" with score 0, so lex order is time
    order and the cursor is simply the last member returned. Each round takes the next
    `batch` members below the cursor from every shard; the global next `batch` are among
    them. Members whose scenario expired (retention) are pruned on the way.
    """

    def __init__(self, client: Redis, space: KeySpace) -> None:
        self._client = client
        self._space = space

    async def page(
        self,
        *,
        status: ScenarioStatus | None,
        template: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Scenario], str | None]:
        bound = check_cursor(cursor) if cursor is not None else None
        found: list[tuple[str, Scenario]] = []
        batch = max(limit + 1, _LISTING_BATCH if template else 0)
        while len(found) <= limit:
            members, exhausted = await self._next_members(status, bound, batch)
            for member, scenario in await self._load(members):
                if (status is None or scenario.status is status) and (
                    template is None or scenario.template == template
                ):
                    found.append((member, scenario))
            if exhausted or not members:
                break
            bound = members[-1]
        if len(found) > limit:
            return [s for _, s in found[:limit]], found[limit - 1][0]
        return [s for _, s in found], None

    async def _next_members(
        self, status: ScenarioStatus | None, bound: str | None, batch: int
    ) -> tuple[list[str], bool]:
        upper = f"({bound}" if bound is not None else "+"
        async with self._client.pipeline(transaction=False) as pipe:
            for shard in self._space.shards():
                pipe.zrevrangebylex(shard.index(status), upper, "-", start=0, num=batch)
            per_shard: list[list[str]] = await pipe.execute()
        merged = sorted((m for members in per_shard for m in members), reverse=True)
        exhausted = all(len(members) < batch for members in per_shard)
        if len(merged) > batch:
            return merged[:batch], False
        return merged, exhausted

    async def _load(self, members: list[str]) -> list[tuple[str, Scenario]]:
        ids = [member_scenario_id(m) for m in members]
        async with self._client.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.hgetall(self._space.for_scenario(sid).scenario(sid))
            hashes: list[dict[str, str]] = await pipe.execute()
        loaded, gone = [], []
        for member, sid, fields in zip(members, ids, hashes, strict=True):
            if fields:
                loaded.append((member, decode_scenario(sid, fields)))
            else:
                gone.append((member, sid))
        if gone:
            await self._prune(gone)
        return loaded

    async def _prune(self, gone: list[tuple[str, str]]) -> None:
        """Drop index entries of scenarios that retention already expired."""
        async with self._client.pipeline(transaction=False) as pipe:
            for member, sid in gone:
                shard = self._space.for_scenario(sid)
                for status in (None, *ScenarioStatus):
                    pipe.zrem(shard.index(status), member)
            await pipe.execute()


async def usage_totals(client: Redis, space: KeySpace, *, since: float | None) -> list[UsageTotal]:
    """The shards' totals (add_usage's fields decoded) added up, hours from `since` on,
    sorted. Scenarios of one template and service live on several shards, so the same key
    is summed across them, in shard order."""
    first = None if since is None else usage_hour(since)
    sums: dict[tuple[float, str, str, str], float] = {}
    for shard in space.shards():
        for field, value in (await client.hgetall(shard.usage)).items():
            hour, template, service, name = load_json(field)
            key = (float(hour), template, service, name)
            if first is None or key[0] >= first:
                sums[key] = sums.get(key, 0.0) + float(value)
    return [UsageTotal(*key, value) for key, value in sorted(sums.items())]
