"""Priority lanes on every backend (decision 77): a lease takes the interactive lane's
ready tasks first, then the normal lane's, then the batch lane's; inside a lane the level
order of the seed holds (deeper first, then older, then id). A task keeps its scenario's
lane through expansion, retry and rerun."""

from __future__ import annotations

import dataclasses

from scenarist.core.model import Lane, TaskSpec
from scenarist.core.rerun import RerunRequest
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease, lease_named, plan, run_to_success, spec, submit


async def test_a_lease_takes_the_interactive_lane_then_normal_then_batch(store: Store) -> None:
    # Submitted oldest first in the worst order for the lanes: only the lane decides.
    batch, _ = await submit(store, plan(spec("x", level=4)), now=T0, lane=Lane.BATCH)
    normal_root, _ = await submit(store, plan(spec("x", level=0)), now=T0 + 1)
    normal_deep, _ = await submit(store, plan(spec("x", level=3)), now=T0 + 2)
    interactive, _ = await submit(
        store, plan(spec("x", level=0), spec("y", level=2)), now=T0 + 3, lane=Lane.INTERACTIVE
    )
    order = [(t.scenario_id, t.name) for t in await lease(store, now=T0 + 10, max_tasks=10)]
    assert order == [
        (interactive.id, "y"),  # inside a lane: deeper first
        (interactive.id, "x"),
        (normal_deep.id, "x"),
        (normal_root.id, "x"),
        (batch.id, "x"),  # a batch task at the deepest level still goes last
    ]


async def test_a_lane_is_kept_by_the_scenario_and_its_tasks(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")), lane=Lane.BATCH)
    assert (await store.get_scenario(scenario.id)).lane is Lane.BATCH
    assert {t.lane for t in await store.list_tasks(scenario.id)} == {Lane.BATCH}
    [a] = await lease(store, now=T0 + 1)
    assert (a.lane, a.priority) == (Lane.BATCH, -5)
    await store.complete(a.id, a.lease_token, result_ref="a", result=None, now=T0 + 2)
    b = await store.get_task(f"{scenario.id}:b")
    assert (b.lane, b.priority) == (Lane.BATCH, -4)


async def test_a_default_submission_is_the_normal_lane_of_the_seed(store: Store) -> None:
    scenario, tasks = await submit(store, plan(spec("x", level=6)))
    assert (await store.get_scenario(scenario.id)).lane is Lane.NORMAL
    assert [(t.lane, t.priority) for t in tasks] == [(Lane.NORMAL, 4)]


async def test_a_retried_task_goes_back_to_its_lane(store: Store) -> None:
    interactive, _ = await submit(
        store, plan(spec("x", max_attempts=1)), now=T0, lane=Lane.INTERACTIVE
    )
    leased = await lease_named(store, interactive.id, "x", now=T0 + 1)
    normal, _ = await submit(store, plan(spec("x")), now=T0 + 2)
    await store.fail(
        leased.id, leased.lease_token, attempt=1, error="no", retry_at=None, now=T0 + 2
    )
    await store.retry_scenario(interactive.id, now=T0 + 3)
    order = [(t.scenario_id, t.lane) for t in await lease(store, now=T0 + 4, max_tasks=2)]
    assert order == [(interactive.id, Lane.INTERACTIVE), (normal.id, Lane.NORMAL)]


async def test_a_rerun_task_goes_back_to_its_lane(store: Store) -> None:
    batch, _ = await submit(store, plan(spec("x")), now=T0, lane=Lane.BATCH)
    await run_to_success(store, batch.id, ["x"], now=T0 + 1)
    normal, _ = await submit(store, plan(spec("x")), now=T0 + 2)
    await store.rerun_scenario(batch.id, RerunRequest(tasks=("x",)), now=T0 + 3)
    order = [(t.scenario_id, t.lane) for t in await lease(store, now=T0 + 4, max_tasks=2)]
    assert order == [(normal.id, Lane.NORMAL), (batch.id, Lane.BATCH)]


def shots(parent: str) -> TaskSpec:
    """A `for_each` group over `parent`'s result (its instances: shots_1..shots_N)."""
    base = spec("shots", parent)
    return dataclasses.replace(
        base,
        for_each="{{ x }}",
        group_spec={"for_each": "{{ x }}", "zip": None, "payload": {}, "max_items": 9},
        payload={},
        template_id="shots",
    )


async def test_the_instances_of_a_group_keep_their_scenarios_lane(store: Store) -> None:
    batch, _ = await submit(store, plan(spec("outline"), shots("outline")), lane=Lane.BATCH)
    normal, _ = await submit(store, plan(spec("x")), now=T0 + 1)
    outline = await lease_named(store, batch.id, "outline", now=T0 + 2)
    await store.complete(
        outline.id, outline.lease_token, result_ref="o", result=None, now=T0 + 2,
        payloads={"shots": [{"n": 1}, {"n": 2}]},
    )  # fmt: skip
    instances = [t for t in await store.list_tasks(batch.id) if t.name.startswith("shots_")]
    assert [(t.name, t.lane) for t in instances] == [
        ("shots_1", Lane.BATCH),
        ("shots_2", Lane.BATCH),
    ]
    order = [(t.scenario_id, t.name) for t in await lease(store, now=T0 + 3, max_tasks=3)]
    assert order == [(normal.id, "x"), (batch.id, "shots_1"), (batch.id, "shots_2")]
