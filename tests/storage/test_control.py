"""Conformance: cancel, retry, status derivation, callbacks outbox, purge, waiting."""

from __future__ import annotations

import asyncio
import time

import pytest

from scenarist.core.errors import ConflictError, ScenarioNotFoundError, StaleLeaseError
from scenarist.core.model import ScenarioStatus, Task, TaskStatus
from scenarist.storage.base import Store
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
from tests.support.waiting import wait_for_events, wait_for_ready


def token(task: Task) -> str:
    assert task.lease_token is not None
    return task.lease_token


async def test_cancel_finishes_every_unfinished_task(store: Store) -> None:
    the_plan = plan(spec("done"), spec("busy"), spec("waiting"), spec("later", "busy"))
    scenario, _ = await submit(store, the_plan)
    sid = scenario.id
    await run_to_success(store, sid, ["done"], now=T0 + 1)
    busy = await lease_named(store, sid, "busy", now=T0 + 2)
    cancelled = await store.cancel_scenario(sid, now=T0 + 3)
    assert (cancelled.status, cancelled.cancelled, cancelled.finished_at) == (
        ScenarioStatus.CANCELLED, True, T0 + 3,
    )  # fmt: skip
    assert cancelled.progress.by_status[TaskStatus.CANCELLED] == 3
    assert await statuses(store, sid) == {
        "done": "success", "busy": "cancelled", "waiting": "cancelled", "later": "cancelled",
    }  # fmt: skip
    with pytest.raises(StaleLeaseError):
        await store.heartbeat(busy.id, token(busy), lease_seconds=None, now=T0 + 4)
    assert await lease(store, now=T0 + 4) == []
    assert await store.find_expired(now=T0 + 10_000, limit=10) == []
    assert [s.ready for s in await store.queue_stats(now=T0 + 5)] == [0]
    again = await store.cancel_scenario(sid, now=T0 + 9)
    assert again == cancelled


async def test_cancel_of_a_finished_scenario_is_a_conflict(store: Store) -> None:
    ok, _ = await submit(store, plan(spec("a")))
    await run_to_success(store, ok.id, ["a"], now=T0 + 1)
    bad, _ = await submit(store, plan(spec("a", max_attempts=1)))
    a = await lease_named(store, bad.id, "a", now=T0 + 1)
    await store.fail(a.id, token(a), attempt=1, error="x", retry_at=None, now=T0 + 2)
    for sid, current in ((ok.id, "success"), (bad.id, "failed")):
        with pytest.raises(ConflictError) as caught:
            await store.cancel_scenario(sid, now=T0 + 3)
        assert caught.value.current_status == current
        assert (await store.get_scenario(sid)).status.value == current
    with pytest.raises(ScenarioNotFoundError):
        await store.cancel_scenario("01NOPE", now=T0)


