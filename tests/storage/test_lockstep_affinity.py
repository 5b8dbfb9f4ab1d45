"""The lockstep test with worker affinity (core/affinity.py, decision 78): tasks that
require a GPU label or prefer a model label, leased by workers with different labels
(none, a GPU, a GPU and a warm model, another model), driven through every operation of
the lockstep test on the model, SQLite, single-node Redis and Redis Cluster (whose plan
walks a shard with heads.lua, the worker's labels counted), compared after every step.
The clock moves 0.25 s a step, so preferred tasks' waits (0.5 s and 1 s) run out within
a run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule, run_state_machine_as_test

from scenarist.core.affinity import Affinity
from scenarist.core.model import ScenarioPlan
from scenarist.storage.base import Store
from tests.storage.lockstep_model import ModelStore
from tests.storage.plans import plan, spec
from tests.storage.test_lockstep import (
    LOCKSTEP_SETTINGS,
    MUTANT_SETTINGS,
    SERVICES,
    Lockstep,
    lua_mutant_is_caught,
    open_redis,
    open_sqlite,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

AFFINITIES = [
    None,
    None,
    Affinity(requires={"gpu": "a100"}, prefers={}),
    Affinity(requires={}, prefers={"model": "m1"}, prefer_wait=0.5),
    Affinity(requires={"gpu": "a100"}, prefers={"model": "m2"}, prefer_wait=1.0),
]
LABELS = [None, {}, {"gpu": "a100"}, {"gpu": "a100", "model": "m1"}, {"model": "m2"}]


@st.composite
def affine_dags(draw: st.DrawFn) -> ScenarioPlan:
    """Up to 6 tasks over both services, some with an affinity."""
    specs = []
    for i in range(draw(st.integers(1, 6))):
        earlier = [f"t{j}" for j in range(i)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
        base = spec(
            f"t{i}",
            *deps,
            service=draw(st.sampled_from(SERVICES)),
            max_attempts=draw(st.integers(1, 3)),
            timeout=draw(st.sampled_from([4.0, 8.0])),
        )
        specs.append(dataclasses.replace(base, affinity=draw(st.sampled_from(AFFINITIES))))
    return plan(*specs)


class AffineLockstep(Lockstep):
    @initialize(the_plan=affine_dags())
    def first_submit(self, the_plan: ScenarioPlan) -> None:
        self.submit(the_plan)

    @rule(the_plan=affine_dags())
    def submit(self, the_plan: ScenarioPlan) -> None:
        super().submit(the_plan)

    @rule(plans=st.lists(affine_dags(), min_size=1, max_size=3))
    def submit_batch(self, plans: list[ScenarioPlan]) -> None:
        super().submit_batch(plans)

    @rule(
        services=st.sampled_from([(SERVICES[0],), (SERVICES[1],), SERVICES]),
        max_tasks=st.integers(1, 3),
        labels=st.sampled_from(LABELS),
    )
    def lease(  # type: ignore[override]
        self, services: tuple[str, ...], max_tasks: int, labels: dict[str, str] | None
    ) -> None:
        now, nonce = self.tick(), self.nonce()
        options: dict[str, Any] = {
            "max_tasks": max_tasks,
            "lease_seconds": None,
            "worker_id": "w",
            "now": now,
            "nonce": nonce,
            "labels": labels,
        }
        if len(services) == 1:
            answer = self.each(lambda s: s.lease(services[0], **options))
        else:
            answer = self.each(lambda s: s.lease_services(services, **options))
        self.record_tokens(answer)


def run_affine(openers: dict[str, Any], *, chosen: Any = LOCKSTEP_SETTINGS) -> None:
    machine = type("AffineLockstepMachine", (AffineLockstep,), {"openers": openers})
    run_state_machine_as_test(machine, settings=chosen)


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_affinity_in_lockstep_on_every_store(
    tmp_path: Path, redis_server: RedisServer, conformance_cluster: RedisCluster
) -> None:
    async def model() -> Store:
        return ModelStore()

    run_affine(
        {
            "model": model,
            "sqlite": lambda: open_sqlite(tmp_path),
            "redis": lambda: open_redis(redis_server.url),
            "redis-cluster": lambda: open_redis(conformance_cluster.url),
        }
    )


@pytest.mark.redis
def test_the_affinity_lockstep_catches_lua_that_ignores_a_preference(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store with one line of _lease.lua changed: a worker without the
    preferred labels takes a task before its wait ran out."""
    line = "  return room.now >= tonumber(t.av or t.q) + af.prefer_wait\n"
    lua_mutant_is_caught(
        redis_server, monkeypatch, "_lease.lua", line, "  return true\n", machine=AffineLockstep
    )


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_the_affinity_lockstep_catches_a_cluster_plan_without_the_workers_labels(
    conformance_cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """heads.lua changed to plan as if the worker had no labels: on Redis Cluster a
    shard's share then misses the tasks only this worker may take."""
    from scenarist.storage.redis import scripts

    shipped = scripts.lua_source
    line = "local room = new_room({}, tonumber(ARGV[7]), cjson.decode(ARGV[6]))"
    assert shipped("heads.lua").count(line) == 1

    def plans_without_labels(name: str) -> str:
        return shipped(name).replace(line, "local room = new_room({}, tonumber(ARGV[7]), {})")

    monkeypatch.setattr(scripts, "lua_source", plans_without_labels)

    async def model() -> Store:
        return ModelStore()

    with pytest.raises(AssertionError, match="redis-cluster answered differently"):
        run_affine(
            {"model": model, "redis-cluster": lambda: open_redis(conformance_cluster.url)},
            chosen=MUTANT_SETTINGS,
        )
