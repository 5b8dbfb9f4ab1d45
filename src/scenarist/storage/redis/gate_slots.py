"""Service caps and token buckets on Redis Cluster (decision 68).

A shard's script sees only its own shard, and a service's tasks live on every shard, so
the cap and the bucket of a gated service live in a slot of their own
(`KeySpace.gate(service)`): the leases it confirmed (`f`, "<task id>|<token>"), the
reservations of leases under way (`p`, each expiring with the lease it was made for) and
the bucket (`rb`). A gated lease reserves room there first (`gate_reserve.lua`: the cap
less the confirmed and reserved leases, the whole tokens less the reserved ones), leases
on the shards within what it got, then confirms (`gate_confirm.lua`): its reservations
become its leased tasks and their tokens are taken. Reservations and confirmed leases
count against the cap together, so concurrent leasers never exceed it.

A confirmed lease leaves `f` when a reservation falls short and its task is found no
longer processing under that token (read from its shard): a lease that ended can never
become current again, so removing it is safe whichever process does it, and an attempt's
end needs no second step. A process that dies between its reservation and its
confirmation never answered its caller, so nobody holds the leases it made: they run
out, and so do its reservations (expiring with the lease length asked for, or a day when
it asked for the tasks' own timeouts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from redis.asyncio import Redis

from scenarist.core.gates import Gates, ServiceGate
from scenarist.core.model import Task
from scenarist.storage.redis.codec import load_json, ts
from scenarist.storage.redis.failures import locate
from scenarist.storage.redis.keys import KeySpace, ShardKeys
from scenarist.storage.redis.scripts import Scripts

RESERVATION_FALLBACK_SECONDS = 86_400.0  # a lease that asked for the tasks' own timeouts


@dataclass(frozen=True, slots=True)
class Reservation:
    service: str
    granted: int
    names: tuple[str, ...]  # the reservations' members, dropped at confirmation


def gated(gates: Gates, services: Sequence[str]) -> list[str]:
    return [s for s in services if gates.get(s, ServiceGate()) != ServiceGate()]


class GateSlots:
    """Gates kept in slots of their own: the services' (`KeySpace.gate`, a leased task
    counts for its service), or the capped tenants' (`KeySpace.tenant_gate`, for its
    tenant: fair_lease.py), named by the gates' keys."""

    def __init__(
        self,
        client: Redis,
        space: KeySpace,
        scripts: Scripts,
        *,
        slot: Callable[[str], ShardKeys] | None = None,
        owner: Callable[[Task], str] = attrgetter("service"),
    ) -> None:
        self._client = client
        self._space = space
        self._scripts = scripts
        self._slot = slot or space.gate
        self._owner = owner

    async def reserve(
        self,
        gates: Gates,
        services: Sequence[str],
        wanted: int,
        *,
        now: float,
        nonce: str,
        lease_seconds: float | None,
    ) -> dict[str, Reservation]:
        expiry = ts(now + (lease_seconds or RESERVATION_FALLBACK_SECONDS))
        reserved = {}
        for service in gated(gates, services):
            granted = await self._reserve(
                gates[service], service, wanted, now=now, nonce=nonce, expiry=expiry
            )
            names = [f"r|{nonce}|{i}" for i in range(1, granted + 1)]
            if granted < wanted:
                # Short: drop the confirmed leases that ended, and ask for the rest again.
                ended = await self._ended(service)
                if ended:
                    again = f"{nonce}+"
                    more = await self._reserve(
                        gates[service],
                        service,
                        wanted - granted,
                        now=now,
                        nonce=again,
                        expiry=expiry,
                        ended=ended,
                    )
                    names += [f"r|{again}|{i}" for i in range(1, more + 1)]
                    granted += more
            reserved[service] = Reservation(service, granted, tuple(names))
        return reserved

    async def confirm(
        self, gates: Gates, reserved: dict[str, Reservation], leased: Sequence[Task], *, now: float
    ) -> None:
        for service, reservation in reserved.items():
            rate = gates[service].rate_limit
            mine = [f"{t.id}|{t.lease_token}" for t in leased if self._owner(t) == service]
            await self._scripts.run(
                "gate_confirm",
                [self._slot(service).prefix],
                [
                    service,
                    ts(now),
                    "" if rate is None else ts(rate.per_second),
                    0 if rate is None else rate.burst,
                    len(reservation.names),
                    *reservation.names,
                    *mine,
                ],
            )

    async def _reserve(
        self,
        gate: ServiceGate,
        service: str,
        wanted: int,
        *,
        now: float,
        nonce: str,
        expiry: str,
        ended: Sequence[str] = (),
    ) -> int:
        rate = gate.rate_limit
        granted = await self._scripts.run(
            "gate_reserve",
            [self._slot(service).prefix],
            [
                service,
                ts(now),
                wanted,
                "" if gate.max_in_flight is None else gate.max_in_flight,
                "" if rate is None else ts(rate.per_second),
                0 if rate is None else rate.burst,
                nonce,
                expiry,
                *ended,
            ],
        )
        return int(granted)

    async def _ended(self, service: str) -> list[str]:
        """The confirmed leases of `service` whose task is no longer processing under
        that token (read from the shards, one pipelined round)."""
        found = await self._client.zrange(self._slot(service).prefix + "f", 0, -1)
        members = [str(member) for member in found]
        if not members:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                task_id = member.rpartition("|")[0]
                sid, name = locate(task_id)
                pipe.hget(self._space.for_scenario(sid).tasks(sid), name)
            records: list[Any] = await pipe.execute()
        ended = []
        for member, raw in zip(members, records, strict=True):
            token = member.rpartition("|")[2]
            record = None if raw is None else load_json(raw)
            if record is None or record.get("s") != "processing" or record.get("k") != token:
                ended.append(member)
        return ended

    async def buckets(self, services: Sequence[str]) -> dict[str, tuple[float, float]]:
        """The stored buckets of `services` (for queue_stats)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for service in services:
                pipe.hmget(self._slot(service).prefix + "rb", f"{service}|t", f"{service}|a")
            replies: list[Any] = await pipe.execute()
        return {
            service: (float(tokens), float(at))
            for service, (tokens, at) in zip(services, replies, strict=True)
            if tokens is not None
        }
