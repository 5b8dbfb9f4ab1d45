"""Conformance: hand_back, the undo of a lease whose caller is gone (a long-poll whose
connection closed before the answer went out). The task is queued again as if the lease
had never happened: same place in the queue, attempt not used."""

from __future__ import annotations

from scenarist.core.model import ScenarioStatus, TaskStatus
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease, plan, spec, submit


async def test_hand_back_requeues_with_the_attempt_restored(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")), now=T0)
    before = await store.get_task(f"{scenario.id}:a")
    [a] = await lease(store, now=T0 + 1, nonce="n1", worker_id="w-1")
    back = await store.hand_back(a.id, "n1.1", now=T0 + 2)
    assert back is not None
    assert back == await store.get_task(a.id)
    assert back.status is TaskStatus.QUEUED
    assert back.attempt == 0
    assert (back.lease_token, back.lease_expires_at, back.worker_id) == (None, None, None)
    assert back.started_at is None  # attempt 0: the task never started
    assert back.queued_at == before.queued_at
    events = await store.read_events(scenario.id, after=None, limit=100)
    task_events = [(e.task, e.status, e.attempt) for e in events if e.task is not None]
    assert task_events[-2:] == [("a", "processing", 1), ("a", "queued", 0)]
    running = await store.get_scenario(scenario.id)
    assert running.progress.by_status[TaskStatus.QUEUED] == 1
    assert running.progress.by_status.get(TaskStatus.PROCESSING, 0) == 0
    [stats] = [s for s in await store.queue_stats(now=T0 + 3) if s.service == "svc"]
    assert (stats.ready, stats.in_flight) == (1, 0)
    [again] = await lease(store, now=T0 + 3, nonce="n2")
    assert (again.id, again.attempt, again.lease_token) == (a.id, 1, "n2.1")


async def test_a_handed_back_task_keeps_its_place_in_the_queue(store: Store) -> None:
    first, _ = await submit(store, plan(spec("x")), now=T0)
    second, _ = await submit(store, plan(spec("x")), now=T0 + 1)
    [taken] = await lease(store, now=T0 + 2, nonce="n1", max_tasks=1)
    assert taken.scenario_id == first.id
    await store.hand_back(taken.id, "n1.1", now=T0 + 3)
    order = [t.scenario_id for t in await lease(store, now=T0 + 4, max_tasks=2)]
    assert order == [first.id, second.id]


async def test_hand_back_after_a_retry_keeps_the_earlier_attempts(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a")), now=T0)
    [a] = await lease(store, now=T0 + 1, nonce="n1")
    await store.fail(a.id, a.lease_token, attempt=1, error="boom", retry_at=T0 + 5, now=T0 + 2)
    [again] = await lease(store, now=T0 + 6, nonce="n2")
    back = await store.hand_back(again.id, "n2.2", now=T0 + 7)
    assert back is not None
    assert (back.status, back.attempt, back.error) == (TaskStatus.QUEUED, 1, "boom")
    assert (back.lease_token, back.available_at) == (None, None)
    # The earlier attempt's start time was replaced by the handed-back lease's and is not
    # kept anywhere: started_at stays the latest lease's (None only back at attempt 0).
    assert back.started_at == T0 + 6
    [third] = await lease(store, now=T0 + 8, nonce="n3")
    assert (third.attempt, third.lease_token) == (2, "n3.2")
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.RUNNING


async def test_hand_back_with_a_stale_token_or_after_completion_changes_nothing(
    store: Store,
) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b")), now=T0)
    a, b = await lease(store, now=T0 + 1, nonce="n1", max_tasks=2)
    events_before = await store.read_events(scenario.id, after=None, limit=100)
    assert await store.hand_back(a.id, "n0.1", now=T0 + 2) is None
    assert await store.get_task(a.id) == a
    await store.complete(b.id, b.lease_token, result_ref="r", result=None, now=T0 + 2)
    done = await store.get_task(b.id)
    events_done = await store.read_events(scenario.id, after=None, limit=100)
    assert len(events_done) > len(events_before)
    assert await store.hand_back(b.id, "n1.1", now=T0 + 3) is None
    assert await store.get_task(b.id) == done
    assert await store.read_events(scenario.id, after=None, limit=100) == events_done
    assert await store.hand_back(f"{scenario.id}:nope", "n1.1", now=T0 + 3) is None
