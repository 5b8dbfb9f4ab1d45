"""Every Redis key and channel name of the store, in one place.

Layout (the Lua scripts derive the same names from the shard prefix; `lua/_lib.lua`
documents the derivation and the tests check that both sides agree):

    {<prefix>:<shard>}:s:<scenario_id>      hash    scenario fields and counters
    {<prefix>:<shard>}:t:<scenario_id>      hash    task name -> task record (JSON)
    {<prefix>:<shard>}:e:<scenario_id>      stream  scenario events
    {<prefix>:<shard>}:q:<service>:<prio>   zset    ready tasks of one priority, -5..9
    {<prefix>:<shard>}:d:<service>          zset    delayed tasks (retry backoff)
    {<prefix>:<shard>}:lx                   zset    processing tasks by lease expiry
    {<prefix>:<shard>}:fl                   hash    service -> tasks in flight
    {<prefix>:<shard>}:ob                   zset    callback outbox
    {<prefix>:<shard>}:ix:all|<status>      zset    scenario index (lex order)
    {<prefix>:<shard>}:sv                   set     services that have or had tasks
    {<prefix>:<shard>}:ps                   set     live scenarios with max_parallel tasks
    {<prefix>:<shard>}:ik:<key>             string  idempotency key -> scenario id
    {<prefix>:<shard>}:us                   hash    usage totals: JSON [hour, template,
                                                    service, name] -> exact float text
    {<prefix>:w}:workers                    hash    worker id -> worker record (JSON)
    {<prefix>:w}:seen                       zset    worker id by last seen
    {<prefix>:gate:<service>}:f             zset    Redis Cluster only: a gated service's
                                                    confirmed leases "<task id>|<token>"
    {<prefix>:gate:<service>}:p             zset    ... its reservations (score: expiry)
    {<prefix>:gate:<service>}:rb            hash    ... its token bucket (decision 68)
    scenarist:function-libraries            hash    server-wide: Lua library version ->
                                                    when a process last loaded it

The hash tag is a SHARD tag, not a per-scenario tag: a scenario lives on shard
crc32(scenario_id) % shard_count, and every key it touches (its own keys and the ready
queues and sets of its shard) hashes to that one slot, so every script is single-slot on
Redis Cluster while workers poll a handful of shards instead of one queue per scenario.
The workers registry has a tag of its own (`w`, not a shard number): its two keys share
one slot, and no script touches them together with a shard's keys.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from scenarist.core.model import MAX_PRIORITY, MIN_PRIORITY

# Functions are server-wide, not per key prefix, so their registry is too (scripts.py).
FUNCTION_LIBRARIES = "scenarist:function-libraries"

INDEX_ALL = "all"


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """Names of one shard's keys; `prefix` ends with ':' and carries the hash tag."""

    prefix: str

    def scenario(self, scenario_id: str) -> str:
        return f"{self.prefix}s:{scenario_id}"

    def tasks(self, scenario_id: str) -> str:
        return f"{self.prefix}t:{scenario_id}"

    def events(self, scenario_id: str) -> str:
        return f"{self.prefix}e:{scenario_id}"

    def history(self, scenario_id: str) -> str:
        """Each task's ended runs (rerun.lua), expired with the scenario."""
        return f"{self.prefix}h:{scenario_id}"

    def expanded(self, scenario_id: str) -> str:
        """Each expanded group's record as it was when it expanded (_groups.lua), expired
        with the scenario."""
        return f"{self.prefix}x:{scenario_id}"

    def scenario_keys(self, scenario_id: str) -> list[str]:
        """KEYS[1..4] of every per-scenario script: prefix, scenario, tasks, events."""
        sid = scenario_id
        return [self.prefix, self.scenario(sid), self.tasks(sid), self.events(sid)]

    def ready_queue(self, service: str, priority: int) -> str:
        return f"{self.prefix}q:{service}:{priority}"

    def ready_queues(self, service: str) -> list[str]:
        """Highest priority first: the order lease drains them."""
        return [self.ready_queue(service, p) for p in range(MAX_PRIORITY, MIN_PRIORITY - 1, -1)]

    def tenants(self, service: str) -> str:
        """The tenants with ready queues of their own for `service` (decision 79)."""
        return f"{self.prefix}tn:{service}"

    def delayed(self, service: str) -> str:
        return f"{self.prefix}d:{service}"

    @property
    def lease_expiry(self) -> str:
        return f"{self.prefix}lx"

    @property
    def in_flight(self) -> str:
        return f"{self.prefix}fl"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}ob"

    @property
    def services(self) -> str:
        return f"{self.prefix}sv"

    @property
    def usage(self) -> str:
        return f"{self.prefix}us"

    @property
    def parallel_scenarios(self) -> str:
        """Live scenarios with max_parallel tasks (their held tasks, see _lease.lua)."""
        return f"{self.prefix}ps"

    def index(self, status: str | None) -> str:
        return f"{self.prefix}ix:{status or INDEX_ALL}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}ik:{key}"


@dataclass(frozen=True, slots=True)
class KeySpace:
    """All shards of one deployment, plus the pub/sub channel names."""

    key_prefix: str = "scenarist"
    shard_count: int = 1

    def shard_of(self, scenario_id: str) -> int:
        return zlib.crc32(scenario_id.encode()) % self.shard_count

    def shard(self, index: int) -> ShardKeys:
        return ShardKeys(f"{{{self.key_prefix}:{index}}}:")

    def for_scenario(self, scenario_id: str) -> ShardKeys:
        return self.shard(self.shard_of(scenario_id))

    def for_idempotency_key(self, key: str) -> ShardKeys:
        return self.shard(zlib.crc32(key.encode()) % self.shard_count)

    def gate(self, service: str) -> ShardKeys:
        """A service's gate keys on Redis Cluster: a slot of their own (decision 68)."""
        return ShardKeys(f"{{{self.key_prefix}:gate:{service}}}:")

    def tenant_gate(self, tenant: str) -> ShardKeys:
        """A tenant's cap on Redis Cluster: a slot of its own, kept as a service's gate."""
        return ShardKeys(f"{{{self.key_prefix}:tenant:{tenant}}}:")

    @property
    def fair(self) -> ShardKeys:
        """The tenants' passes on Redis Cluster: one slot for every service (fair_lease.py)."""
        return ShardKeys(f"{{{self.key_prefix}:fair}}:")

    def shards(self) -> list[ShardKeys]:
        return [self.shard(i) for i in range(self.shard_count)]

    @property
    def workers(self) -> str:
        return f"{{{self.key_prefix}:w}}:workers"

    @property
    def workers_seen(self) -> str:
        return f"{{{self.key_prefix}:w}}:seen"

    @property
    def channel_prefix(self) -> str:
        """Channels are not keys (no slot), so they carry no hash tag."""
        return f"{self.key_prefix}:"

    def ready_channel(self, service: str) -> str:
        return f"{self.channel_prefix}ready:{service}"

    def events_channel(self, scenario_id: str) -> str:
        return f"{self.channel_prefix}events:{scenario_id}"
