"""The lockstep test with tenants (core/tenants.py, decision 79): scenarios of three
tenants (the default one, `studio` with weight 3 and `small` with weight 1 and at most 2
tasks in flight), every lease sharing the services out by weight, driven through every
operation of the lockstep test on the model, SQLite and a single Redis node, compared
after every step. Redis Cluster refuses tenants (tests/storage/test_tenants.py)."""

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


def run_tenants(openers: dict[str, Any], *, chosen: Any = LOCKSTEP_SETTINGS) -> None:
    machine = type("TenantLockstepMachine", (TenantLockstep,), {"openers": openers})
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
