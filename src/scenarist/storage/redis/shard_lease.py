"""Lease in the global ready order when a service's queue is spread over several shards.

With one shard, lease.lua alone yields the contract's order (priority, then age, then
task id). With several (Redis Cluster), every shard is ordered but a shard-by-shard walk
is not, and would starve nobody only by luck. So a lease first reads the heads of every
shard's ready queues in one pipelined read (no script, no multi-slot command), ranks the
candidates globally and runs lease.lua only on the shards holding the best `wanted`,
each asked for its share. A lease of several services (lease_many.lua) ranks the heads of
all their queues together, in the same order. Shards with due delayed tasks (backoff over)
are promoted first so those tasks compete too. A concurrent leaser may take a candidate in
between; that shard's script then takes its next task or returns short, and the caller
tops up.

A task held back by its max_parallel group must not win a share: on a shard with live
scenarios that have max_parallel tasks, the heads come from heads.lua (read only), which
walks the shard's queues as the lease does and counts each group's room on, leaving out
held tasks and the tasks an earlier candidate of their group would hold back. A shard's
script, asked for its share, then takes exactly its planned tasks in one call, so a lease
changes each shard in one atomic step, its events in the order of the one rule's walk.

Lease-time gates (core/gates.py): with one shard, the script checks them against the
shard's counters. With several, a gated service's room is reserved in its gate slot first
(gate_slots.py), the candidates are chosen in global order within it, each shard's
script is held to its share (`quota`), and the lease is confirmed after (decision 68).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from scenarist.core.gates import NO_GATES, Gates, ServiceGate
from scenarist.core.model import MAX_PRIORITY, QUEUE_PRIORITIES, Task
from scenarist.core.ready_order import ReadyRank, ready_rank
from scenarist.core.tenants import NO_TENANTS, Tenants
from scenarist.storage.redis.codec import decode_task, dump_json, ts
from scenarist.storage.redis.failures import locate
from scenarist.storage.redis.fair_lease import FairLeaser
from scenarist.storage.redis.gate_slots import GateSlots, gated
from scenarist.storage.redis.keys import KeySpace, ShardKeys
from scenarist.storage.redis.lease_heads import LeaseArgs, shard_heads
from scenarist.storage.redis.scripts import Scripts

PROMOTE_BATCH = 1000

Quotas = dict[str, int]  # gated service -> tasks a shard's script may still take


NO_GATES_JSON = "{}"
NO_TENANTS_JSON = "{}"


def tenants_json(tenants: Tenants) -> str:
    """The catalog's tenants as _lease.lua's `new_room` reads them: weight `w`, and the
    cap only when there is one (a JSON null would be a true value in Lua)."""
    encoded: dict[str, dict[str, float]] = {}
    for name, policy in tenants.items():
        entry: dict[str, float] = {"w": policy.weight}
        if policy.max_in_flight is not None:
            entry["cap"] = policy.max_in_flight
        encoded[name] = entry
    return dump_json(encoded)


def quota_json(quotas: Quotas) -> str:
    """Gates for one shard's script on Redis Cluster: the room reserved in the gate slots
    (decision 68), not the caps, which the shard could not check alone."""
    return dump_json({service: {"quota": n} for service, n in quotas.items()})


def gates_json(gates: Gates, services: Sequence[str]) -> str:
    """The gates of `services` as _lease.lua's `new_room` reads them: absent limits are
    left out (a JSON null would be a true value in Lua)."""
    encoded: dict[str, dict[str, float]] = {}
    for service in services:
        gate = gates.get(service)
        if gate is None or gate == ServiceGate():
            continue
        entry: dict[str, float] = {}
        if gate.max_in_flight is not None:
            entry["cap"] = gate.max_in_flight
        if gate.rate_limit is not None:
            entry["rate"] = gate.rate_limit.per_second
            entry["burst"] = gate.rate_limit.burst
        encoded[service] = entry
    return dump_json(encoded)


class Leaser:
    """Runs lease.lua on the right shards, in the right order."""

    def __init__(self, client: Redis, space: KeySpace, scripts: Scripts) -> None:
        self._client = client
        self._space = space
        self._scripts = scripts
        self._rotation = itertools.count()
        self._slots = GateSlots(client, space, scripts)
        self._fair = FairLeaser(client, space, scripts, self._slots, self.promote)

    async def lease(
        self,
        services: Sequence[str],
        max_tasks: int,
        args: LeaseArgs,
        *,
        now: float,
        gates: Gates = NO_GATES,
        lease_seconds: float | None = None,
        tenants: Tenants = NO_TENANTS,
    ) -> list[Task]:
        space = self._space
        if space.shard_count == 1:  # one script sees every counter
            gated_args = (*args, gates_json(gates, services))
            return await self._lease_shard(
                space.shard(0), services, max_tasks, gated_args, tenants_json(tenants)
            )
        if tenants:  # one walk across every shard (fair_lease.py)
            return await self._fair.lease(
                services,
                max_tasks,
                args,
                now=now,
                gates=gates,
                tenants=tenants,
                lease_seconds=lease_seconds,
            )
        if not gated(gates, services):
            return await self._lease_planned(services, max_tasks, args, None, now)
        # Room under the caps and buckets first, in their own slots (gate_slots.py).
        nonce = args[3]
        reserved = await self._slots.reserve(
            gates, services, max_tasks, now=now, nonce=nonce, lease_seconds=lease_seconds
        )
        quotas = {service: r.granted for service, r in reserved.items()}
        leased = await self._lease_planned(services, max_tasks, args, quotas, now)
        await self._slots.confirm(gates, reserved, leased, now=now)
        return leased

    async def buckets(self, services: Sequence[str]) -> dict[str, tuple[float, float]]:
        return await self._slots.buckets(services)

    async def _lease_planned(
        self,
        services: Sequence[str],
        max_tasks: int,
        args: LeaseArgs,
        quotas: Quotas | None,
        now: float,
    ) -> list[Task]:
        """The planned shares in one script per shard; a lease short of its plan (a
        concurrent leaser took a candidate) ends in the rotating top-up."""
        labels = args[4]
        plan = await self._plan(services, max_tasks, now, quotas, labels)
        if plan.due:
            await self.promote([self._space.shard(i) for i in plan.due], now)
            plan = await self._plan(services, max_tasks, now, quotas, labels)
        batches = await asyncio.gather(
            *(
                self._lease_shard(
                    self._space.shard(i), services, n, self._shard_args(args, plan, i)
                )
                for i, n in plan.shares.items()
            )
        )
        got = [task for batch in batches for task in batch]
        leased = [got[i] for i in plan.sort([t.id for t in got])]
        if len(leased) < sum(plan.shares.values()):
            leased += await self._lease_rotating(
                services, max_tasks - len(leased), args, _less(quotas, leased)
            )
        return leased

    async def _plan(
        self,
        services: Sequence[str],
        wanted: int,
        now: float,
        quotas: Quotas | None,
        labels: str,
    ) -> LeasePlan:
        return await plan_lease(
            self._client,
            self._space,
            services,
            wanted=wanted,
            now=now,
            scripts=self._scripts,
            quotas=quotas,
            labels=labels,
        )

    @staticmethod
    def _shard_args(args: LeaseArgs, plan: LeasePlan, index: int) -> tuple[str, ...]:
        gates = NO_GATES_JSON if plan.quotas is None else quota_json(plan.quotas.get(index, {}))
        return (*args, gates)

    async def promote(self, shards: Sequence[ShardKeys], now: float) -> None:
        """Move due delayed tasks of `shards` to their ready queues."""
        for shard in shards:
            await self._scripts.run(
                "promote", [shard.prefix, shard.services], [ts(now), PROMOTE_BATCH]
            )

    async def _lease_rotating(
        self, services: Sequence[str], max_tasks: int, args: LeaseArgs, quotas: Quotas | None
    ) -> list[Task]:
        """Shard by shard, starting one further each call, so no shard starves; with
        `quotas`, each shard gets what the earlier ones left of them."""
        shards = self._space.shards()
        start = next(self._rotation) % len(shards)
        leased: list[Task] = []
        for shard in shards[start:] + shards[:start]:
            wanted = max_tasks - len(leased)
            if wanted <= 0:
                break
            gates_arg = NO_GATES_JSON if quotas is None else quota_json(quotas)
            got = await self._lease_shard(shard, services, wanted, (*args, gates_arg))
            quotas = _less(quotas, got)
            leased += got
        return leased

    async def _lease_shard(
        self,
        shard: ShardKeys,
        services: Sequence[str],
        wanted: int,
        args: tuple[str, ...],
        tenants: str = NO_TENANTS_JSON,
    ) -> list[Task]:
        """The tasks leased on `shard` (lease_ready in _lease.lua)."""
        if len(services) == 1:
            keys = [shard.prefix, *shard.ready_queues(services[0]), shard.delayed(services[0])]
            flat = await self._scripts.run("lease", keys, [services[0], wanted, *args, tenants])
        else:
            keys = [shard.prefix]
            for service in services:
                keys += [*shard.ready_queues(service), shard.delayed(service)]
            flat = await self._scripts.run("lease_many", keys, [wanted, *args, tenants, *services])
        leased = []
        for j in range(0, len(flat), 3):
            sid, name = locate(flat[j])
            leased.append(decode_task(sid, name, flat[j + 1], flat[j + 2]))
        return leased


def _less(quotas: Quotas | None, taken: Sequence[Task]) -> Quotas | None:
    """What `quotas` leave after the tasks `taken`."""
    if quotas is None:
        return None
    counts = Counter(t.service for t in taken)
    return {service: n - counts[service] for service, n in quotas.items()}


@dataclass(frozen=True, slots=True)
class LeasePlan:
    shares: dict[int, int]  # shard index -> how many tasks to lease there
    order: dict[str, int]  # task id -> global rank of the candidates chosen
    due: list[int]  # shards with delayed tasks whose backoff is over
    # With gated services: shard index -> service -> how many of the chosen are there
    # (the most that shard's script may take of that service).
    quotas: dict[int, Quotas] | None = None

    def sort(self, task_ids: list[str]) -> list[int]:
        """Positions of `task_ids` in global ready order (unplanned ids last)."""
        last = len(self.order)
        return sorted(range(len(task_ids)), key=lambda i: self.order.get(task_ids[i], last))


async def plan_lease(
    client: Redis,
    space: KeySpace,
    services: Sequence[str],
    *,
    wanted: int,
    now: float,
    scripts: Scripts,
    quotas: Quotas | None = None,
    labels: str = "{}",
) -> LeasePlan:
    shards = space.shards()
    async with client.pipeline(transaction=False) as pipe:
        for shard in shards:
            for service in services:
                _queue_heads(pipe, shard, service, wanted)
                pipe.zcount(shard.delayed(service), "-inf", now)
            pipe.scard(shard.parallel_scenarios)
            pipe.exists(*(shard.tenants(service) for service in services))
        raw: list[Any] = await pipe.execute()
    per_service = QUEUE_PRIORITIES + 1  # the ready queues and the delayed count
    per_shard = per_service * len(services)
    replies: list[Any] = []
    for index, shard in enumerate(shards):
        block = raw[index * (per_shard + 2) : (index + 1) * (per_shard + 2)]
        # heads without the held tasks (or not the worker's), and of every tenant's queues
        if int(block.pop()) > 0 or int(block[-1]) > 0:
            for s in range(len(services)):
                for offset in range(QUEUE_PRIORITIES):
                    block[s * per_service + offset] = []
            for head in await shard_heads(
                scripts, shard, services, wanted=wanted, labels=labels, now=now
            ):
                block[head.service * per_service + MAX_PRIORITY - head.priority].append(
                    (head.member, head.score)
                )
        replies += block[:-1]
    ranked: list[tuple[ReadyRank, int, str]] = []
    due: set[int] = set()
    for index in range(len(shards)):
        for number, first in enumerate(
            range(index * per_shard, (index + 1) * per_shard, per_service)
        ):
            block = replies[first : first + per_service]
            if int(block[-1]) > 0:
                due.add(index)
            for offset, heads in enumerate(block[:-1]):
                priority = MAX_PRIORITY - offset
                ranked += [
                    (ready_rank(priority, float(score), member), index, services[number])
                    for member, score in heads
                ]
    left = dict(quotas or {})
    chosen: list[tuple[ReadyRank, int, str]] = []
    for candidate in sorted(ranked):
        if len(chosen) >= wanted:
            break
        service = candidate[2]
        if service in left:
            if left[service] <= 0:
                continue
            left[service] -= 1
        chosen.append(candidate)
    shard_quotas = None
    if quotas is not None:
        shard_quotas = {i: dict.fromkeys(quotas, 0) for i in range(len(shards))}
        for _, index, service in chosen:
            if service in quotas:
                shard_quotas[index][service] += 1
    return LeasePlan(
        shares=dict(Counter(index for _, index, _ in chosen)),
        order={rank[2]: position for position, (rank, _, _) in enumerate(chosen)},
        due=sorted(due),
        quotas=shard_quotas,
    )


def _queue_heads(pipe: Any, shard: ShardKeys, service: str, wanted: int) -> None:
    for queue in shard.ready_queues(service):  # highest priority first
        pipe.zrange(queue, 0, wanted - 1, withscores=True)
