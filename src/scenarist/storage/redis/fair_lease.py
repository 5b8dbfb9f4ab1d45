"""Tenants' fair share on Redis Cluster (decisions 79 and 80).

On one node the lease's script walks every tenant's ready queues and keeps the passes
beside them. On a cluster a service's tasks, of every tenant, live on every shard, and a
shard's own walk cannot know what the others hold, nor keep the passes of the whole
service. So a lease with tenants:

1. reserves room under the gated services' caps and buckets (gate_slots.py) and under the
   capped tenants' `max_in_flight` in each tenant's gate slot (the same mechanism: a
   confirmed lease per processing task, reservations that expire with the lease);
2. reads each shard's heads, at most `wanted` per (service, tenant) without the tasks
   the lease would hold back (heads.lua), and the passes from their own slot
   (`KeySpace.fair`);
3. runs core/tenants.py `fair_walk` over the shards' streams merged in ready order, within
   the reserved room: the very walk the model and SQLite run, so the plan is theirs;
4. takes the planned tasks on each shard in one script per shard (lease_planned.lua),
   moves the passes for those taken in the plan's order (fair_charge.lua) and confirms
   the reservations with the leased tasks.

A concurrent lease may take a planned task in between: that shard's script leaves it out
and the lease plans again for the rest, a bounded number of times. Two concurrent leases
may also read the same passes and both serve the tenant whose turn it was; each moves the
passes atomically, so the next lease sees both charges. Caps never rely on the passes:
they are the gate slots' reservations.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from redis.asyncio import Redis

from scenarist.core.gates import Gates, ServiceGate
from scenarist.core.model import Task
from scenarist.core.ready_order import ready_rank
from scenarist.core.tenants import FairShare, Tenants, fair_walk
from scenarist.storage.redis.codec import decode_task, dump_json
from scenarist.storage.redis.failures import locate
from scenarist.storage.redis.gate_slots import GateSlots
from scenarist.storage.redis.keys import KeySpace, ShardKeys
from scenarist.storage.redis.lease_heads import LeaseArgs, shard_heads
from scenarist.storage.redis.scripts import Scripts

PLAN_ROUNDS = 3  # plans of one lease when concurrent leases took planned tasks


@dataclass(frozen=True, slots=True)
class Candidate:
    """A planned task: a shard's head, as `fair_walk` reads a ready task."""

    shard: int
    service: str
    tenant: str
    priority: int
    id: str
    score: float

    def __getitem__(self, key: str) -> Any:
        if key in ("available_at", "queued_at"):
            return self.score
        return getattr(self, key)


def weights_json(tenants: Tenants) -> str:
    return dump_json({name: {"w": policy.weight} for name, policy in tenants.items()})


