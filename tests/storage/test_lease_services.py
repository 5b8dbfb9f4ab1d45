"""Conformance: `lease_services`, one lease over several services' queues."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from scenarist.core.model import ScenarioStatus, Task, TaskStatus
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease, plan, spec, submit


async def lease_services(
    store: Store,
    services: Sequence[str],
    *,
    now: float,
    max_tasks: int = 100,
    nonce: str | None = None,
) -> list[Task]:
    return await store.lease_services(
        services,
        max_tasks=max_tasks,
        lease_seconds=None,
        worker_id="worker-1",
        now=now,
        nonce=nonce or secrets.token_hex(6),
    )


async def submit_mixed(store: Store) -> list[str]:
    """Tasks of services a, b (and c, not leased) at several priorities and ages; returns
    the a/b tasks' ids in the contract's order (priority, then age, then id)."""
    deep_b, _ = await submit(store, plan(spec("x", service="b", level=5)), now=T0 + 4)
    deep_a, _ = await submit(store, plan(spec("x", service="a", level=4)), now=T0 + 2)
    mid_a, _ = await submit(store, plan(spec("x", service="a", level=2)), now=T0 + 3)
    mid_b, _ = await submit(store, plan(spec("x", service="b", level=2)), now=T0 + 1)
    pair, _ = await submit(
        store,
        plan(spec("y", service="b", level=0), spec("z", service="a", level=0)),
        now=T0,
    )
    await submit(store, plan(spec("x", service="c", level=4)), now=T0)
    return [
        f"{deep_a.id}:x",
        f"{deep_b.id}:x",
        f"{mid_b.id}:x",
        f"{mid_a.id}:x",
        *sorted([f"{pair.id}:y", f"{pair.id}:z"]),
    ]


async def test_order_is_priority_then_age_then_id_across_services(store: Store) -> None:
    expected = await submit_mixed(store)
    leased = await lease_services(store, ["a", "b"], now=T0 + 10)
    assert [t.id for t in leased] == expected
    assert all(t.status is TaskStatus.PROCESSING for t in leased)
    assert {t.service for t in leased} == {"a", "b"}


async def test_listing_order_gives_no_precedence(store: Store) -> None:
    expected = await submit_mixed(store)
    leased = await lease_services(store, ["b", "a"], now=T0 + 10, max_tasks=3)
    assert [t.id for t in leased] == expected[:3]
    rest = await lease_services(store, ["b", "a", "b"], now=T0 + 10)
    assert [t.id for t in rest] == expected[3:]
    assert await lease_services(store, ["a", "b"], now=T0 + 10) == []
    [other] = await lease(store, "c", now=T0 + 10)  # an unlisted service kept its task
    assert other.service == "c"


async def test_marks_processing_with_tokens_and_starts_the_scenario(store: Store) -> None:
    scenario, _ = await submit(
        store, plan(spec("p", service="a", timeout=40.0), spec("q", service="b", timeout=40.0))
    )
    leased = await lease_services(store, ["a", "b"], now=T0 + 1, nonce="n1")
    assert sorted((t.name, t.lease_token, t.attempt) for t in leased) == [
        ("p", "n1.1", 1),
        ("q", "n1.1", 1),
    ]
    assert {t.lease_expires_at for t in leased} == {T0 + 41}
    assert [await store.get_task(t.id) for t in leased] == leased
    running = await store.get_scenario(scenario.id)
    assert running.status is ScenarioStatus.RUNNING
    assert running.progress.by_status[TaskStatus.PROCESSING] == 2


async def test_fills_inputs_and_respects_backoff(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("p", service="a"), spec("q", "p", service="b")))
    [p] = await lease_services(store, ["a", "b"], now=T0 + 1)
    await store.complete(p.id, p.lease_token, result_ref="ref:p", result=None, now=T0 + 2)
    [q] = await lease_services(store, ["a", "b"], now=T0 + 3, nonce="n1")
    assert q.inputs == ({"task": "p", "status": "success", "result_ref": "ref:p", "result": None},)
    await store.fail(q.id, q.lease_token, attempt=1, error="x", retry_at=T0 + 10, now=T0 + 4)
    assert await lease_services(store, ["a", "b"], now=T0 + 9) == []
    [again] = await lease_services(store, ["b", "a"], now=T0 + 10, nonce="n2")
    assert (again.id, again.lease_token) == (q.id, "n2.2")
    assert (await store.get_scenario(scenario.id)).status is ScenarioStatus.RUNNING
