"""Conformance: lease, claim and heartbeat."""

from __future__ import annotations

import pytest

from scenarist.core.errors import IllegalTransitionError, StaleLeaseError, TaskNotFoundError
from scenarist.core.model import ScenarioStatus, TaskStatus
from scenarist.storage.base import Store
from tests.storage.plans import (
    T0,
    diamond,
    lease,
    lease_named,
    plan,
    run_to_success,
    spec,
    submit,
)


async def test_lease_orders_by_priority_then_age_then_id(store: Store) -> None:
    # Roots with explicit levels: priority is min(level, 4), so levels 6 and 4 tie.
    young_deep, _ = await submit(store, plan(spec("x", level=6)), now=T0 + 3)
    old_four, _ = await submit(store, plan(spec("x", level=4)), now=T0 + 1)
    mid, _ = await submit(store, plan(spec("x", level=2)), now=T0)
    shallow, _ = await submit(store, plan(spec("x", level=0), spec("y", level=0)), now=T0)
    order = [t.scenario_id + t.name for t in await lease(store, now=T0 + 10)]
    assert order == [
        old_four.id + "x",
        young_deep.id + "x",
        mid.id + "x",
        shallow.id + "x",
        shallow.id + "y",
    ]


async def test_a_released_deeper_task_goes_before_older_roots(store: Store) -> None:
    roots, _ = await submit(store, plan(spec("r1"), spec("r2")), now=T0)
    chain, _ = await submit(store, plan(spec("p", service="prep"), spec("q", "p")), now=T0 + 1)
    await run_to_success(store, chain.id, ["p"], now=T0 + 5)
    first, second = await lease(store, now=T0 + 6, max_tasks=2)
    assert (first.scenario_id, first.name) == (chain.id, "q")
    assert (second.scenario_id, second.name) == (roots.id, "r1")


async def test_lease_takes_at_most_max_tasks(store: Store) -> None:
    await submit(store, plan(*(spec(f"t{i}") for i in range(5))))
    assert len(await lease(store, now=T0 + 1, max_tasks=2)) == 2
    assert len(await lease(store, now=T0 + 1, max_tasks=2)) == 2
    assert len(await lease(store, now=T0 + 1, max_tasks=2)) == 1
    assert await lease(store, now=T0 + 1, max_tasks=2) == []


