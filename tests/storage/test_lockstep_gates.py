"""The lockstep test with lease-time gates (core/gates.py): a service with a cap, a
service with a token bucket, and tasks sharing concurrency keys, driven through every
operation of the lockstep test (leases, completions, failures, hand-backs, expiries,
cancels, retries) on the model, SQLite and single-node Redis, compared after every step
(records, events, queue statistics with the tasks held by a key and the stored buckets).

After every step the gates must also hold: no service above its cap, no key above its
limit (the seed's claim, which names its task and is not gated, is left out). Redis
Cluster runs the caps and buckets through its gate slots and refuses concurrency keys
(decision 68): it runs the same machine without keys."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule, run_state_machine_as_test

from scenarist.core.errors import NotRunnableError
from scenarist.core.gates import RateLimit, ServiceGate
from scenarist.core.model import ScenarioPlan, Task, TaskStatus
from scenarist.storage.base import Store
from tests.storage.lockstep_model import ModelStore
from tests.storage.plans import T0, plan, spec
from tests.storage.test_lockstep import (
    LOCKSTEP_SETTINGS,
    MUTANT_SETTINGS,
    SERVICES,
    Lockstep,
    open_redis,
    open_sqlite,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

# img: at most 2 processing; tts: 2 tokens a second, 3 at most (the clock moves 0.25 s a
# step, so the bucket runs dry under a run of leases and refills in a few steps).
GATES = {
    "img": ServiceGate(max_in_flight=2),
    "tts": ServiceGate(rate_limit=RateLimit(per_second=2.0, burst=3)),
}
KEYS = {"voice-a": 1, "voice-b": 2}


@st.composite
def keyed_dags(draw: st.DrawFn, *, with_keys: bool = True) -> ScenarioPlan:
    """Up to 6 tasks over both services, some sharing a concurrency key (across
    scenarios too: the keys are global)."""
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
        key = draw(st.sampled_from([None, None, *KEYS])) if with_keys else None
        if key is not None:
            base = dataclasses.replace(base, concurrency_key=key, concurrency_limit=KEYS[key])
        specs.append(base)
    return plan(*specs)


class GatedLockstep(Lockstep):
    gates = GATES

    @initialize(the_plan=keyed_dags())
    def first_submit(self, the_plan: ScenarioPlan) -> None:
        self.submit(the_plan)

    @rule(the_plan=keyed_dags())
    def submit(self, the_plan: ScenarioPlan) -> None:
        super().submit(the_plan)

    @rule(plans=st.lists(keyed_dags(), min_size=1, max_size=3))
    def submit_batch(self, plans: list[ScenarioPlan]) -> None:
        super().submit_batch(plans)

    def seed_claim(self, data: Any) -> None:
        """Not a rule here: the seed's claim names its task and is not held back by a gate
        (decision 56), so it could take a capped service above its cap on purpose."""
        raise AssertionError("not drawn in the gated lockstep")

    @invariant()
    def gates_hold(self) -> None:
        tasks = processing(self.run(self._all_tasks()))
        services = Counter(t.service for t in tasks)
        keys = Counter(t.concurrency_key for t in tasks if t.concurrency_key)
        assert services["img"] <= 2, services
        assert all(keys[k] <= limit for k, limit in KEYS.items()), keys

    async def _all_tasks(self) -> list[Task]:
        store = next(iter(self.stores.values()))
        return [t for sid in self.scenarios for t in await store.list_tasks(sid)]


class KeylessGatedLockstep(GatedLockstep):
    """For Redis Cluster, which refuses concurrency keys (decision 68): caps and buckets
    only, run through its gate slots."""

    @initialize(the_plan=keyed_dags(with_keys=False))
    def first_submit(self, the_plan: ScenarioPlan) -> None:
        self.submit(the_plan)

    @rule(the_plan=keyed_dags(with_keys=False))
    def submit(self, the_plan: ScenarioPlan) -> None:
        Lockstep.submit(self, the_plan)

    @rule(plans=st.lists(keyed_dags(with_keys=False), min_size=1, max_size=3))
    def submit_batch(self, plans: list[ScenarioPlan]) -> None:
        Lockstep.submit_batch(self, plans)


def processing(tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if t.status is TaskStatus.PROCESSING]


def run_gated(
    openers: dict[str, Any],
    *,
    chosen: settings = LOCKSTEP_SETTINGS,
    base: type[GatedLockstep] = GatedLockstep,
) -> None:
    machine = type("GatedLockstepMachine", (base,), {"openers": openers})
    run_state_machine_as_test(machine, settings=chosen)


@pytest.mark.redis
def test_gated_stores_in_lockstep(tmp_path: Path, redis_server: RedisServer) -> None:
    async def model() -> Store:
        return ModelStore()

    run_gated(
        {
            "model": model,
            "sqlite": lambda: open_sqlite(tmp_path),
            "redis": lambda: open_redis(redis_server.url),
        }
    )


def test_the_gated_lockstep_catches_a_store_that_ignores_a_cap() -> None:
    """A model that leases without gates must be told apart."""

    class IgnoresGates(ModelStore):
        async def lease_services(self, services: Any, **options: Any) -> list[Task]:
            options.pop("gates", None)
            return await super().lease_services(services, **options)

    async def model() -> Store:
        return ModelStore()

    async def mutant() -> Store:
        return IgnoresGates()

    with pytest.raises(AssertionError):
        run_gated({"model": model, "mutant": mutant}, chosen=MUTANT_SETTINGS)


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_caps_and_buckets_in_lockstep_on_redis_cluster(
    tmp_path: Path, conformance_cluster: RedisCluster
) -> None:
    """The cluster reserves room in each service's gate slot before the shard leases and
    confirms after (decision 68): the same answers as the model's one lease rule."""

    async def model() -> Store:
        return ModelStore()

    run_gated(
        {
            "model": model,
            "sqlite": lambda: open_sqlite(tmp_path),
            "redis-cluster": lambda: open_redis(conformance_cluster.url),
        },
        base=KeylessGatedLockstep,
    )


@pytest.mark.redis
@pytest.mark.redis_cluster
def test_redis_cluster_refuses_concurrency_keys(conformance_cluster: RedisCluster) -> None:
    """A key's count would live in one shard while its tasks live on all of them: a plan
    with a key is refused at submit, naming the task, never run as if it had none."""
    from scenarist.service.records import build_records

    async def scenario() -> None:
        store = await open_redis(conformance_cluster.url)
        try:
            keyed = plan(dataclasses.replace(spec("a"), concurrency_key="k", concurrency_limit=1))
            record, tasks = build_records(keyed, scenario_id="sc-keyed", now=T0)
            with pytest.raises(NotRunnableError, match="concurrency"):
                await store.create_scenario(record, tasks)
        finally:
            await store.close()

    asyncio.run(scenario())
