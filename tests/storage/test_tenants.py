"""Tenants on every backend (core/tenants.py, decision 79): inside a service a lease
shares the ready tasks out across tenants by weight (a flood of one tenant does not hold
back another's later tasks), each tenant's tasks in the ready order; a tenant's
`max_in_flight` holds its tasks back; a task keeps its scenario's tenant. Redis Cluster
plans the share across its shards (fair_lease.py, decision 80)."""

from __future__ import annotations

from scenarist.core.model import ScenarioPlan
from scenarist.core.tenants import TenantPolicy
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease, plan, spec, submit

TENANTS = {"flood": TenantPolicy(weight=1.0), "studio": TenantPolicy(weight=3.0)}


def singles(n: int) -> list[ScenarioPlan]:
    return [plan(spec("x")) for _ in range(n)]


async def test_a_later_tenant_shares_the_service_by_weight(store: Store) -> None:
    flood = [(await submit(store, p, now=T0, tenant="flood"))[0].id for p in singles(12)]
    studio = [(await submit(store, p, now=T0 + 1, tenant="studio"))[0].id for p in singles(6)]
    taken = []
    for k in range(8):
        [task] = await lease(store, now=T0 + 2 + k, max_tasks=1, tenants=TENANTS)
        taken.append(task.tenant)
    # studio (weight 3) takes three turns for each of flood's, though flood was first;
    # an equal turn goes to the older head.
    assert taken == ["flood", "studio", "studio", "studio", "flood", "studio", "studio", "studio"]
    rest = [t.scenario_id for t in await lease(store, now=T0 + 20, tenants=TENANTS)]
    assert rest == flood[2:]  # each tenant's tasks in the ready order
    assert len(studio) == 6


async def test_without_tenants_the_ready_order_is_kept(store: Store) -> None:
    first = [(await submit(store, p, now=T0, tenant="flood"))[0].id for p in singles(3)]
    later = [(await submit(store, p, now=T0 + 1, tenant="studio"))[0].id for p in singles(2)]
    order = [t.scenario_id for t in await lease(store, now=T0 + 2, max_tasks=5)]
    assert order == first + later


async def test_a_tenant_cap_holds_its_tasks_back(store: Store) -> None:
    capped = {"flood": TenantPolicy(max_in_flight=2), "studio": TenantPolicy()}
    for p in singles(4):
        await submit(store, p, now=T0, tenant="flood")
    await submit(store, plan(spec("x")), now=T0 + 1, tenant="studio")
    got = await lease(store, now=T0 + 2, max_tasks=10, tenants=capped)
    assert sorted(t.tenant for t in got) == ["flood", "flood", "studio"]
    done = next(t for t in got if t.tenant == "flood")
    await store.complete(done.id, done.lease_token, result_ref=None, result=None, now=T0 + 3)
    [again] = await lease(store, now=T0 + 4, max_tasks=10, tenants=capped)
    assert again.tenant == "flood"  # one of the two left, now that one ended


async def test_a_scenario_and_its_tasks_keep_their_tenant(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")), tenant="studio")
    assert (await store.get_scenario(scenario.id)).tenant == "studio"
    [a] = await lease(store, now=T0 + 1, tenants=TENANTS)
    await store.complete(a.id, a.lease_token, result_ref=None, result=None, now=T0 + 2)
    [b] = await lease(store, now=T0 + 3, tenants=TENANTS)
    assert (a.tenant, b.tenant) == ("studio", "studio")