async def test_lease_marks_processing_with_token_and_expiry(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a", timeout=40.0), spec("b", timeout=40.0)))
    [a] = await lease(store, now=T0 + 1, max_tasks=1, nonce="n1", worker_id="w-7")
    assert a.status is TaskStatus.PROCESSING
    assert (a.attempt, a.lease_token, a.worker_id) == (1, "n1.1", "w-7")
    assert (a.started_at, a.lease_expires_at) == (T0 + 1, T0 + 41)
    assert await store.get_task(a.id) == a
    [b] = await lease(store, now=T0 + 2, lease_seconds=5.0, nonce="n2")
    assert b.lease_expires_at == T0 + 7
    running = await store.get_scenario(scenario.id)
    assert running.status is ScenarioStatus.RUNNING
    assert running.started_at == T0 + 1
    assert running.progress.by_status[TaskStatus.PROCESSING] == 2


async def test_retry_backoff_is_respected_and_attempt_grows(store: Store) -> None:
    await submit(store, plan(spec("a")))
    [a] = await lease(store, now=T0 + 1, nonce="n1")
    await store.fail(a.id, a.lease_token, attempt=1, error="x", retry_at=T0 + 10, now=T0 + 2)
    assert await lease(store, now=T0 + 9.5) == []
    [again] = await lease(store, now=T0 + 10, nonce="n2")
    assert (again.id, again.attempt, again.lease_token) == (a.id, 2, "n2.2")


async def test_inputs_follow_depends_on_order_with_results(store: Store) -> None:
    the_plan = plan(spec("p1"), spec("p2"), spec("p3"), spec("d", "p3", "p1", "p2"))
    scenario, _ = await submit(store, the_plan)
    results = {"p1": {"mime": "image/png"}, "p2": None, "p3": {"seconds": 1.5, "tags": ["a"]}}
    for task in await lease(store, now=T0 + 1):
        await store.complete(
            task.id, task.lease_token, result_ref=f"s3://{task.name}",
            result=results[task.name], now=T0 + 2,
        )  # fmt: skip
    [d] = await lease(store, now=T0 + 3)
    assert d.inputs == (
        {
            "task": "p3",
            "status": "success",
            "result_ref": "s3://p3",
            "result": {"seconds": 1.5, "tags": ["a"]},
        },
        {
            "task": "p1",
            "status": "success",
            "result_ref": "s3://p1",
            "result": {"mime": "image/png"},
        },
        {"task": "p2", "status": "success", "result_ref": "s3://p2", "result": None},
    )
    assert (await store.list_tasks(scenario.id))[3].inputs == ()


async def test_lease_leaves_other_services_alone(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a", service="img"), spec("b", service="tts")))
    assert await lease(store, "unknown", now=T0 + 1) == []
    [a] = await lease(store, "img", now=T0 + 1)
    assert a.name == "a"
    assert (await store.get_task(f"{scenario.id}:b")).status is TaskStatus.QUEUED
    assert await lease(store, "img", now=T0 + 1) == []


async def test_lease_is_empty_when_only_pending_tasks(store: Store) -> None:
    await submit(store, diamond())
    await lease(store, now=T0 + 1)
    assert await lease(store, now=T0 + 1) == []


async def test_claim_is_a_lease_of_one_queued_task(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    a = await store.claim(
        f"{scenario.id}:a", lease_seconds=None, worker_id=None, now=T0 + 1, nonce="c"
    )
    assert (a.status, a.attempt, a.lease_token, a.lease_expires_at) == (
        TaskStatus.PROCESSING, 1, "c.1", T0 + 31,
    )  # fmt: skip
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.RUNNING
    for name, current in (("a", "processing"), ("b", "pending")):
        with pytest.raises(IllegalTransitionError) as caught:
            await store.claim(
                f"{scenario.id}:{name}", lease_seconds=None, worker_id=None, now=T0, nonce="c"
            )
        assert caught.value.current_status == current
    with pytest.raises(TaskNotFoundError):
        await store.claim("01NOPE:a", lease_seconds=None, worker_id=None, now=T0, nonce="c")


async def test_claim_may_take_a_task_in_backoff(store: Store) -> None:
    await submit(store, plan(spec("a")))
    [a] = await lease(store, now=T0 + 1)
    await store.fail(a.id, a.lease_token, attempt=1, error="x", retry_at=T0 + 60, now=T0 + 1)
    claimed = await store.claim(a.id, lease_seconds=5.0, worker_id=None, now=T0 + 2, nonce="k")
    assert (claimed.status, claimed.attempt, claimed.lease_expires_at) == (
        TaskStatus.PROCESSING, 2, T0 + 7,
    )  # fmt: skip


async def test_heartbeat_extends_the_lease(store: Store) -> None:
    await submit(store, plan(spec("a", timeout=30.0)))
    [a] = await lease(store, now=T0, lease_seconds=10.0)
    assert a.lease_token is not None
    beat = await store.heartbeat(a.id, a.lease_token, lease_seconds=20.0, now=T0 + 5)
    assert (beat.status, beat.lease_expires_at, beat.lease_token) == (
        TaskStatus.PROCESSING, T0 + 25, a.lease_token,
    )  # fmt: skip
    # Without lease_seconds a heartbeat renews the length last asked for, not the timeout.
    beat = await store.heartbeat(a.id, a.lease_token, lease_seconds=None, now=T0 + 6)
    assert (beat.lease_expires_at, beat.lease_seconds) == (T0 + 26, 20.0)
    assert (await store.get_task(a.id)).lease_expires_at == T0 + 26
    assert await store.find_expired(now=T0 + 25, limit=10) == []


async def test_a_heartbeat_without_a_length_renews_the_leased_length(store: Store) -> None:
    await submit(store, plan(spec("a", timeout=300.0)))
    [a] = await lease(store, now=T0, lease_seconds=10.0)
    assert a.lease_token is not None
    assert a.lease_seconds == 10.0
    beat = await store.heartbeat(a.id, a.lease_token, lease_seconds=None, now=T0 + 8)
    assert beat.lease_expires_at == T0 + 18
    [expired] = await store.find_expired(now=T0 + 18, limit=10)
    assert expired.id == a.id


async def test_heartbeat_with_a_stale_token_is_rejected(store: Store) -> None:
    await submit(store, plan(spec("a")))
    [a] = await lease(store, now=T0, nonce="n")
    assert a.lease_token is not None
    with pytest.raises(StaleLeaseError) as caught:
        await store.heartbeat(a.id, "other.1", lease_seconds=None, now=T0 + 1)
    assert caught.value.current_status == "processing"
    assert (await store.get_task(a.id)).lease_expires_at == a.lease_expires_at
    await store.complete(a.id, a.lease_token, result_ref=None, result=None, now=T0 + 2)
    with pytest.raises(StaleLeaseError) as caught:
        await store.heartbeat(a.id, a.lease_token, lease_seconds=None, now=T0 + 3)
    assert caught.value.current_status == "success"
    with pytest.raises(TaskNotFoundError):
        await store.heartbeat("01NOPE:a", "n.1", lease_seconds=None, now=T0)


async def test_a_due_retry_of_higher_priority_is_leased_before_a_thousand_older_ones(
    store: Store,
) -> None:
    """More due backoffs than one promotion batch (1000): the lease still takes the best
    ready task (priority first), not the best of the oldest thousand."""
    chain = [spec("c0"), *(spec(f"c{i}", f"c{i - 1}") for i in range(1, 5))]
    roots = [spec(f"r{i:04d}") for i in range(1001)]
    scenario, _ = await submit(store, plan(*chain, *roots))
    await run_to_success(store, scenario.id, ["c0", "c1", "c2", "c3"], now=T0 + 1)
    for i in range(1001):
        task = await lease_named(store, scenario.id, f"r{i:04d}", now=T0 + 1)
        await store.fail(task.id, task.lease_token, attempt=1, error="x", retry_at=T0 + 10,
                         now=T0 + 1)  # fmt: skip
    deep = await lease_named(store, scenario.id, "c4", now=T0 + 1)
    await store.fail(deep.id, deep.lease_token, attempt=1, error="x", retry_at=T0 + 20, now=T0 + 1)
    [first] = await lease(store, now=T0 + 30, max_tasks=1)
    assert first.name == "c4"
