"""Lease-time gates: may this ready task be leased now? (decisions 67-69)

Three gates besides a group's `max_parallel` (decision 56):

- `max_in_flight` of a service: its processing tasks, all workers together;
- `rate_limit` of a service: a token bucket (`per_second`, `burst`), one token a lease;
- a task's `concurrency` key: processing tasks sharing the rendered key stay within its
  `limit`.

The in-flight counts are read from the lifecycle (tasks in status `processing`, or the
counters the status changes move), never kept beside it, so every end of an attempt
releases them in its own atomic step. The bucket is the one piece of state of its own:
`(tokens, at)` per service, refilled from the orchestrator's clock (`now` passed in), so
tests and lockstep runs are deterministic.

`LeaseRoom` is the rule one lease applies in ready order; the lockstep model and SQLite
use it, `gate_admit` in `storage/redis/lua/_lib.lua` mirrors it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from scenarist.core.affinity import Affinity
from scenarist.core.model import JSON, QueueStats
from scenarist.core.ready_order import ready_at
from scenarist.core.tenants import NO_TENANTS, Tenants


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_second: float
    burst: int

    def describe(self) -> dict[str, JSON]:
        return {"per_second": self.per_second, "burst": self.burst}


@dataclass(frozen=True, slots=True)
class ServiceGate:
    """A service's scheduling limits from the catalog; both optional."""

    max_in_flight: int | None = None
    rate_limit: RateLimit | None = None

    def describe(self) -> dict[str, JSON]:
        described: dict[str, JSON] = {}
        if self.max_in_flight is not None:
            described["max_in_flight"] = self.max_in_flight
        if self.rate_limit is not None:
            described["rate_limit"] = self.rate_limit.describe()
        return described


Gates = Mapping[str, ServiceGate]
NO_GATES: Gates = {}


@dataclass(frozen=True, slots=True)
class Bucket:
    """A service's stored token bucket: `tokens` left at time `at`."""

    tokens: float
    at: float


def bucket_tokens(rate: RateLimit, bucket: Bucket | None, now: float) -> float:
    """Tokens in the bucket at `now`: full before the first lease, refilled at
    `per_second` up to `burst`. A clock behind `at` (another process's) refills nothing.
    Lua: `bucket_tokens` in _lib.lua, the same operations in the same order."""
    if bucket is None:
        return float(rate.burst)
    elapsed = max(0.0, now - bucket.at)
    return min(float(rate.burst), bucket.tokens + elapsed * rate.per_second)


class Candidate(Protocol):
    """A ready task as a store reads it: a Task field name gives its value."""

    def __getitem__(self, key: str, /) -> Any: ...


class LeaseCounts:
    """What is processing now, as the store reads it inside the lease's atomic step; each
    value is read once per lease (nothing else changes it inside that step)."""

    def __init__(
        self,
        *,
        in_flight: Callable[[str], int],  # service -> processing tasks
        key_running: Callable[[str], int],  # concurrency key -> processing tasks
        group_running: Callable[[str, str], int],  # (scenario id, group) -> processing
        bucket: Callable[[str], Bucket | None],  # service -> its stored bucket
        tenant_running: Callable[[str], int] | None = None,  # tenant -> processing tasks
    ) -> None:
        self.in_flight = functools.cache(in_flight)
        self.tenant_running = functools.cache(tenant_running or (lambda _tenant: 0))
        self.key_running = functools.cache(key_running)
        self.group_running = functools.cache(group_running)
        self.bucket = functools.cache(bucket)


