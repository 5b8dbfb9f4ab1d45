"""Creating a scenario in Redis: its records encoded for create.lua (rows submit_root and
submit_child of core/transitions.py), and the idempotency key, which on several shards
lives on a shard of its own and is reserved before the script runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis

from scenarist.core.model import Scenario, Task, TaskStatus
from scenarist.storage.redis.codec import dump_json, encode_task, opt, scenario_fields, ts
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.scripts import Scripts


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
        sid = scenario.id
        shard = self._space.for_scenario(sid)
        statuses = {t.name: t.status for t in tasks}
        pairs: list[str | int] = []
        roots: list[tuple[str, int]] = []
        for i, task in enumerate(tasks):
            pairs += [task.name, encode_task(task, i, statuses)]
            if task.status is TaskStatus.QUEUED:
                roots.append((task.name, 12 + 2 * i))  # ARGV index of the record
        ik_key: str | None = None
        if scenario.idempotency_key is not None:
            if self._space.shard_count == 1:
                ik_key = shard.idempotency(scenario.idempotency_key)
            else:
                existing = await self._reserve_idempotency(scenario.idempotency_key, sid)
                if existing is not None:
                    return existing, False
        outcome = await self._scripts.run(
            "create",
            [*shard.scenario_keys(sid), ik_key or shard.idempotency("")],
            [
                sid,
                opt(scenario.idempotency_key if ik_key else None),
                dump_json(scenario_fields(scenario, tasks)),
                ts(scenario.created_at),
                dump_json(sorted({t.service for t in tasks})),
                dump_json(roots),
                *pairs,
            ],
        )
        if outcome[0] == "created":
            return sid, True
        return str(outcome[1]), False

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