async def test_retry_requeues_failures_and_keeps_successes(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    sid = scenario.id
    await run_to_success(store, sid, ["a", "c"], now=T0 + 1)
    b = await lease_named(store, sid, "b", now=T0 + 2)
    await store.fail(b.id, token(b), attempt=1, error="boom", retry_at=None, now=T0 + 3)
    failed = await store.get_scenario(sid)
    assert (failed.status, failed.finished_at) == (ScenarioStatus.FAILED, T0 + 3)
    retried = await store.retry_scenario(sid, now=T0 + 4)
    assert (retried.status, retried.finished_at, retried.cancelled) == (
        ScenarioStatus.RUNNING, None, False,
    )  # fmt: skip
    tasks = {t.name: t for t in await store.list_tasks(sid)}
    assert {n: t.status.value for n, t in tasks.items()} == {
        "a": "success", "b": "queued", "c": "success", "d": "pending",
    }  # fmt: skip
    rb = tasks["b"]
    assert (rb.attempt, rb.error, rb.lease_token, rb.result_ref, rb.queued_at) == (
        0, None, None, None, T0 + 4,
    )  # fmt: skip
    assert tasks["a"].result_ref == "ref:a"
    await run_to_success(store, sid, ["b", "d"], now=T0 + 5)
    assert (await store.get_scenario(sid)).status is ScenarioStatus.SUCCESS
    d_events = [e for e in await task_events(store, sid) if e[0] == "d"]
    assert d_events == [
        ("d", "skipped", 0),
        ("d", "pending", 0),
        ("d", "queued", 0),
        ("d", "processing", 1),
        ("d", "success", 1),
    ]


async def test_retry_after_cancel_resumes_where_it_stopped(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a"), spec("c", "b")))
    sid = scenario.id
    await run_to_success(store, sid, ["a"], now=T0 + 1)
    await store.cancel_scenario(sid, now=T0 + 2)
    retried = await store.retry_scenario(sid, now=T0 + 3)
    assert (retried.status, retried.cancelled) == (ScenarioStatus.RUNNING, False)
    assert await statuses(store, sid) == {"a": "success", "b": "queued", "c": "pending"}
    await run_to_success(store, sid, ["b", "c"], now=T0 + 4)
    assert (await store.get_scenario(sid)).status is ScenarioStatus.SUCCESS


async def test_retry_with_nothing_to_retry_is_a_conflict(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a")))
    with pytest.raises(ConflictError):
        await store.retry_scenario(scenario.id, now=T0 + 1)
    await run_to_success(store, scenario.id, ["a"], now=T0 + 1)
    with pytest.raises(ConflictError) as caught:
        await store.retry_scenario(scenario.id, now=T0 + 2)
    assert caught.value.current_status == "success"
    with pytest.raises(ScenarioNotFoundError):
        await store.retry_scenario("01NOPE", now=T0)


async def test_status_and_progress_follow_every_step(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a", service="tts")))
    sid = scenario.id

    async def check(status: ScenarioStatus, **counts: int) -> None:
        sc = await store.get_scenario(sid)
        assert sc.status is status
        assert {s.value: n for s, n in sc.progress.by_status.items() if n} == counts
        assert sc.progress.total == 2
        assert sum(sum(by.values()) for by in sc.progress.by_service.values()) == 2

    await check(ScenarioStatus.PENDING, queued=1, pending=1)
    [a] = await lease(store, now=T0 + 1)
    await check(ScenarioStatus.RUNNING, processing=1, pending=1)
    await store.fail(a.id, token(a), attempt=1, error="x", retry_at=T0 + 2, now=T0 + 1)
    await check(ScenarioStatus.RUNNING, queued=1, pending=1)
    [a] = await lease(store, now=T0 + 2)
    await store.complete(a.id, token(a), result_ref=None, result=None, now=T0 + 3)
    await check(ScenarioStatus.RUNNING, success=1, queued=1)
    sc = await store.get_scenario(sid)
    assert sc.progress.by_service["tts"][TaskStatus.QUEUED] == 1
    assert sc.progress.percent == 50.0
    [b] = await lease(store, "tts", now=T0 + 4)
    await store.complete(b.id, token(b), result_ref=None, result=None, now=T0 + 5)
    await check(ScenarioStatus.SUCCESS, success=2)
    assert (await store.get_scenario(sid)).finished_at == T0 + 5


async def test_callback_outbox_delivers_once_per_claim(store: Store) -> None:
    url = "http://127.0.0.1:9/hook"
    with_cb, _ = await submit(store, plan(spec("a")), callback_url=url)
    without, _ = await submit(store, plan(spec("a")))
    assert await store.claim_due_callbacks(now=T0 + 100, limit=10, lease_seconds=30) == []
    await run_to_success(store, with_cb.id, ["a"], now=T0 + 1)
    await run_to_success(store, without.id, ["a"], now=T0 + 1)
    [due] = await store.claim_due_callbacks(now=T0 + 2, limit=10, lease_seconds=30)
    assert (due.id, due.status, due.callback_url) == (with_cb.id, ScenarioStatus.SUCCESS, url)
    assert await store.claim_due_callbacks(now=T0 + 31, limit=10, lease_seconds=30) == []
    [again] = await store.claim_due_callbacks(now=T0 + 32, limit=10, lease_seconds=30)
    assert again.id == with_cb.id
    await store.finish_callback(with_cb.id, retry_at=T0 + 500)
    assert await store.claim_due_callbacks(now=T0 + 499, limit=10, lease_seconds=30) == []
    assert len(await store.claim_due_callbacks(now=T0 + 500, limit=10, lease_seconds=30)) == 1
    await store.finish_callback(with_cb.id, retry_at=None)
    assert await store.claim_due_callbacks(now=T0 + 10**6, limit=10, lease_seconds=30) == []


async def test_a_retried_scenario_is_not_put_back_in_the_outbox_by_a_late_delivery(
    store: Store,
) -> None:
    """A delivery in flight when the scenario is retried fails and asks for another try:
    the scenario is running again, so nothing may be posted for it (`running`)."""
    scenario, _ = await submit(store, plan(spec("a")), callback_url="http://127.0.0.1:9/")
    [a] = await lease(store, now=T0 + 1)
    await store.fail(a.id, token(a), attempt=1, error="x", retry_at=None, now=T0 + 2)
    [due] = await store.claim_due_callbacks(now=T0 + 3, limit=10, lease_seconds=30)
    assert due.status is ScenarioStatus.FAILED
    await store.retry_scenario(scenario.id, now=T0 + 4)
    await store.finish_callback(scenario.id, retry_at=T0 + 5)
    assert await store.claim_due_callbacks(now=T0 + 10**6, limit=10, lease_seconds=30) == []


async def test_callback_outbox_respects_limit_and_covers_cancel(store: Store) -> None:
    ids = set()
    for _ in range(3):
        scenario, _ = await submit(store, plan(spec("a")), callback_url="http://127.0.0.1:9/")
        await store.cancel_scenario(scenario.id, now=T0 + 1)
        ids.add(scenario.id)
    first = await store.claim_due_callbacks(now=T0 + 2, limit=2, lease_seconds=60)
    second = await store.claim_due_callbacks(now=T0 + 2, limit=2, lease_seconds=60)
    assert len(first) == 2
    assert len(second) == 1
    assert {s.id for s in first + second} == ids
    assert all(s.status is ScenarioStatus.CANCELLED for s in first + second)


async def test_purge_removes_only_long_finished_scenarios(store: Store) -> None:
    old, _ = await submit(store, plan(spec("a")), now=T0)
    await run_to_success(store, old.id, ["a"], now=T0 + 1)
    running, _ = await submit(store, plan(spec("a")), now=T0)
    recent, _ = await submit(store, plan(spec("a")), now=T0)
    week = 7 * 24 * 3600.0
    await run_to_success(store, recent.id, ["a"], now=T0 + week)
    purged = await store.purge_finished(now=T0 + 1 + week + 60, limit=100)
    for kept in (running.id, recent.id):
        assert (await store.get_scenario(kept)).id == kept
    if purged == 0:
        # A native-expiry backend (Redis key TTLs, proven in tests/storage/redis) purges
        # nothing itself and must leave every scenario readable.
        assert (await store.get_scenario(old.id)).id == old.id
        return
    assert purged == 1
    with pytest.raises(ScenarioNotFoundError):
        await store.get_scenario(old.id)
    with pytest.raises(ScenarioNotFoundError):
        await store.list_tasks(old.id)
    assert await store.purge_finished(now=T0 + 1 + week + 60, limit=100) == 0


async def test_wait_for_ready_wakes_when_complete_queues_a_task(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("p", service="prep"), spec("c", "p")))
    p = await lease_named(store, scenario.id, "p", now=T0 + 1)
    waiter = asyncio.create_task(wait_for_ready(store, ["other", "svc"], 10.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await store.complete(p.id, token(p), result_ref=None, result=None, now=T0 + 2)
    await asyncio.wait_for(waiter, 5.0)
    assert time.monotonic() - started < 1.0
    assert [t.name for t in await lease(store, now=T0 + 3)] == ["c"]


async def test_wait_for_ready_times_out(store: Store) -> None:
    started = time.monotonic()
    await wait_for_ready(store, ["svc"], 0.2)
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_wait_for_events_wakes_on_a_new_event(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a")))
    waiter = asyncio.create_task(wait_for_events(store, scenario.id, 10.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await lease(store, now=T0 + 1)
    await asyncio.wait_for(waiter, 5.0)
    assert time.monotonic() - started < 1.0


async def test_a_wake_up_between_the_check_and_the_wait_is_not_lost(store: Store) -> None:
    """Watch, find nothing, a task becomes ready, then wait: the wait returns at once."""
    with await store.watch_ready(["svc"]) as ready:
        assert await lease(store, now=T0) == []
        await submit(store, plan(spec("a")))
        started = time.monotonic()
        await ready.wait(10.0)
        assert time.monotonic() - started < 0.5
    assert [t.name for t in await lease(store, now=T0 + 1)] == ["a"]
