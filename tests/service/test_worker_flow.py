"""Orchestrator: submit, lease (long poll), complete_many, fail with retry backoff."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from scenarist.core.errors import ParamError, StaleLeaseError, TaskNotFoundError
from scenarist.core.model import Completion, ScenarioStatus, TaskStatus
from scenarist.service.orchestrator import CompletionItem, Orchestrator
from scenarist.service.policy import RetryPolicy
from tests.service.conftest import FakeClock, RecordingObserver


def test_retry_delay_doubles_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=10.0, jitter=0.5)
    rng = random.Random(3)
    for attempt, raw in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)):
        for _ in range(50):
            delay = policy.delay(attempt, rng)
            assert raw * 0.5 <= delay <= raw
    assert RetryPolicy(jitter=0.0).delay(1, rng) == 2.0


async def test_submit_is_idempotent_per_key(
    orchestrator: Orchestrator, observer: RecordingObserver
) -> None:
    first = await orchestrator.submit("Diamond", {}, idempotency_key="k")
    again = await orchestrator.submit("Diamond", {}, idempotency_key="k")
    assert first.created
    assert not again.created
    assert again.scenario.id == first.scenario.id
    assert [t.id for t in again.tasks] == [t.id for t in first.tasks]
    assert observer.calls == [("submitted", first.scenario.id)]


async def test_lease_validates_its_bounds(orchestrator: Orchestrator) -> None:
    with pytest.raises(ParamError) as caught:
        await orchestrator.lease("svc", max_tasks=0)
    assert caught.value.field == "max_tasks"
    with pytest.raises(ParamError) as caught:
        await orchestrator.lease("svc", lease_seconds=0.1)
    assert caught.value.field == "lease_seconds"


async def test_long_poll_lease_wakes_when_a_dependency_completes(
    orchestrator: Orchestrator,
) -> None:
    submitted = await orchestrator.submit("Chain", {})
    [a] = await orchestrator.lease("svc")
    waiting = asyncio.create_task(orchestrator.lease("svc", wait_seconds=5.0))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    started = time.monotonic()
    await orchestrator.complete(a.id, a.lease_token, result_ref="r:a")
    [b] = await asyncio.wait_for(waiting, 5.0)
    assert time.monotonic() - started < 0.5  # woken, not found by the 1 s re-check
    assert (b.id, b.inputs[0]["result_ref"]) == (f"{submitted.scenario.id}:b", "r:a")


async def test_long_poll_lease_returns_empty_after_its_wait(orchestrator: Orchestrator) -> None:
    started = time.monotonic()
    assert await orchestrator.lease("svc", wait_seconds=0.3) == []
    assert 0.25 <= time.monotonic() - started < 2.0


async def test_complete_many_reports_each_item(
    orchestrator: Orchestrator, observer: RecordingObserver
) -> None:
    submitted = await orchestrator.submit("Diamond", {})
    [a] = await orchestrator.lease("svc")
    assert a.lease_token is not None
    outcomes = await orchestrator.complete_many(
        [
            CompletionItem(a.id, a.lease_token, "r:a", {"size": 3}),
            CompletionItem(a.id, "stale.1", "r:x"),
            CompletionItem("01NOPE:a", "n.1", None),
            CompletionItem(a.id, a.lease_token, "r:a"),
        ]
    )
    done, stale, missing, duplicate = outcomes
    assert isinstance(done, Completion)
    assert not done.duplicate
    assert sorted(done.released) == [f"{submitted.scenario.id}:b", f"{submitted.scenario.id}:c"]
    assert isinstance(stale, StaleLeaseError)
    assert isinstance(missing, TaskNotFoundError)
    assert isinstance(duplicate, Completion)
    assert duplicate.duplicate
    assert observer.calls.count(("completed", "a")) == 1
    with pytest.raises(ParamError):
        await orchestrator.complete_many([])


async def test_fail_retries_with_backoff_then_fails_for_good(
    orchestrator: Orchestrator, clock: FakeClock, observer: RecordingObserver
) -> None:
    submitted = await orchestrator.submit("Chain", {})  # a: max_attempts 2
    [a] = await orchestrator.lease("svc")
    retried = await orchestrator.fail(a.id, a.lease_token, error="flaky")
    assert retried.status is TaskStatus.QUEUED
    assert retried.available_at is not None
    assert clock.now + 1.0 <= retried.available_at <= clock.now + 2.0
    assert await orchestrator.lease("svc") == []
    clock.now = retried.available_at
    [again] = await orchestrator.lease("svc")
    assert again.attempt == 2
    failed = await orchestrator.fail(again.id, again.lease_token, error="still flaky")
    assert failed.status is TaskStatus.FAILED
    tasks = {t.name: t.status for t in await orchestrator.list_tasks(submitted.scenario.id)}
    assert tasks == {"a": TaskStatus.FAILED, "b": TaskStatus.SKIPPED}
    scenario = await orchestrator.get_scenario(submitted.scenario.id)
    assert scenario.status is ScenarioStatus.FAILED
    assert [c for c in observer.calls if c[0] == "failed"] == [
        ("failed", ("a", False)),
        ("failed", ("a", True)),
    ]


async def test_a_non_retryable_error_fails_at_once(orchestrator: Orchestrator) -> None:
    await orchestrator.submit("Chain", {})
    [a] = await orchestrator.lease("svc")
    failed = await orchestrator.fail(a.id, a.lease_token, error="bad input", retryable=False)
    assert (failed.status, failed.attempt, failed.error) == (TaskStatus.FAILED, 1, "bad input")


async def test_fail_with_a_stale_token_changes_nothing(orchestrator: Orchestrator) -> None:
    await orchestrator.submit("Chain", {})
    [a] = await orchestrator.lease("svc")
    with pytest.raises(StaleLeaseError):
        await orchestrator.fail(a.id, "other.1", error="x")
    assert (await orchestrator.get_task(a.id)).status is TaskStatus.PROCESSING


async def test_cancel_and_retry_through_the_service(orchestrator: Orchestrator) -> None:
    submitted = await orchestrator.submit("Diamond", {})
    cancelled = await orchestrator.cancel(submitted.scenario.id)
    assert cancelled.status is ScenarioStatus.CANCELLED
    retried = await orchestrator.retry(submitted.scenario.id)
    assert retried.status is ScenarioStatus.PENDING
    page, cursor = await orchestrator.list_scenarios(limit=10)
    assert ([s.id for s in page], cursor) == ([submitted.scenario.id], None)
    with pytest.raises(ParamError):
        await orchestrator.list_scenarios(limit=0)
