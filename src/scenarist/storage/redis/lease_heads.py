"""What a Redis Cluster lease reads of one shard before it plans (shard_lease.py,
fair_lease.py): the heads of the shard's ready queues as its lease would take them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scenarist.storage.redis.codec import ts
from scenarist.storage.redis.keys import ShardKeys
from scenarist.storage.redis.scripts import Scripts

# lease.lua ARGV: lease seconds, worker id, now, nonce, the worker's labels (JSON)
LeaseArgs = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Head:
    """A ready task heads.lua would lease: its service (an index of the lease's), tenant,
    queue priority, id and score (when it became ready)."""

    service: int
    tenant: str
    priority: int
    member: str
    score: float


async def shard_heads(
    scripts: Scripts,
    shard: ShardKeys,
    services: Sequence[str],
    *,
    wanted: int,
    labels: str,
    now: float,
) -> list[Head]:
    """At most `wanted` heads per (service, tenant) of `shard` (heads.lua), each stream's
    in ready order, without the tasks the lease would hold back."""
    flat = await scripts.run(
        "heads", [shard.prefix, shard.parallel_scenarios], [wanted, labels, ts(now), *services]
    )
    return [
        Head(
            int(flat[j]) - 1,
            str(flat[j + 1]),
            int(flat[j + 2]),
            str(flat[j + 3]),
            float(flat[j + 4]),
        )
        for j in range(0, len(flat), 5)
    ]
