"""Creating scenarios in Redis: their records encoded for create.lua (rows submit_root and
submit_child of core/transitions.py), one script call per shard for a whole batch, and
the idempotency keys, which on several shards live on shards of their own and are
reserved before the script runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis

from scenarist.core.model import Scenario, Task, TaskStatus
from scenarist.storage.redis.codec import dump_json, encode_task, opt, scenario_fields, ts
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.scripts import Scripts

COMMON_ARGS = 4  # ARGV[1..4], prepended by Scripts.run
HEADER = 7  # create.lua's ARGV per scenario before its task pairs


class Submitter:
    def __init__(
        self, client: Redis, space: KeySpace, scripts: Scripts, retention_seconds: float
    ) -> None:
        self._client = client
        self._space = space
        self._scripts = scripts
        self._retention_seconds = retention_seconds

    async def create(self, scenario: Scenario, tasks: Sequence[Task]) -> tuple[str, bool]:
        """Store the scenario and its tasks in one script: (its id, True); or, when a
        live scenario already holds its idempotency key or its id, (that id, False) and
        nothing is stored."""
        return (await self.create_many([(scenario, tasks)]))[0]

    async def create_many(
        self, batch: Sequence[tuple[Scenario, Sequence[Task]]]
    ) -> list[tuple[str, bool]]:
        """`create` for each item, in order: one script call per shard the batch touches
        (each call atomic for its shard), the calls sent together."""
        outcomes: list[tuple[str, bool] | None] = [None] * len(batch)
        repeats: dict[int, int] = {}  # item -> the earlier item holding its key
        if self._space.shard_count > 1:
            repeats = await self._reserve_keys(batch, outcomes)
        by_shard: dict[int, list[int]] = {}
        for i, (scenario, _) in enumerate(batch):
            if outcomes[i] is None and i not in repeats:
                by_shard.setdefault(self._space.shard_of(scenario.id), []).append(i)
        runs = [
            self._run_shard(shard, [batch[i] for i in items]) for shard, items in by_shard.items()
        ]
        # One shard (every single submit on one Redis) is awaited directly: gather would
        # wrap it in a task of its own, an extra event-loop turn per submit.
        answers = [await runs[0]] if len(runs) == 1 else await asyncio.gather(*runs)
        for items, answer in zip(by_shard.values(), answers, strict=True):
            for i, (state, sid) in zip(items, answer, strict=True):
                outcomes[i] = (str(sid), state == "created")
        for i, first in repeats.items():
            outcomes[i] = (cast(tuple[str, bool], outcomes[first])[0], False)
        return [cast(tuple[str, bool], outcome) for outcome in outcomes]

    async def _reserve_keys(
        self,
        batch: Sequence[tuple[Scenario, Sequence[Task]]],
        outcomes: list[tuple[str, bool] | None],
    ) -> dict[int, int]:
        """Reserve the batch's idempotency keys (several shards), all at once; an item
        whose key a live scenario holds gets that scenario as its outcome. A key repeated
        inside the batch is reserved once, by its first item; the later ones are returned
        (item -> first item) and answer as replays of it."""
        first_of: dict[str, int] = {}
        repeats: dict[int, int] = {}
        for i, (scenario, _) in enumerate(batch):
            key = scenario.idempotency_key
            if key is not None:
                if key in first_of:
                    repeats[i] = first_of[key]
                else:
                    first_of[key] = i
        holders = await asyncio.gather(
            *(self._reserve_idempotency(key, batch[i][0].id) for key, i in first_of.items())
        )
        for i, holder in zip(first_of.values(), holders, strict=True):
            if holder is not None:
                outcomes[i] = (holder, False)
        return repeats

    async def _run_shard(
        self, shard_index: int, batch: list[tuple[Scenario, Sequence[Task]]]
    ) -> list[list[str]]:
        """One create.lua call for the items of one shard. On a single shard the
        idempotency keys live there too and the script checks them; on several they
        were reserved before (_reserve_keys)."""
        local_keys = self._space.shard_count == 1
        shard = self._space.shard(shard_index)
        keys: list[str] = [shard.prefix]
        args: list[str | int] = [len(batch)]
        for scenario, tasks in batch:
            sid = scenario.id
            ik = scenario.idempotency_key if local_keys else None
            keys += [*shard.scenario_keys(sid)[1:], shard.idempotency(ik or "")]
            statuses = {t.name: t.status for t in tasks}
            pairs: list[str | int] = []
            roots: list[tuple[str, int]] = []
            # ARGV index (1-based, after the common ones) of this scenario's first pair.
            first = COMMON_ARGS + len(args) + HEADER + 1
            for i, task in enumerate(tasks):
                pairs += [task.name, encode_task(task, i, statuses)]
                if task.status is TaskStatus.QUEUED:
                    roots.append((task.name, first + 2 * i + 1))  # the record's index
            args += [
                sid,
                opt(ik),
                dump_json(scenario_fields(scenario, tasks)),
                ts(scenario.created_at),
                dump_json(sorted({t.service for t in tasks})),
                dump_json(roots),
                len(tasks),
                *pairs,
            ]
        return cast(list[list[str]], await self._scripts.run("create", keys, args))

    async def _reserve_idempotency(self, key: str, scenario_id: str) -> str | None:
        """With several shards the key lives on its own shard, so it cannot be checked in
        the create script: reserve it first (SET NX). Returns the id of a live scenario
        holding the key; a reservation whose scenario is gone is taken over. The
        reservation expires after twice the retention (it outlives its scenario)."""
        name = self._space.for_idempotency_key(key).idempotency(key)
        ttl = max(int(2 * self._retention_seconds), 1)
        if await self._client.set(name, scenario_id, nx=True, ex=ttl):
            return None
        existing = cast(str | None, await self._client.get(name))
        if existing is not None and existing != scenario_id:
            holder = self._space.for_scenario(existing).scenario(existing)
            if await self._client.exists(holder):
                return existing
        await self._client.set(name, scenario_id, ex=ttl)
        return None
