"""Rerun from a task and the history of runs, on every backend (decision 60): the
request's outcome, what a worker leases afterwards, the refusals that change nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from scenarist.core.catalog import load_catalog
from scenarist.core.errors import ConflictError, ParamError
from scenarist.core.model import ScenarioStatus, Task, TaskStatus
from scenarist.core.rerun import RerunRequest
from scenarist.storage.base import Store
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import (
    T0,
    diamond,
    lease,
    lease_named,
    plan,
    run_to_success,
    spec,
    statuses,
    submit,
    task_events,
)
from tests.storage.test_lockstep_groups import group

SERVICES = ("text-service", "audio-service", "image-service", "video-service")


async def drain(store: Store, *, now: float, run: int) -> list[Task]:
    """Lease and complete until nothing is ready; the leased tasks in lease order."""
    leased: list[Task] = []
    while True:
        batch = [t for service in SERVICES for t in await lease(store, service, now=now)]
        if not batch:
            return leased
        for task in batch:
            await store.complete(
                task.id,
                task.lease_token,
                result_ref=f"ref:{task.name}:{run}",
                result={"run": run, "style": task.payload.get("style")},
                now=now,
            )
        leased.extend(batch)


async def rerun(
    store: Store, scenario_id: str, *names: str, now: float = T0 + 50, **options: Any
) -> tuple[str, ...]:
    _, again = await store.rerun_scenario(scenario_id, RerunRequest(names, **options), now=now)
    return again


async def snapshot(store: Store, scenario_id: str) -> tuple[object, ...]:
    return (
        await store.get_scenario(scenario_id),
        await store.list_tasks(scenario_id),
        await task_events(store, scenario_id),
    )


async def test_rerun_of_one_slide_runs_exactly_it_and_what_depends_on_it(store: Store) -> None:
    video = load_catalog().plan("CreateVideo", {"description": "cats", "slides_count": 3})
    scenario, _ = await submit(store, video)
    first = await drain(store, now=T0 + 1, run=1)
    assert len(first) == 9  # script, voice, three prompts, three images, video
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.SUCCESS

    again = await rerun(
        store, scenario.id, "slide_prompt_2", payloads={"slide_prompt_2": {"style": "noir"}}
    )

    assert again == ("slide_prompt_2", "slide_image_2", "video")
    running = await store.get_scenario(scenario.id)
    assert running.status is ScenarioStatus.RUNNING
    assert running.finished_at is None
    assert (await statuses(store, scenario.id))["slide_prompt_2"] == "queued"
    second = await drain(store, now=T0 + 60, run=2)
    assert [t.name for t in second] == ["slide_prompt_2", "slide_image_2", "video"]
    prompt, image, _ = second
    assert prompt.payload == {**first_payload(first, "slide_prompt_2"), "style": "noir"}
    assert (prompt.run, prompt.attempt, prompt.no_cache) == (2, 1, False)
    # Inputs come from the parents' current runs.
    assert image.inputs[0]["result"] == {"run": 2, "style": "noir"}
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.SUCCESS

    [earlier] = await store.task_history(prompt.id)
    assert (earlier.run, earlier.attempt, earlier.status) == (1, 1, TaskStatus.SUCCESS)
    assert earlier.result_ref == "ref:slide_prompt_2:1"
    assert earlier.result == {"run": 1, "style": None}
    assert earlier.payload == first_payload(first, "slide_prompt_2")
    assert earlier.worker_id == "worker-1"
    current = await store.get_task(prompt.id)
    assert (current.run, current.runs, current.result_ref) == (2, 2, "ref:slide_prompt_2:2")
    kept = await store.get_task(f"{scenario.id}:slide_prompt_1")
    assert (kept.run, kept.result_ref) == (1, "ref:slide_prompt_1:1")
    assert await store.task_history(kept.id) == []


def first_payload(leased: list[Task], name: str) -> dict[str, object]:
    return dict(next(t for t in leased if t.name == name).payload)


async def test_a_rerun_while_a_dependent_is_processing_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    scenario, _ = await submit(store, diamond())
    await run_to_success(store, scenario.id, ["a", "b"], now=T0 + 1)
    held = await lease_named(store, scenario.id, "c", now=T0 + 2)
    before = await snapshot(store, scenario.id)

    with pytest.raises(ConflictError, match="c still processing") as refused:
        await rerun(store, scenario.id, "a")
    assert refused.value.field == "tasks"
    assert await snapshot(store, scenario.id) == before

    again = await rerun(store, scenario.id, "a", cancel_running=True, no_cache=True)
    assert again == ("a", "b", "c", "d")
    assert await statuses(store, scenario.id) == {
        "a": "queued",
        "b": "pending",
        "c": "pending",
        "d": "pending",
    }
    with pytest.raises(ConflictError):  # the cancelled lease's late completion
        await store.complete(held.id, held.lease_token, result_ref="late", result=None, now=T0 + 51)
    [cancelled] = await store.task_history(held.id)
    assert (cancelled.status, cancelled.attempt, cancelled.worker_id) == (
        TaskStatus.CANCELLED,
        1,
        "worker-1",
    )
    assert all(t.no_cache for t in await store.list_tasks(scenario.id))
    await run_to_success(store, scenario.id, ["a", "b", "c", "d"], now=T0 + 52)
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.SUCCESS


async def test_a_cancelled_scenario_can_be_rerun(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    await run_to_success(store, scenario.id, ["a"], now=T0 + 1)
    await store.cancel_scenario(scenario.id, now=T0 + 2)

    again = await rerun(store, scenario.id, "b", "c")

    assert again == ("b", "c", "d")
    rerun_scenario = await store.get_scenario(scenario.id)
    assert (rerun_scenario.status, rerun_scenario.cancelled) == (ScenarioStatus.RUNNING, False)
    await run_to_success(store, scenario.id, ["b", "c", "d"], now=T0 + 60)
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.SUCCESS
    history = await store.task_history(f"{scenario.id}:d")
    assert [(r.run, r.status) for r in history] == [(1, TaskStatus.CANCELLED)]


async def test_history_keeps_the_last_history_limit_runs(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("only")))
    for run in range(1, 5):
        await run_to_success(store, scenario.id, ["only"], now=T0 + run)
        if run < 4:
            await rerun(store, scenario.id, "only", history_limit=2, now=T0 + run + 0.5)
    task = await store.get_task(f"{scenario.id}:only")
    assert (task.run, task.runs) == (4, 3)
    history = await store.task_history(task.id)
    assert [(r.run, r.result_ref) for r in history] == [(3, "ref:only"), (2, "ref:only")]


async def test_unknown_names_are_named_and_change_nothing(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    before = await snapshot(store, scenario.id)
    with pytest.raises(ParamError, match="'x', 'y'") as unknown:
        await rerun(store, scenario.id, "a", "x", "y")
    assert unknown.value.field == "tasks"
    with pytest.raises(ParamError) as stray:
        await rerun(store, scenario.id, "a", payloads={"b": {"k": 1}})
    assert stray.value.field == "payload.b"
    assert await snapshot(store, scenario.id) == before


async def test_a_dependent_a_lost_parent_put_out_of_reach_stays_as_it_is(store: Store) -> None:
    """d needs b and c; c failed for good, so rerunning b leaves d skipped, and naming d
    itself is refused."""
    the_plan = plan(spec("a"), spec("b", "a"), spec("c", "a", max_attempts=1), spec("d", "b", "c"))
    scenario, _ = await submit(store, the_plan)
    await run_to_success(store, scenario.id, ["a", "b"], now=T0 + 1)
    failing = await lease_named(store, scenario.id, "c", now=T0 + 2)
    await store.fail(
        failing.id, failing.lease_token, attempt=1, error="no", retry_at=None, now=T0 + 3
    )
    assert await rerun(store, scenario.id, "b") == ("b",)
    assert (await statuses(store, scenario.id))["d"] == "skipped"
    with pytest.raises(ConflictError, match="d cannot run again"):
        await rerun(store, scenario.id, "d")


async def test_a_rerun_of_the_task_a_group_expanded_from_expands_it_again(
    store: Store,
) -> None:
    """`a` expanded group `g` into g_1..g_3; rerunning `a` brings `g` back (its
    instances and their history go, `d` waits for `g` again) and the new result expands
    it to two: g_3 is gone from the live graph, `d` waits for g_1 and g_2. Rerunning an
    instance is a plain rerun (decision 63)."""
    the_plan = plan(spec("a"), group(spec("g", "a"), None, None), spec("d", "g"))
    scenario, _ = await submit(store, the_plan)
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.complete(
        a.id, a.lease_token, result_ref="r", result={"x": [1, 2, 3]}, now=T0 + 1,
        payloads={"g": [{"n": 1}, {"n": 2}, {"n": 3}]},
    )  # fmt: skip
    await run_to_success(store, scenario.id, ["g_1", "g_2", "g_3", "d"], now=T0 + 2)
    assert await rerun(store, scenario.id, "g_1") == ("d", "g_1")
    await run_to_success(store, scenario.id, ["g_1", "d"], now=T0 + 20)

    assert await rerun(store, scenario.id, "a", now=T0 + 30) == ("a", "g", "d")
    assert await statuses(store, scenario.id) == {"a": "queued", "g": "pending", "d": "pending"}
    d = await store.get_task(f"{scenario.id}:d")
    assert d.depends_on == ("g",)
    assert (await store.get_scenario(scenario.id)).progress.growing
    a = await lease_named(store, scenario.id, "a", now=T0 + 31)
    await store.complete(
        a.id, a.lease_token, result_ref="r2", result={"x": [1, 2]}, now=T0 + 32,
        payloads={"g": [{"n": 10}, {"n": 20}]},
    )  # fmt: skip
    assert await statuses(store, scenario.id) == {
        "a": "success", "d": "pending", "g_1": "queued", "g_2": "queued",
    }  # fmt: skip
    d = await store.get_task(f"{scenario.id}:d")
    assert d.depends_on == ("g_1", "g_2")
    g_1 = await store.get_task(f"{scenario.id}:g_1")
    assert (g_1.payload, g_1.run) == ({"n": 10}, 1)
    assert await store.task_history(g_1.id) == [], "the old expansion's runs went with it"
    await run_to_success(store, scenario.id, ["g_1", "g_2", "d"], now=T0 + 40)
    scenario_now = await store.get_scenario(scenario.id)
    assert scenario_now.status is ScenarioStatus.SUCCESS
    assert scenario_now.progress.total == 4
    assert [r.run for r in await store.task_history(f"{scenario.id}:d")] == [2, 1]


async def test_the_purge_takes_a_finished_scenarios_history_along(tmp_path: Path) -> None:
    """SQLite's retention deletes the scenario row; its ended runs go with it (Redis
    expires the history hash with the scenario: tests/storage/redis)."""
    store = await SqliteStore.open(tmp_path / "purge.db")
    try:
        scenario, _ = await submit(store, plan(spec("a")))
        await run_to_success(store, scenario.id, ["a"], now=T0 + 1)
        await rerun(store, scenario.id, "a", now=T0 + 2)
        await run_to_success(store, scenario.id, ["a"], now=T0 + 3)
        assert len(await store.task_history(f"{scenario.id}:a")) == 1
        assert await store.purge_finished(now=T0 + 3 + 8 * 24 * 3600.0, limit=10) == 1
        with sqlite3.connect(tmp_path / "purge.db") as conn:
            assert conn.execute("SELECT count(*) FROM task_runs").fetchone()[0] == 0
    finally:
        await store.close()


async def test_a_zipped_group_whose_upstream_group_stays_expanded_is_refused(
    store: Store,
) -> None:
    """`z` zips with `g` and also waits for `b`: rerunning `b` alone reaches z's
    instances from outside while `g` stays expanded, so `z` cannot come back: 409 naming
    the instances, nothing changes (decision 61)."""
    the_plan = plan(
        spec("a"),
        spec("b"),
        group(spec("g", "a"), None, None),
        group(spec("z", "g", "b"), "g", None),
    )
    scenario, _ = await submit(store, the_plan)
    await run_to_success(store, scenario.id, ["b"], now=T0 + 1)
    a = await lease_named(store, scenario.id, "a", now=T0 + 2)
    await store.complete(
        a.id, a.lease_token, result_ref="r", result=None, now=T0 + 2,
        payloads={"g": [{}, {}], "z": [{}, {}]},
    )  # fmt: skip
    await run_to_success(store, scenario.id, ["g_1", "g_2", "z_1", "z_2"], now=T0 + 3)
    before = await snapshot(store, scenario.id)

    with pytest.raises(ConflictError, match="z_1, z_2: instances of an expanded"):
        await rerun(store, scenario.id, "b")
    assert await snapshot(store, scenario.id) == before
    assert await rerun(store, scenario.id, "a") == ("a", "g", "z")


async def test_an_optional_instance_that_failed_leaves_with_its_tolerated_failure(
    store: Store,
) -> None:
    """An optional group's instance failed for good (a tolerated failure of the scenario);
    the rerun that brings the group back removes it, and the scenario no longer counts
    it (decision 63)."""
    optional = group(spec("g", "a", optional=True, max_attempts=1), None, None)
    scenario, _ = await submit(store, plan(spec("a"), optional, spec("d", "g")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.complete(
        a.id, a.lease_token, result_ref="r", result=None, now=T0 + 1, payloads={"g": [{}, {}]}
    )
    g_1 = await lease_named(store, scenario.id, "g_1", now=T0 + 2)
    await store.fail(g_1.id, g_1.lease_token, attempt=1, error="no", retry_at=None, now=T0 + 2)
    await run_to_success(store, scenario.id, ["g_2", "d"], now=T0 + 3)
    assert (await store.get_scenario(scenario.id)).tolerated_failures == 1

    assert await rerun(store, scenario.id, "a", now=T0 + 4) == ("a", "g", "d")
    again = await store.get_scenario(scenario.id)
    assert (again.tolerated_failures, again.progress.total) == (0, 3)
    a = await lease_named(store, scenario.id, "a", now=T0 + 5)
    await store.complete(
        a.id, a.lease_token, result_ref="r", result=None, now=T0 + 5, payloads={"g": [{}]}
    )
    await run_to_success(store, scenario.id, ["g_1", "d"], now=T0 + 6)
    done = await store.get_scenario(scenario.id)
    assert (done.status, done.tolerated_failures) == (ScenarioStatus.SUCCESS, 0)
