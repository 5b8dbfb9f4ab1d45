"""Tenants and their fair share of a service (decision 79).

A scenario belongs to a tenant (`POST /generate`'s `tenant`; the catalog's `tenants:`
gives each a `weight` and an optional `max_in_flight`). Inside a service, a lease shares
the ready tasks out across tenants by weight with start-time fair queueing:

- every (service, tenant) has a *pass*, every service a *virtual time* (the pass of the
  tenant it served last);
- a tenant's turn is `max(pass, virtual)`: a tenant that was idle starts at the
  service's present, not with the credit of its idle time;
- the lease takes, among the tenants whose next ready task is in the highest lane that has
  ready tasks, the one with the smallest turn (ties: the ready order of the heads), then
  that tenant's next task in the level order;
- taking a task moves the tenant's pass to `turn + 1 / weight` and the service's virtual
  time to `turn`. A task held back (its group, key, cap, rate or affinity) costs nothing.

So two tenants with ready work in a service alternate in proportion to their weights
whatever their backlogs, and a tenant's flood delays another by at most its share. Without
a `tenants:` section nothing is charged and every turn is equal: the walk is the ready
order of today (lane, level, age, id). The passes are the one piece of state, stored
beside the token buckets; `fair_walk` is the walk the model and SQLite run and
`walk_ready` in storage/redis/lua/_lease.lua mirrors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from scenarist.core.model import DEFAULT_TENANT, JSON, TenantStats, lane_of_priority
from scenarist.core.ready_order import ReadyRank, ready_at, ready_rank

__all__ = ["DEFAULT_TENANT", "FairShare", "TenantPolicy", "Tenants", "fair_walk"]
VIRTUAL = ""  # the tenant slot that keeps a service's virtual time (no tenant is named "")


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """A tenant of the catalog's `tenants:`."""

    weight: float = 1.0
    max_in_flight: int | None = None  # processing tasks of the tenant, every service

    def describe(self) -> dict[str, JSON]:
        described: dict[str, JSON] = {"weight": self.weight}
        if self.max_in_flight is not None:
            described["max_in_flight"] = self.max_in_flight
        return described


Tenants = Mapping[str, TenantPolicy]
NO_TENANTS: Tenants = {}


def known_tenant(tenants: Tenants, tenant: str) -> bool:
    """`default` always exists; any other tenant is one the catalog names."""
    return tenant == DEFAULT_TENANT or tenant in tenants


class Passes(Protocol):
    """The stored passes: (service, tenant) -> pass; tenant VIRTUAL: the virtual time."""

    def __call__(self, service: str, tenant: str) -> float | None: ...


class FairShare:
    """The passes one lease reads and moves (read once, then counted on in memory)."""

    def __init__(self, tenants: Tenants, stored: Passes) -> None:
        self._tenants = tenants
        self._stored = stored
        self._read: dict[tuple[str, str], float | None] = {}
        self._moved: dict[tuple[str, str], float] = {}

    @property
    def charging(self) -> bool:
        """Passes move only when the catalog has tenants: without, nothing is written."""
        return bool(self._tenants)

    def _get(self, service: str, tenant: str) -> float | None:
        key = (service, tenant)
        if key in self._moved:
            return self._moved[key]
        if key not in self._read:
            self._read[key] = self._stored(service, tenant)
        return self._read[key]

    def turn(self, service: str, tenant: str) -> float:
        if not self.charging:
            return 0.0
        virtual = self._get(service, VIRTUAL) or 0.0
        own = self._get(service, tenant)
        return virtual if own is None else max(own, virtual)

    def charge(self, service: str, tenant: str) -> None:
        if not self.charging:
            return
        turn = self.turn(service, tenant)
        policy = self._tenants.get(tenant)
        weight = policy.weight if policy is not None else 1.0
        self._moved[(service, tenant)] = turn + 1.0 / weight
        self._moved[(service, VIRTUAL)] = turn

    def moved(self) -> dict[tuple[str, str], float]:
        """The passes to store (sorted): those this lease moved."""
        return dict(sorted(self._moved.items()))


class ReadyTask(Protocol):
    """A ready task as a store reads it: a Task field name (or `priority`) gives its value."""

    def __getitem__(self, key: str, /) -> Any: ...


T = TypeVar("T", bound=ReadyTask)


def _rank(task: ReadyTask) -> ReadyRank:
    """The ready order of core/ready_order.py, from the stored priority."""
    return ready_rank(int(task["priority"]), ready_at(task), str(task["id"]))


def fair_walk(
    streams: Mapping[tuple[str, str], Iterable[T]],
    share: FairShare,
    *,
    visit: Callable[[T], bool],
    more: Callable[[], bool],
) -> None:
    """Visit ready tasks in the fair order while `more()`: `streams` are each (service,
    tenant)'s ready tasks in ready order; `visit(task)` says whether the lease took it
    (the tenant is charged) or passed it over (free). Each task is visited once."""
    cursors: dict[tuple[str, str], tuple[T, Iterator[T]]] = {}
    visited: tuple[str, str] | None = None  # its stream moves on only if the walk does

    def advance(key: tuple[str, str], it: Iterator[T]) -> None:
        head = next(it, None)
        if head is None:
            cursors.pop(key, None)
        else:
            cursors[key] = (head, it)

    for key, stream in streams.items():
        advance(key, iter(stream))
    while cursors and more():
        if visited is not None:
            advance(visited, cursors[visited][1])
            visited = None
            if not cursors:
                break
        top = max(lane_of_priority(int(h["priority"])).offset for h, _ in cursors.values())
        best_of_service: dict[str, tuple[tuple[float, ReadyRank], str]] = {}
        for (service, tenant), (head, _) in cursors.items():
            if lane_of_priority(int(head["priority"])).offset != top:
                continue
            order = (share.turn(service, tenant), _rank(head))
            if service not in best_of_service or order < best_of_service[service][0]:
                best_of_service[service] = (order, tenant)
        service, (order, tenant) = min(best_of_service.items(), key=lambda kv: kv[1][0][1])
        if visit(cursors[(service, tenant)][0]):
            share.charge(service, tenant)
        visited = (service, tenant)


@dataclass(frozen=True, slots=True)
class TenantView:
    """A tenant as `/queues` shows it: its tasks now and its policy from the catalog."""

    tenant: str
    ready: int
    in_flight: int
    weight: float
    max_in_flight: int | None


def tenant_views(stats: Iterable[TenantStats], tenants: Tenants) -> list[TenantView]:
    """Every tenant of the catalog, and any other with tasks (the default one), sorted;
    none without a `tenants:` section."""
    if not tenants:
        return []
    counted = {s.tenant: s for s in stats}
    views = []
    for name in sorted({*tenants, *counted}):
        policy = tenants.get(name, TenantPolicy())
        seen = counted.get(name, TenantStats(name, 0, 0))
        views.append(
            TenantView(name, seen.ready, seen.in_flight, policy.weight, policy.max_in_flight)
        )
    return views
