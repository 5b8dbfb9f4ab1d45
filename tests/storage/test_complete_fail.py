"""Conformance: complete, fail, find_expired and expire_lease."""

from __future__ import annotations

import pytest

from scenarist.core.errors import IllegalTransitionError, StaleLeaseError, TaskNotFoundError
from scenarist.core.model import ScenarioStatus, Task, TaskStatus
from scenarist.storage.base import Store
from tests.storage.plans import (
    T0,
    diamond,
    lease,
    lease_named,
    plan,
    spec,
    statuses,
    submit,
    task_events,
)


def token(task: Task) -> str:
    assert task.lease_token is not None
    return task.lease_token


async def test_complete_releases_a_dependent_once_all_parents_succeed(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    done = await store.complete(a.id, token(a), result_ref="r:a", result={"k": 1}, now=T0 + 2)
    assert not done.duplicate
    assert sorted(done.released) == [f"{sid}:b", f"{sid}:c"]
    assert done.task.status is TaskStatus.SUCCESS
    assert (done.task.result_ref, done.task.result, done.task.finished_at) == (
        "r:a", {"k": 1}, T0 + 2,
    )  # fmt: skip
    assert await store.get_task(a.id) == done.task
    b, c = await lease(store, now=T0 + 3)
    first = await store.complete(b.id, token(b), result_ref=None, result=None, now=T0 + 4)
    assert first.released == ()
    assert (await statuses(store, sid))["d"] == "pending"
    second = await store.complete(c.id, token(c), result_ref=None, result=None, now=T0 + 5)
    assert second.released == (f"{sid}:d",)
    d = await store.get_task(f"{sid}:d")
    assert (d.status, d.queued_at) == (TaskStatus.QUEUED, T0 + 5)
    assert [e for e in await task_events(store, sid) if e[0] == "d"] == [("d", "queued", 0)]


async def test_duplicate_completion_with_the_same_token_changes_nothing(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    first = await store.complete(a.id, token(a), result_ref="one", result=None, now=T0 + 2)
    events = await store.read_events(scenario.id, after=None, limit=1000)
    again = await store.complete(a.id, token(a), result_ref="two", result={"x": 1}, now=T0 + 3)
    assert again.duplicate
    assert again.released == ()
    assert again.task == first.task
    assert await store.get_task(a.id) == first.task
    assert await store.read_events(scenario.id, after=None, limit=1000) == events
    assert (await statuses(store, scenario.id))["b"] == "queued"


async def test_a_stale_token_cannot_complete_after_a_re_lease(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a")))
    old = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.fail(old.id, token(old), attempt=1, error="x", retry_at=T0 + 1, now=T0 + 1)
    [new] = await lease(store, now=T0 + 2)
    assert token(new) != token(old)
    with pytest.raises(StaleLeaseError) as caught:
        await store.complete(old.id, token(old), result_ref=None, result=None, now=T0 + 3)
    assert caught.value.current_status == "processing"
    assert (await store.get_task(new.id)).status is TaskStatus.PROCESSING
    done = await store.complete(new.id, token(new), result_ref=None, result=None, now=T0 + 4)
    assert done.task.status is TaskStatus.SUCCESS
    with pytest.raises(StaleLeaseError):
        await store.complete(old.id, token(old), result_ref=None, result=None, now=T0 + 5)


async def test_wrong_token_or_state_is_rejected(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    sid = scenario.id
    with pytest.raises(StaleLeaseError) as caught:
        await store.complete(f"{sid}:a", "n.1", result_ref=None, result=None, now=T0)
    assert caught.value.current_status == "queued"
    with pytest.raises(IllegalTransitionError) as illegal:
        await store.complete(f"{sid}:b", None, result_ref=None, result=None, now=T0)
    assert illegal.value.current_status == "pending"
    a = await lease_named(store, sid, "a", now=T0 + 1)
    with pytest.raises(StaleLeaseError):
        await store.complete(a.id, token(a) + "x", result_ref=None, result=None, now=T0 + 1)
    assert await store.get_task(a.id) == a
    with pytest.raises(TaskNotFoundError):
        await store.complete("01NOPE:a", "n.1", result_ref=None, result=None, now=T0)


async def test_seed_completion_without_token_accepts_any_lease(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    done = await store.complete(a.id, None, result_ref="seed", result=None, now=T0 + 2)
    assert (done.task.status, done.task.result_ref, done.duplicate) == (
        TaskStatus.SUCCESS, "seed", False,
    )  # fmt: skip
    assert done.released == (f"{scenario.id}:b",)
    with pytest.raises(IllegalTransitionError) as caught:
        await store.complete(a.id, None, result_ref="seed", result=None, now=T0 + 3)
    assert caught.value.current_status == "success"


async def test_complete_after_cancel_is_rejected(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.cancel_scenario(scenario.id, now=T0 + 2)
    with pytest.raises(StaleLeaseError) as caught:
        await store.complete(a.id, token(a), result_ref=None, result=None, now=T0 + 3)
    assert caught.value.current_status == "cancelled"
    with pytest.raises(IllegalTransitionError):
        await store.complete(a.id, None, result_ref=None, result=None, now=T0 + 3)
    assert await statuses(store, scenario.id) == {"a": "cancelled", "b": "cancelled"}


async def test_fail_with_retry_at_requeues_with_backoff(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    failed = await store.fail(
        a.id, token(a), attempt=1, error="timeout", retry_at=T0 + 9, now=T0 + 2
    )
    assert (failed.status, failed.available_at, failed.attempt, failed.error) == (
        TaskStatus.QUEUED, T0 + 9, 1, "timeout",
    )  # fmt: skip
    assert failed.lease_expires_at is None
    with pytest.raises(StaleLeaseError):
        await store.heartbeat(a.id, token(a), lease_seconds=None, now=T0 + 3)
    sc = await store.get_scenario(scenario.id)
    assert (sc.status, sc.progress.by_status[TaskStatus.QUEUED]) == (ScenarioStatus.RUNNING, 1)
    assert ("a", "queued", 1) in await task_events(store, scenario.id)


async def test_final_failure_skips_every_transitive_dependent(store: Store) -> None:
    the_plan = plan(
        spec("a"),
        spec("b", "a"),
        spec("c", "b"),
        spec("side"),
        spec("d", "c", "side"),
        spec("other", "side"),
    )
    scenario, _ = await submit(store, the_plan)
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    side = await lease_named(store, sid, "side", now=T0 + 1)
    failed = await store.fail(a.id, token(a), attempt=1, error="bad", retry_at=None, now=T0 + 2)
    assert (failed.status, failed.error, failed.finished_at) == (TaskStatus.FAILED, "bad", T0 + 2)
    assert await statuses(store, sid) == {
        "a": "failed", "b": "skipped", "c": "skipped", "d": "skipped",
        "side": "processing", "other": "pending",
    }  # fmt: skip
    assert (await store.get_scenario(sid)).status is ScenarioStatus.RUNNING
    await store.complete(side.id, token(side), result_ref=None, result=None, now=T0 + 3)
    [other] = await lease(store, now=T0 + 4)
    await store.complete(other.id, token(other), result_ref=None, result=None, now=T0 + 5)
    final = await store.get_scenario(sid)
    assert (final.status, final.finished_at) == (ScenarioStatus.FAILED, T0 + 5)
    assert final.progress.by_status[TaskStatus.SKIPPED] == 3
    assert final.progress.percent == 100.0


async def test_fail_checks_attempt_and_token(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    with pytest.raises(StaleLeaseError):
        await store.fail(a.id, token(a), attempt=2, error="x", retry_at=None, now=T0 + 2)
    with pytest.raises(StaleLeaseError):
        await store.fail(a.id, "zz.1", attempt=1, error="x", retry_at=None, now=T0 + 2)
    assert await store.get_task(a.id) == a
    with pytest.raises(IllegalTransitionError):
        await store.fail(f"{scenario.id}:b", None, attempt=0, error="x", retry_at=None, now=T0)
    failed = await store.fail(a.id, None, attempt=1, error="seed", retry_at=None, now=T0 + 3)
    assert failed.status is TaskStatus.FAILED
    with pytest.raises(StaleLeaseError):
        await store.fail(a.id, token(a), attempt=1, error="x", retry_at=None, now=T0 + 4)


async def test_find_expired_lists_lapsed_leases_oldest_first(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b"), spec("c")))
    sid = scenario.id
    await store.claim(f"{sid}:a", lease_seconds=30, worker_id=None, now=T0, nonce="n")
    await store.claim(f"{sid}:b", lease_seconds=10, worker_id=None, now=T0, nonce="n")
    await store.claim(f"{sid}:c", lease_seconds=100, worker_id=None, now=T0, nonce="n")
    assert await store.find_expired(now=T0 + 9, limit=10) == []
    assert [t.name for t in await store.find_expired(now=T0 + 30, limit=10)] == ["b", "a"]
    assert [t.name for t in await store.find_expired(now=T0 + 30, limit=1)] == ["b"]
    assert all(t.lease_token for t in await store.find_expired(now=T0 + 30, limit=10))


async def test_expire_lease_requeues_or_fails(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b"), spec("after_b", "b")))
    sid = scenario.id
    a = await store.claim(f"{sid}:a", lease_seconds=10, worker_id=None, now=T0, nonce="n")
    b = await store.claim(f"{sid}:b", lease_seconds=10, worker_id=None, now=T0, nonce="n")
    again = await store.expire_lease(a.id, token(a), retry_at=T0 + 20, now=T0 + 10)
    assert again is not None
    assert (again.status, again.available_at, again.error) == (
        TaskStatus.QUEUED, T0 + 20, "lease expired",
    )  # fmt: skip
    gone = await store.expire_lease(b.id, token(b), retry_at=None, now=T0 + 11)
    assert gone is not None
    assert (gone.status, gone.error) == (TaskStatus.FAILED, "lease expired")
    assert (await statuses(store, sid))["after_b"] == "skipped"


async def test_expire_lease_loses_the_race_to_a_heartbeat_or_completion(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b")))
    sid = scenario.id
    a = await store.claim(f"{sid}:a", lease_seconds=10, worker_id=None, now=T0, nonce="n")
    b = await store.claim(f"{sid}:b", lease_seconds=10, worker_id=None, now=T0, nonce="n")
    [expired_a, expired_b] = await store.find_expired(now=T0 + 10, limit=10)
    await store.heartbeat(a.id, token(a), lease_seconds=10, now=T0 + 10)
    await store.complete(b.id, token(b), result_ref=None, result=None, now=T0 + 10)
    assert await store.expire_lease(a.id, token(expired_a), retry_at=None, now=T0 + 10) is None
    assert await store.expire_lease(b.id, token(expired_b), retry_at=None, now=T0 + 10) is None
    assert await store.expire_lease(a.id, "other.1", retry_at=None, now=T0 + 30) is None
    assert await statuses(store, sid) == {"a": "processing", "b": "success"}
    # Not expired yet at `now`: nothing changes either.
    assert await store.expire_lease(a.id, token(a), retry_at=None, now=T0 + 15) is None
    assert (await store.get_task(a.id)).lease_expires_at == T0 + 20


async def test_a_failed_root_skips_a_diamond_join_once(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.fail(a.id, token(a), attempt=1, error="x", retry_at=None, now=T0 + 2)
    assert await statuses(store, scenario.id) == {
        "a": "failed", "b": "skipped", "c": "skipped", "d": "skipped",
    }  # fmt: skip
    assert [e for e in await task_events(store, scenario.id) if e[0] == "d"] == [
        ("d", "skipped", 0)
    ]
    final = await store.get_scenario(scenario.id)
    assert final.progress.by_status[TaskStatus.SKIPPED] == 3
    assert final.status is ScenarioStatus.FAILED