class LeaseRoom:
    """What one lease may still take, consumed task by task in ready order.

    A task is admitted when its service is below `max_in_flight` and has a token, its
    group below `max_parallel`, its key below its limit and its tenant below its
    `max_in_flight`, counting the tasks this lease already admitted. A task held back
    stays queued; the lease goes on with the next one in ready order."""

    def __init__(
        self,
        gates: Gates,
        counts: LeaseCounts,
        *,
        now: float,
        labels: Mapping[str, str] | None = None,
        tenants: Tenants = NO_TENANTS,
    ) -> None:
        self._gates = gates
        self._tenants = tenants
        self._tenant_taken: dict[str, int] = {}
        self._labels: Mapping[str, str] = labels or {}
        self._counts = counts
        self._now = now
        self._services: dict[str, int] = {}  # taken this lease
        self._tokens: dict[str, float] = {}  # read (and refilled) once per lease
        self._spent: set[str] = set()
        self._keys: dict[str, int] = {}
        self._groups: dict[tuple[str, str], int] = {}

    def service_room(self, service: str) -> int | None:
        """How many more tasks of `service` this lease may take (None: no service gate)."""
        gate = self._gates.get(service)
        if gate is None:
            return None
        room: int | None = None
        if gate.max_in_flight is not None:
            taken = self._services.get(service, 0)
            room = max(0, gate.max_in_flight - self._counts.in_flight(service) - taken)
        if gate.rate_limit is not None:
            whole = max(0, int(self._tokens_of(service, gate.rate_limit)))
            room = whole if room is None else min(room, whole)
        return room

    def admit(self, task: Candidate) -> bool:
        affinity: Affinity | None = task["affinity"]
        if affinity is not None and not affinity.admits(self._labels, ready_at(task), self._now):
            return False  # not this worker's (yet): nothing counted against the gates
        service = task["service"]
        room = self.service_room(service)
        if room is not None and room <= 0:
            return False
        group = None
        if task["max_parallel"] is not None:
            group = (task["scenario_id"], task["parallel_group"])
            if self._group_running(group) >= task["max_parallel"]:
                return False
        key = task["concurrency_key"]
        if key is not None and self._key_running(key) >= task["concurrency_limit"]:
            return False
        tenant: str | None = task["tenant"] if self._tenants else None
        policy = None if tenant is None else self._tenants.get(tenant)
        tenant_cap = None if policy is None else policy.max_in_flight
        if tenant is not None and tenant_cap is not None:
            if self._tenant_running(tenant) >= tenant_cap:
                return False
            self._tenant_taken[tenant] = self._tenant_taken.get(tenant, 0) + 1
        self._services[service] = self._services.get(service, 0) + 1
        gate = self._gates.get(service)
        if gate is not None and gate.rate_limit is not None:
            self._tokens[service] = self._tokens_of(service, gate.rate_limit) - 1.0
            self._spent.add(service)
        if group is not None:
            self._groups[group] = self._groups.get(group, 0) + 1
        if key is not None:
            self._keys[key] = self._keys.get(key, 0) + 1
        return True

    def spent_buckets(self) -> dict[str, Bucket]:
        """The buckets to store: those a lease took tokens from. A bucket untouched keeps
        its old `(tokens, at)`, so refilling in one step or in several gives one answer."""
        return {
            service: Bucket(self._tokens[service], max(self._now, self._stored_at(service)))
            for service in sorted(self._spent)
        }

    def _tokens_of(self, service: str, rate: RateLimit) -> float:
        if service not in self._tokens:
            self._tokens[service] = bucket_tokens(rate, self._counts.bucket(service), self._now)
        return self._tokens[service]

    def _stored_at(self, service: str) -> float:
        stored = self._counts.bucket(service)
        return self._now if stored is None else stored.at

    def _group_running(self, group: tuple[str, str]) -> int:
        return self._counts.group_running(*group) + self._groups.get(group, 0)

    def _tenant_running(self, tenant: str) -> int:
        return self._counts.tenant_running(tenant) + self._tenant_taken.get(tenant, 0)

    def _key_running(self, key: str) -> int:
        return self._counts.key_running(key) + self._keys.get(key, 0)


@dataclass(frozen=True, slots=True)
class GateView:
    """A service's gates as `/queues` shows them (see `gate_view`)."""

    max_in_flight: int | None
    tokens: float | None  # left in the bucket now; None: no rate limit
    held_by_cap: int
    held_by_rate: int


def gate_view(
    gate: ServiceGate | None, *, free: int, in_flight: int, bucket: Bucket | None, now: float
) -> GateView:
    """`free`: ready tasks no group or key holds. Of those, the ones beyond the cap's room
    are held by the cap, and of the rest the ones beyond the whole tokens by the rate."""
    if gate is None:
        return GateView(None, None, 0, 0)
    by_cap = 0
    if gate.max_in_flight is not None:
        by_cap = max(0, free - max(0, gate.max_in_flight - in_flight))
    tokens = None
    by_rate = 0
    if gate.rate_limit is not None:
        tokens = bucket_tokens(gate.rate_limit, bucket, now)
        by_rate = max(0, free - by_cap - int(tokens))
    return GateView(gate.max_in_flight, tokens, by_cap, by_rate)


def with_gates(stats: QueueStats, gate: ServiceGate | None, now: float) -> QueueStats:
    """The store's statistics of a service with its gates as they stand at `now`."""
    stored = (
        None if stats.bucket_at is None else Bucket(stats.bucket_tokens or 0.0, stats.bucket_at)
    )
    view = gate_view(
        gate,
        free=max(0, stats.ready - stats.held - stats.held_by_key),
        in_flight=stats.in_flight,
        bucket=stored,
        now=now,
    )
    return dataclasses.replace(
        stats,
        max_in_flight=view.max_in_flight,
        tokens=view.tokens,
        held_by_cap=view.held_by_cap,
        held_by_rate=view.held_by_rate,
    )
