"""Worker affinity on every backend (decision 78): a task that requires labels goes only
to a worker that has them, and does not block the tasks behind it; a task that prefers
labels goes to a worker that has them at once and to any other once it waited its
`prefer_wait`; a group's instances keep the group's affinity."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from scenarist.core.affinity import Affinity
from scenarist.core.model import Task
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease_named, plan, spec, submit
from tests.storage.test_lanes import shots

A100 = Affinity(requires={"gpu": "a100"}, prefers={})
WARM_SDXL = Affinity(requires={}, prefers={"model": "sdxl"}, prefer_wait=2.0)


async def lease_as(
    store: Store, labels: Mapping[str, str] | None, *, now: float, max_tasks: int = 10
) -> list[Task]:
    return await store.lease(
        "svc", max_tasks=max_tasks, lease_seconds=None, worker_id="w", now=now,
        nonce=f"n{now}", labels=labels,
    )  # fmt: skip


async def test_a_required_label_keeps_a_task_from_other_workers_without_blocking_them(
    store: Store,
) -> None:
    gpu_only, _ = await submit(store, plan(dataclasses.replace(spec("x"), affinity=A100)))
    plain, _ = await submit(store, plan(spec("y")), now=T0 + 1)

    cpu = await lease_as(store, {"gpu": "t4"}, now=T0 + 2)
    assert [(t.scenario_id, t.name) for t in cpu] == [(plain.id, "y")]
    assert await lease_as(store, None, now=T0 + 100) == []  # never, however long it waits
    [taken] = await lease_as(store, {"gpu": "a100", "model": "any"}, now=T0 + 101)
    assert (taken.scenario_id, taken.affinity) == (gpu_only.id, A100)


async def test_a_preferred_task_goes_to_a_warm_worker_first_and_to_any_after_its_wait(
    store: Store,
) -> None:
    scenario, _ = await submit(
        store, plan(dataclasses.replace(spec("x"), affinity=WARM_SDXL), spec("y")), now=T0
    )
    [y] = await lease_as(store, {"model": "flux"}, now=T0 + 1.9)
    assert y.name == "y"
    assert await lease_as(store, {"model": "flux"}, now=T0 + 1.99) == []
    [x] = await lease_as(store, {"model": "flux"}, now=T0 + 2.0)  # waited 2 s since queued
    assert (x.scenario_id, x.name) == (scenario.id, "x")


async def test_a_warm_worker_takes_a_preferred_task_at_once(store: Store) -> None:
    await submit(store, plan(dataclasses.replace(spec("x"), affinity=WARM_SDXL)), now=T0)
    [x] = await lease_as(store, {"model": "sdxl", "gpu": "a100"}, now=T0 + 0.1)
    assert x.affinity == WARM_SDXL


async def test_a_preferred_tasks_wait_counts_from_when_it_became_ready(store: Store) -> None:
    """A dependent queued late waits its own `prefer_wait` from its release."""
    scenario, _ = await submit(
        store, plan(spec("a"), dataclasses.replace(spec("b", "a"), affinity=WARM_SDXL)), now=T0
    )
    a = await lease_named(store, scenario.id, "a", now=T0 + 10)
    await store.complete(a.id, a.lease_token, result_ref="a", result=None, now=T0 + 10)
    assert await lease_as(store, {}, now=T0 + 11) == []
    [b] = await lease_as(store, {}, now=T0 + 12)
    assert b.name == "b"


async def test_the_instances_of_a_group_keep_its_affinity(store: Store) -> None:
    group = dataclasses.replace(shots("outline"), affinity=A100)
    scenario, _ = await submit(store, plan(spec("outline"), group))
    outline = await lease_named(store, scenario.id, "outline", now=T0 + 1)
    await store.complete(
        outline.id, outline.lease_token, result_ref="o", result=None, now=T0 + 1,
        payloads={"shots": [{"n": 1}, {"n": 2}]},
    )  # fmt: skip
    instances = [t for t in await store.list_tasks(scenario.id) if t.name.startswith("shots_")]
    assert [t.affinity for t in instances] == [A100, A100]
    assert await lease_as(store, {}, now=T0 + 2) == []
    assert len(await lease_as(store, {"gpu": "a100"}, now=T0 + 2)) == 2
