"""Joins and optional tasks on every backend: a join runs once its parents are final and
enough succeeded, is skipped as soon as it cannot be reached, sees every parent in its
inputs; an optional task's failure blocks nothing and fails nothing."""

from __future__ import annotations

from scenarist.core.model import ScenarioPlan, Task
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease_named, plan, run_to_success, spec, statuses, submit


async def fail_named(store: Store, scenario_id: str, name: str, *, now: float) -> Task:
    task = await lease_named(store, scenario_id, name, now=now)
    return await store.fail(
        task.id, task.lease_token, attempt=task.attempt, error=f"{name} broke",
        retry_at=None, now=now,
    )  # fmt: skip


def storyboard(need: int | None, *, optional_thumbnail: bool = False) -> ScenarioPlan:
    return plan(
        spec("outline"),
        *(spec(f"shot_{i}", "outline") for i in (1, 2, 3)),
        spec("cut", "shot_1", "shot_2", "shot_3", need=need),
        spec("thumbnail", "outline", optional=optional_thumbnail),
    )


async def test_one_failed_shot_under_min_success_2_still_runs_cut(store: Store) -> None:
    scenario, _ = await submit(store, storyboard(2))
    await run_to_success(store, scenario.id, ["outline", "shot_1"], now=T0 + 1)
    await fail_named(store, scenario.id, "shot_2", now=T0 + 2)
    assert (await statuses(store, scenario.id))["cut"] == "pending"  # shot_3 still runs
    await run_to_success(store, scenario.id, ["shot_3", "thumbnail"], now=T0 + 3)

    cut = await lease_named(store, scenario.id, "cut", now=T0 + 4)
    assert [(i["task"], i["status"]) for i in cut.inputs] == [
        ("shot_1", "success"),
        ("shot_2", "failed"),
        ("shot_3", "success"),
    ]
    failed_input = cut.inputs[1]
    assert failed_input["error"] == "shot_2 broke"
    assert failed_input["result"] is None
    await store.complete(cut.id, cut.lease_token, result_ref="cut", result=None, now=T0 + 5)

    done = await store.get_scenario(scenario.id)
    assert (done.status.value, done.tolerated_failures) == ("success", 1)
    assert (await store.get_task(f"{scenario.id}:shot_2")).tolerated


async def test_two_failed_shots_skip_cut_and_fail_the_scenario(store: Store) -> None:
    scenario, _ = await submit(store, storyboard(2))
    await run_to_success(store, scenario.id, ["outline", "thumbnail"], now=T0 + 1)
    await fail_named(store, scenario.id, "shot_1", now=T0 + 2)
    assert (await statuses(store, scenario.id))["cut"] == "pending"
    await fail_named(store, scenario.id, "shot_3", now=T0 + 3)
    # The bar can no longer be reached: cut is skipped while shot_2 still waits to run.
    assert (await statuses(store, scenario.id))["cut"] == "skipped"
    await run_to_success(store, scenario.id, ["shot_2"], now=T0 + 4)

    done = await store.get_scenario(scenario.id)
    assert done.status.value == "failed"
    assert done.tolerated_failures == 1  # shot_1: cut could still run when it failed


async def test_join_any_runs_with_one_success_and_waits_for_every_parent(store: Store) -> None:
    scenario, _ = await submit(store, storyboard(1))
    await run_to_success(store, scenario.id, ["outline", "thumbnail", "shot_1"], now=T0 + 1)
    assert (await statuses(store, scenario.id))["cut"] == "pending"
    await fail_named(store, scenario.id, "shot_2", now=T0 + 2)
    completed_last = await fail_named(store, scenario.id, "shot_3", now=T0 + 3)
    assert completed_last.tolerated
    assert (await statuses(store, scenario.id))["cut"] == "queued"


async def test_an_optional_failure_blocks_nothing_and_fails_nothing(store: Store) -> None:
    the_plan = plan(
        spec("outline"),
        spec("thumbnail", "outline", optional=True),
        spec("publish", "outline", "thumbnail"),
    )
    scenario, _ = await submit(store, the_plan)
    await run_to_success(store, scenario.id, ["outline"], now=T0 + 1)
    await fail_named(store, scenario.id, "thumbnail", now=T0 + 2)
    publish = await lease_named(store, scenario.id, "publish", now=T0 + 3)
    assert [(i["task"], i["status"]) for i in publish.inputs] == [
        ("outline", "success"),
        ("thumbnail", "failed"),
    ]
    await store.complete(publish.id, publish.lease_token, result_ref="p", result=None, now=T0 + 4)
    done = await store.get_scenario(scenario.id)
    assert (done.status.value, done.tolerated_failures) == ("success", 1)


async def test_without_a_join_a_failure_skips_as_before(store: Store) -> None:
    scenario, _ = await submit(store, storyboard(None))
    await run_to_success(store, scenario.id, ["outline", "thumbnail"], now=T0 + 1)
    await fail_named(store, scenario.id, "shot_1", now=T0 + 2)
    assert (await statuses(store, scenario.id))["cut"] == "skipped"
    await run_to_success(store, scenario.id, ["shot_2", "shot_3"], now=T0 + 3)
    done = await store.get_scenario(scenario.id)
    assert (done.status.value, done.tolerated_failures) == ("failed", 0)


async def test_a_retry_counts_the_tolerated_failures_again(store: Store) -> None:
    scenario, _ = await submit(store, storyboard(2))
    await run_to_success(store, scenario.id, ["outline", "thumbnail", "shot_1"], now=T0 + 1)
    await fail_named(store, scenario.id, "shot_2", now=T0 + 2)
    await fail_named(store, scenario.id, "shot_3", now=T0 + 3)
    assert (await store.get_scenario(scenario.id)).tolerated_failures == 1
    retried = await store.retry_scenario(scenario.id, now=T0 + 4)
    assert (retried.status.value, retried.tolerated_failures) == ("running", 0)
    await run_to_success(store, scenario.id, ["shot_2", "shot_3", "cut"], now=T0 + 5)
    assert (await store.get_scenario(scenario.id)).status.value == "success"
