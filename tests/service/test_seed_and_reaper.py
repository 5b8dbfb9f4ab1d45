"""Orchestrator: the seed's PATCH set_status paths and the lease reaper."""

from __future__ import annotations

import pytest

from scenarist.core.errors import IllegalTransitionError, TaskNotFoundError
from scenarist.core.model import TaskStatus
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.seed_status import set_status
from tests.service.conftest import FakeClock, RecordingObserver


async def test_set_status_processing_claims_a_queued_task(orchestrator: Orchestrator) -> None:
    sid = (await orchestrator.submit("Diamond", {})).scenario.id
    claimed = await set_status(orchestrator, f"{sid}:a", TaskStatus.PROCESSING, worker_id="w")
    assert (claimed.status, claimed.attempt, claimed.worker_id) == (TaskStatus.PROCESSING, 1, "w")
    assert claimed.lease_token is not None
    with pytest.raises(IllegalTransitionError) as caught:
        await set_status(orchestrator, f"{sid}:b", TaskStatus.PROCESSING)
    assert caught.value.current_status == "pending"


async def test_set_status_success_claims_and_completes_a_queued_task(
    orchestrator: Orchestrator,
) -> None:
    sid = (await orchestrator.submit("Diamond", {})).scenario.id
    done = await set_status(orchestrator, f"{sid}:a", TaskStatus.SUCCESS, result_ref="file://a")
    assert (done.status, done.result_ref, done.attempt) == (TaskStatus.SUCCESS, "file://a", 1)
    statuses = {t.name: t.status for t in await orchestrator.list_tasks(sid)}
    assert statuses["b"] is TaskStatus.QUEUED
    assert statuses["c"] is TaskStatus.QUEUED
    with pytest.raises(IllegalTransitionError) as caught:
        await set_status(orchestrator, f"{sid}:a", TaskStatus.SUCCESS)
    assert caught.value.current_status == "success"


async def test_set_status_failed_finishes_a_processing_task(orchestrator: Orchestrator) -> None:
    sid = (await orchestrator.submit("Chain", {})).scenario.id
    await set_status(orchestrator, f"{sid}:a", TaskStatus.PROCESSING)
    failed = await set_status(orchestrator, f"{sid}:a", TaskStatus.FAILED, error="disk full")
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "disk full")
    assert (await orchestrator.get_task(f"{sid}:b")).status is TaskStatus.SKIPPED


async def test_set_status_failed_retryable_requeues(orchestrator: Orchestrator) -> None:
    sid = (await orchestrator.submit("Chain", {})).scenario.id
    requeued = await set_status(
        orchestrator, f"{sid}:a", TaskStatus.FAILED, error="busy", retryable=True
    )
    assert (requeued.status, requeued.attempt) == (TaskStatus.QUEUED, 1)
    assert requeued.available_at is not None


@pytest.mark.parametrize("target", [TaskStatus.PENDING, TaskStatus.SKIPPED, TaskStatus.QUEUED])
async def test_set_status_rejects_other_targets(
    orchestrator: Orchestrator, target: TaskStatus
) -> None:
    sid = (await orchestrator.submit("Chain", {})).scenario.id
    with pytest.raises(IllegalTransitionError) as caught:
        await set_status(orchestrator, f"{sid}:a", target)
    assert (caught.value.current_status, caught.value.requested) == ("queued", target)
    with pytest.raises(TaskNotFoundError):
        await set_status(orchestrator, "01NOPE:a", TaskStatus.SUCCESS)


async def test_reaper_requeues_an_expired_lease(
    orchestrator: Orchestrator, clock: FakeClock, observer: RecordingObserver
) -> None:
    await orchestrator.submit("Chain", {})
    [a] = await orchestrator.lease("svc", lease_seconds=10)
    clock.now += 9
    assert await orchestrator.reap_expired() == 0
    clock.now += 1
    assert await orchestrator.reap_expired() == 1
    reaped = await orchestrator.get_task(a.id)
    assert (reaped.status, reaped.error, reaped.attempt) == (TaskStatus.QUEUED, "lease expired", 1)
    assert reaped.available_at is not None
    assert reaped.available_at > clock.now
    assert ("expired", 1) in observer.calls


async def test_reaper_fails_the_last_attempt_for_good(
    orchestrator: Orchestrator, clock: FakeClock, observer: RecordingObserver
) -> None:
    sid = (await orchestrator.submit("Once", {})).scenario.id
    await orchestrator.lease("svc", lease_seconds=5)
    clock.now += 6
    assert await orchestrator.reap_expired() == 1
    statuses = {t.name: t.status for t in await orchestrator.list_tasks(sid)}
    assert statuses == {"a": TaskStatus.FAILED, "b": TaskStatus.SKIPPED}
    assert ("failed", ("a", True)) in observer.calls


async def test_a_heartbeat_keeps_the_reaper_away(
    orchestrator: Orchestrator, clock: FakeClock
) -> None:
    await orchestrator.submit("Chain", {})
    [a] = await orchestrator.lease("svc", lease_seconds=10)
    assert a.lease_token is not None
    clock.now += 8
    await orchestrator.heartbeat(a.id, a.lease_token, lease_seconds=10)
    clock.now += 8
    assert await orchestrator.reap_expired() == 0
    assert (await orchestrator.get_task(a.id)).status is TaskStatus.PROCESSING
