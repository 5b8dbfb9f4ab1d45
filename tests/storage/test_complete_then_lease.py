"""Conformance: complete_then_lease is complete_many, then lease_services, in one call."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace

from scenarist.core.errors import ScenaristError, StaleLeaseError, TaskNotFoundError
from scenarist.core.model import Completion, Task, TaskStatus
from scenarist.storage.base import CompletionItem, Store
from tests.storage.plans import T0, diamond, lease, lease_named, plan, spec, submit


async def round_of(
    store: Store,
    items: Sequence[CompletionItem],
    services: Sequence[str] = ("svc",),
    *,
    now: float,
    max_tasks: int = 10,
) -> tuple[list[Completion | ScenaristError], list[Task]]:
    return await store.complete_then_lease(
        items,
        services,
        max_tasks=max_tasks,
        lease_seconds=None,
        worker_id="worker-2",
        now=now,
        nonce=secrets.token_hex(6),
    )


def done(task: Task, ref: str) -> CompletionItem:
    return CompletionItem(task.id, task.lease_token, ref)


async def test_the_lease_takes_the_dependents_its_completions_released(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    [outcome], leased = await round_of(store, [done(a, "r:a")], now=T0 + 2)
    assert isinstance(outcome, Completion)
    assert sorted(outcome.released) == [f"{sid}:b", f"{sid}:c"]
    assert outcome.task.status is TaskStatus.SUCCESS
    assert sorted(t.name for t in leased) == ["b", "c"]
    for task in leased:
        assert (task.status, task.attempt, task.worker_id) == (TaskStatus.PROCESSING, 1, "worker-2")
        assert task.started_at == T0 + 2
        assert [dict(i) for i in task.inputs] == [
            {"task": "a", "result_ref": "r:a", "result": None}
        ]
        assert await store.get_task(task.id) == replace(task, inputs=())


async def test_a_fan_in_released_by_the_last_item_is_leased_in_the_same_round(
    store: Store,
) -> None:
    scenario, _ = await submit(store, diamond())
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    await store.complete_many([done(a, "r:a")], now=T0 + 1)
    b, c = await lease(store, now=T0 + 2)
    outcomes, leased = await round_of(store, [done(b, "r:b"), done(c, "r:c")], now=T0 + 3)
    assert [o.released for o in outcomes if isinstance(o, Completion)] == [(), (f"{sid}:d",)]
    [d] = leased
    assert d.name == "d"
    assert [i["result_ref"] for i in d.inputs] == ["r:b", "r:c"]


async def test_bad_items_get_their_error_and_the_lease_still_runs(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("x"), spec("y"), spec("z", "x")))
    x = await lease_named(store, scenario.id, "x", now=T0 + 1)
    stale = CompletionItem(x.id, "stale.1", "r:x")
    missing = CompletionItem(f"{scenario.id}:nope", "n.1", None)
    outcomes, leased = await round_of(store, [stale, missing, done(x, "r:x")], now=T0 + 2)
    bad_token, absent, ok = outcomes
    assert isinstance(bad_token, StaleLeaseError)
    assert isinstance(absent, TaskNotFoundError)
    assert isinstance(ok, Completion)
    assert ok.released == (f"{scenario.id}:z",)
    # y was ready before the round, z became ready in it and outranks y (deeper level).
    assert [t.name for t in leased] == ["z", "y"]


async def test_a_repeated_round_reads_as_duplicates_and_leases_nothing_new(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    _, [b] = await round_of(store, [done(a, "r:a")], now=T0 + 2)
    [again], leased = await round_of(store, [done(a, "r:a")], now=T0 + 3)
    assert isinstance(again, Completion)
    assert (again.duplicate, again.released) == (True, ())
    assert leased == []
    assert (await store.get_task(b.id)).status is TaskStatus.PROCESSING


async def test_the_lease_covers_every_listed_service_and_no_other(store: Store) -> None:
    the_plan = plan(
        spec("a", service="text"),
        spec("b", "a", service="audio"),
        spec("c", "a", service="image"),
    )
    scenario, _ = await submit(store, the_plan)
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    [outcome], leased = await round_of(store, [done(a, "r:a")], ["audio", "text"], now=T0 + 2)
    assert isinstance(outcome, Completion)
    assert len(outcome.released) == 2
    assert [(t.name, t.service) for t in leased] == [("b", "audio")]


async def test_max_tasks_bounds_the_lease(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a"), spec("c", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    _, leased = await round_of(store, [done(a, "r:a")], now=T0 + 2, max_tasks=1)
    assert len(leased) == 1
    [rest] = await lease(store, now=T0 + 3)
    assert {rest.name, leased[0].name} == {"b", "c"}
