"""The lockstep test with tenants (core/tenants.py, decision 79): scenarios of three
tenants (the default one, `studio` with weight 3 and `small` with weight 1 and at most 2
tasks in flight), every lease sharing the services out by weight, driven through every
operation of the lockstep test on the model, SQLite and a single Redis node, compared
after every step; and on Redis Cluster, which plans the share across its shards
(storage/redis/fair_lease.py, decision 80)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule, run_state_machine_as_test

from scenarist.core.model import Lane, ScenarioPlan
from scenarist.core.tenants import TenantPolicy
from scenarist.service.records import build_records
from scenarist.storage.base import Store
from tests.storage.lockstep_model import ModelStore
from tests.storage.test_lockstep import (
    LOCKSTEP_SETTINGS,
    Lockstep,
    dags,
    lua_mutant_is_caught,
    open_redis,
    open_sqlite,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

TENANTS = {
    "studio": TenantPolicy(weight=3.0),
    "small": TenantPolicy(weight=1.0, max_in_flight=2),
}
NAMES = ["default", "studio", "small"]


class TenantLockstep(Lockstep):
    tenants = TENANTS

    @invariant()
    def tenant_counts_agree(self) -> None:
        self.each(lambda s: s.tenant_stats(now=self.now))

    @initialize(the_plan=dags(), tenant=st.sampled_from(NAMES))
    def first_submit(self, the_plan: ScenarioPlan, tenant: str = "default") -> None:  # type: ignore[override]
        self.submit(the_plan, tenant=tenant)

    @rule(the_plan=dags(), lane=st.sampled_from(list(Lane)), tenant=st.sampled_from(NAMES))
    def submit(  # type: ignore[override]
        self, the_plan: ScenarioPlan, lane: Lane = Lane.NORMAL, tenant: str = "default"
    ) -> None:
        scenario_id = f"sc{len(self.scenarios):03d}"
        scenario, tasks = build_records(
            the_plan, scenario_id=scenario_id, now=self.tick(), lane=lane, tenant=tenant
        )
        self.each(lambda s: s.create_scenario(scenario, tasks))
        self.scenarios.append(scenario_id)
        self.task_ids.extend(t.id for t in tasks)

    def batch_item(self, i: int) -> dict[str, Any]:
        return {"tenant": NAMES[i % 3]}


class ClusterTenantLockstep(TenantLockstep):
    def seed_claim(self, data: Any) -> None:
        """Not a rule here: the seed's claim names its task and is not held back by a cap
        (decision 56); on a cluster the tenant's gate slot does not count it, so the
        leases after it would differ on purpose (decision 80)."""
        raise AssertionError("not drawn in the cluster's tenant lockstep")


def run_tenants(
    openers: dict[str, Any],
    *,
    chosen: Any = LOCKSTEP_SETTINGS,
    base: type[TenantLockstep] = TenantLockstep,
) -> None:
    machine = type("TenantLockstepMachine", (base,), {"openers": openers})
    run_state_machine_as_test(machine, settings=chosen)


async def model() -> Store:
    return ModelStore()


@pytest.mark.redis
def test_tenants_in_lockstep_on_the_model_sqlite_and_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    run_tenants(
        {
            "model": model,
            "sqlite": lambda: open_sqlite(tmp_path),
            "redis": lambda: open_redis(redis_server.url),
        }
    )


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_tenants_in_lockstep_on_redis_cluster(conformance_cluster: RedisCluster) -> None:
    run_tenants(
        {"model": model, "redis-cluster": lambda: open_redis(conformance_cluster.url)},
        base=ClusterTenantLockstep,
    )


@pytest.mark.redis
def test_the_tenant_lockstep_catches_lua_that_keeps_no_pass(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store with one line of _lease.lua changed: the passes a lease moved are
    not stored, so every lease starts the turns over."""
    line = "  if #flat > 0 then redis.call('HSET', K_PASSES, unpack(flat)) end\n"
    lua_mutant_is_caught(redis_server, monkeypatch, "_lease.lua", line, "", machine=TenantLockstep)


@pytest.mark.redis
def test_the_tenant_lockstep_catches_lua_that_gives_every_tenant_the_same_turn(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store with one line of _lease.lua changed: every turn is 0, as without
    tenants, so the lease goes back to the plain ready order."""
    lua_mutant_is_caught(
        redis_server, monkeypatch, "_lease.lua", "  if not room.charging then return 0 end\n",
        "  do return 0 end\n", machine=TenantLockstep,
    )  # fmt: skip


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_the_cluster_tenant_lockstep_catches_lua_that_keeps_no_pass(
    conformance_cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis Cluster with one line of fair_charge.lua changed: the passes of the tasks a
    lease took are not stored in their slot, so every plan starts the turns over."""
    lua_mutant_is_caught(
        conformance_cluster, monkeypatch, "fair_charge.lua", "store_passes(room)\n", "\n",
        machine=ClusterTenantLockstep,
    )  # fmt: skip
