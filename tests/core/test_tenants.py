"""The fair walk of core/tenants.py on plain records: weights, an idle tenant's return,
lanes before tenants, nothing charged without tenants or for a task held back."""

from __future__ import annotations

from typing import Any

from scenarist.core.tenants import FairShare, TenantPolicy, fair_walk


def ready(tenant: str, n: int, *, priority: int = 0, start: float = 0.0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{tenant}{i:02d}",
            "tenant": tenant,
            "priority": priority,
            "available_at": None,
            "queued_at": start + i,
        }
        for i in range(n)
    ]


def walk(
    streams: dict[tuple[str, str], list[dict[str, Any]]],
    tenants: dict[str, TenantPolicy],
    passes: dict[tuple[str, str], float],
    *,
    take: int,
    refuse: frozenset[str] = frozenset(),
) -> list[str]:
    share = FairShare(tenants, lambda s, t: passes.get((s, t)))
    taken: list[str] = []

    def visit(task: dict[str, Any]) -> bool:
        if task["id"] in refuse:
            return False
        taken.append(task["id"])
        return True

    fair_walk(streams, share, visit=visit, more=lambda: len(taken) < take)
    passes.update(share.moved())
    return taken


def test_weights_share_the_service_and_the_ready_order_breaks_ties() -> None:
    tenants = {"a": TenantPolicy(weight=1.0), "b": TenantPolicy(weight=2.0)}
    streams = {("svc", "a"): ready("a", 10), ("svc", "b"): ready("b", 10, start=5.0)}
    taken = walk(streams, tenants, {}, take=6)
    assert taken == ["a00", "b00", "b01", "a01", "b02", "b03"]


def test_an_idle_tenant_comes_back_at_the_present_not_with_banked_credit() -> None:
    tenants = {"a": TenantPolicy(), "b": TenantPolicy()}
    passes: dict[tuple[str, str], float] = {}
    assert walk({("svc", "a"): ready("a", 5)}, tenants, passes, take=5) == [
        f"a{i:02d}" for i in range(5)
    ]
    # b was idle while a took five turns: it starts at the service's virtual time, so the
    # two alternate instead of b taking five in a row.
    streams = {("svc", "a"): ready("a", 4, start=10.0), ("svc", "b"): ready("b", 4, start=10.0)}
    taken = walk(streams, tenants, passes, take=4)
    assert taken == ["b00", "a00", "b01", "a01"]


def test_a_higher_lane_goes_first_whatever_the_turns() -> None:
    tenants = {"a": TenantPolicy(), "b": TenantPolicy()}
    streams = {("svc", "a"): ready("a", 3, priority=5), ("svc", "b"): ready("b", 3)}
    assert walk(streams, tenants, {}, take=4) == ["a00", "a01", "a02", "b00"]


def test_inside_a_lane_the_turn_goes_before_the_level() -> None:
    tenants = {"a": TenantPolicy(), "b": TenantPolicy()}
    streams = {("svc", "a"): ready("a", 3, priority=4), ("svc", "b"): ready("b", 3, priority=0)}
    assert walk(streams, tenants, {}, take=4) == ["a00", "b00", "a01", "b01"]


def test_a_task_held_back_costs_its_tenant_nothing() -> None:
    tenants = {"a": TenantPolicy(), "b": TenantPolicy()}
    streams = {("svc", "a"): ready("a", 3), ("svc", "b"): ready("b", 3, start=1.5)}
    # Charged for a00, a would wait for b00; free, its next task is older than b's.
    taken = walk(streams, tenants, {}, take=3, refuse=frozenset({"a00"}))
    assert taken == ["a01", "b00", "a02"]


def test_without_tenants_nothing_is_charged_and_the_ready_order_holds() -> None:
    passes: dict[tuple[str, str], float] = {}
    streams = {("svc", "a"): ready("a", 3), ("svc", "b"): ready("b", 3, start=0.5)}
    assert walk(streams, {}, passes, take=6) == ["a00", "b00", "a01", "b01", "a02", "b02"]
    assert passes == {}


def test_services_interleave_in_the_ready_order() -> None:
    tenants = {"a": TenantPolicy()}
    streams = {("one", "a"): ready("a", 2), ("two", "a"): ready("c", 2, start=0.5)}
    assert walk(streams, tenants, {}, take=4) == ["a00", "c00", "a01", "c01"]