class FairLeaser:
    def __init__(
        self,
        client: Redis,
        space: KeySpace,
        scripts: Scripts,
        slots: GateSlots,
        promote: Callable[[Sequence[ShardKeys], float], Awaitable[None]],
    ) -> None:
        self._client = client
        self._space = space
        self._scripts = scripts
        self._slots = slots
        self._tenant_slots = GateSlots(
            client, space, scripts, slot=space.tenant_gate, owner=attrgetter("tenant")
        )
        self._promote = promote

    async def lease(
        self,
        services: Sequence[str],
        max_tasks: int,
        args: LeaseArgs,
        *,
        now: float,
        gates: Gates,
        tenants: Tenants,
        lease_seconds: float | None,
    ) -> list[Task]:
        nonce = args[3]
        reserved = await self._slots.reserve(
            gates, services, max_tasks, now=now, nonce=nonce, lease_seconds=lease_seconds
        )
        caps = {
            name: ServiceGate(max_in_flight=policy.max_in_flight)
            for name, policy in tenants.items()
            if policy.max_in_flight is not None
        }
        held = await self._tenant_slots.reserve(
            caps, list(caps), max_tasks, now=now, nonce=nonce, lease_seconds=lease_seconds
        )
        leased: list[Task] = []
        for _ in range(PLAN_ROUNDS):
            wanted = max_tasks - len(leased)
            if wanted <= 0:
                break
            room = Room(
                services={s: r.granted - _count(leased, s, "service") for s, r in reserved.items()},
                tenants={n: r.granted - _count(leased, n, "tenant") for n, r in held.items()},
            )
            plan = await self._plan(
                services, wanted, labels=args[4], now=now, room=room, tenants=tenants
            )
            if not plan:
                break
            got = await self._take(plan, args)
            await self._charge(got, tenants)
            leased += got
            if len(got) == len(plan):
                break
        await self._slots.confirm(gates, reserved, leased, now=now)
        await self._tenant_slots.confirm(caps, held, leased, now=now)
        return leased

    async def _plan(
        self,
        services: Sequence[str],
        wanted: int,
        *,
        labels: str,
        now: float,
        room: Room,
        tenants: Tenants,
    ) -> list[Candidate]:
        shards = self._space.shards()
        async with self._client.pipeline(transaction=False) as pipe:
            for shard in shards:
                for service in services:
                    pipe.zcount(shard.delayed(service), "-inf", now)
            counts: list[Any] = await pipe.execute()
        per = len(services)
        due = [
            s for i, s in enumerate(shards) if any(int(c) for c in counts[i * per : (i + 1) * per])
        ]
        if due:
            await self._promote(due, now)
        heads, passes = await asyncio.gather(
            asyncio.gather(
                *(
                    shard_heads(self._scripts, s, services, wanted=wanted, labels=labels, now=now)
                    for s in shards
                )
            ),
            self._client.hgetall(self._space.fair.prefix + "fp"),
        )
        streams: dict[tuple[str, str], list[Candidate]] = {}
        for index, shard_heads_ in enumerate(heads):
            for head in shard_heads_:
                service = services[head.service]
                streams.setdefault((service, head.tenant), []).append(
                    Candidate(index, service, head.tenant, head.priority, head.member, head.score)
                )
        for stream in streams.values():
            stream.sort(key=lambda c: ready_rank(c.priority, c.score, c.id))
        stored = {str(field): float(value) for field, value in passes.items()}
        share = FairShare(tenants, lambda service, tenant: stored.get(f"{service}|{tenant}"))
        chosen: list[Candidate] = []

        def visit(candidate: Candidate) -> bool:
            if not room.admits(candidate):
                return False
            chosen.append(candidate)
            return True

        fair_walk(streams, share, visit=visit, more=lambda: len(chosen) < wanted)
        return chosen

    async def _take(self, plan: Sequence[Candidate], args: LeaseArgs) -> list[Task]:
        """The planned tasks each shard still had, in the plan's order."""
        by_shard: dict[int, list[str]] = {}
        for candidate in plan:
            by_shard.setdefault(candidate.shard, []).append(candidate.id)
        batches = await asyncio.gather(
            *(
                self._scripts.run("lease_planned", [self._space.shard(i).prefix], [*args, *ids])
                for i, ids in by_shard.items()
            )
        )
        got: dict[str, Task] = {}
        for flat in batches:
            for j in range(0, len(flat), 3):
                sid, name = locate(flat[j])
                got[flat[j]] = decode_task(sid, name, flat[j + 1], flat[j + 2])
        return [got[c.id] for c in plan if c.id in got]

    async def _charge(self, taken: Sequence[Task], tenants: Tenants) -> None:
        if not taken:
            return
        pairs = [part for task in taken for part in (task.service, task.tenant)]
        await self._scripts.run(
            "fair_charge", [self._space.fair.prefix], [weights_json(tenants), *pairs]
        )


@dataclass(slots=True)
class Room:
    """What a plan may still take: per gated service and per capped tenant, the room
    reserved in their gate slots (absent: no limit)."""

    services: dict[str, int]
    tenants: dict[str, int]

    def admits(self, candidate: Candidate) -> bool:
        if self.services.get(candidate.service, 1) <= 0:
            return False
        if self.tenants.get(candidate.tenant, 1) <= 0:
            return False
        if candidate.service in self.services:
            self.services[candidate.service] -= 1
        if candidate.tenant in self.tenants:
            self.tenants[candidate.tenant] -= 1
        return True


def _count(tasks: Sequence[Task], name: str, field: str) -> int:
    return Counter(getattr(t, field) for t in tasks)[name]
