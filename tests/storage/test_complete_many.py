"""Conformance: complete_many gives every item the outcome `complete` would give at its turn."""

from __future__ import annotations

from scenarist.core.errors import IllegalTransitionError, StaleLeaseError, TaskNotFoundError
from scenarist.core.model import Completion, ScenarioStatus, Task, TaskStatus
from scenarist.storage.base import CompletionItem, Store
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


def item(task: Task, *, token: str | None = "", ref: str | None = None) -> CompletionItem:
    """Completes `task` under its own lease token unless another `token` is given."""
    return CompletionItem(task.id, task.lease_token if token == "" else token, ref)


def completed(outcome: object) -> Completion:
    assert isinstance(outcome, Completion), outcome
    return outcome


async def test_items_complete_in_order_and_release_a_fan_in_once(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    [first] = await store.complete_many(
        [CompletionItem(a.id, a.lease_token, "r:a", {"k": 1})], now=T0 + 2
    )
    done = completed(first)
    assert sorted(done.released) == [f"{sid}:b", f"{sid}:c"]
    assert (done.task.status, done.task.result, done.task.finished_at) == (
        TaskStatus.SUCCESS, {"k": 1}, T0 + 2,
    )  # fmt: skip
    assert await store.get_task(a.id) == done.task
    b, c = await lease(store, now=T0 + 3)
    outcomes = await store.complete_many([item(b), item(c)], now=T0 + 4)
    assert [completed(o).released for o in outcomes] == [(), (f"{sid}:d",)]
    assert [completed(o).task for o in outcomes] == [
        await store.get_task(b.id),
        await store.get_task(c.id),
    ]
    assert (await statuses(store, sid))["d"] == "queued"


async def test_a_repeated_item_in_one_batch_is_a_duplicate(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    first, again = await store.complete_many([item(a, ref="one"), item(a, ref="two")], now=T0 + 2)
    assert not completed(first).duplicate
    assert completed(first).released == (f"{scenario.id}:b",)
    assert completed(again).duplicate
    assert completed(again).released == ()
    assert completed(again).task == completed(first).task == await store.get_task(a.id)
    assert completed(first).task.result_ref == "one"
    assert [e for e in await task_events(store, scenario.id) if e[0] == "a"] == [
        ("a", "processing", 1), ("a", "success", 1),
    ]  # fmt: skip


async def test_a_bad_item_fails_alone(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b"), spec("c", "a")))
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    b = await lease_named(store, sid, "b", now=T0 + 1)
    outcomes = await store.complete_many(
        [
            item(a, token="wrong.1"),
            CompletionItem("malformed-id", "n.1", None),
            CompletionItem(f"{sid}:nope", "n.1", None),
            CompletionItem("01NOPE:a", "n.1", None),
            item(b),
            CompletionItem(f"{sid}:c", None, None),
            item(a),
        ],
        now=T0 + 2,
    )
    stale, malformed, no_task, no_scenario, done_b, illegal, done_a = outcomes
    assert isinstance(stale, StaleLeaseError)
    assert stale.current_status == "processing"
    for missing in (malformed, no_task, no_scenario):
        assert isinstance(missing, TaskNotFoundError)
    assert completed(done_b).task.status is TaskStatus.SUCCESS
    assert isinstance(illegal, IllegalTransitionError)
    assert illegal.current_status == "pending"
    assert completed(done_a).released == (f"{sid}:c",)
    assert await statuses(store, sid) == {"a": "success", "b": "success", "c": "queued"}


async def test_a_token_that_lost_its_lease_is_stale_in_a_batch(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a")))
    old = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.fail(old.id, old.lease_token, attempt=1, error="x", retry_at=T0 + 1, now=T0 + 1)
    [new] = await lease(store, now=T0 + 2)
    stale, done, late = await store.complete_many([item(old), item(new), item(old)], now=T0 + 3)
    assert isinstance(stale, StaleLeaseError)
    assert stale.current_status == "processing"
    assert completed(done).task.attempt == 2
    assert isinstance(late, StaleLeaseError)
    assert late.current_status == "success"


async def test_a_batch_leaves_the_same_history_as_one_completion_at_a_time(store: Store) -> None:
    """Scenarios spread over shards, finished inside the batch: same statuses, counters
    and events as completing the same tasks one call at a time."""
    shape = plan(spec("a"), spec("b"), spec("c", "a", "b"))
    one_by_one = [(await submit(store, shape))[0].id for _ in range(4)]
    batched = [(await submit(store, shape))[0].id for _ in range(4)]
    for index, group in enumerate((one_by_one, batched)):
        now = T0 + 10 * index
        for name in ("a", "b", "c"):
            leased = [await lease_named(store, sid, name, now=now + 1) for sid in group]
            if group is one_by_one:
                for task in leased:
                    await store.complete(
                        task.id, task.lease_token, result_ref=None, result=None, now=now + 2
                    )
            else:
                outcomes = await store.complete_many([item(t) for t in leased], now=now + 2)
                assert all(isinstance(o, Completion) for o in outcomes)
    for sequential, together in zip(one_by_one, batched, strict=True):
        left, right = await store.get_scenario(sequential), await store.get_scenario(together)
        assert (left.status, right.status) == (ScenarioStatus.SUCCESS, ScenarioStatus.SUCCESS)
        assert left.progress == right.progress
        assert await task_events(store, sequential) == await task_events(store, together)
        assert await scenario_events(store, sequential) == await scenario_events(store, together)
        assert (await scenario_events(store, together))[-2:] == ["running", "success"]


async def scenario_events(store: Store, scenario_id: str) -> list[str]:
    events = await store.read_events(scenario_id, after=None, limit=100)
    return [e.status for e in events if e.task is None]


async def test_results_and_refs_are_stored_verbatim(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b")))
    a = await lease_named(store, scenario.id, "a", now=T0 + 1)
    b = await lease_named(store, scenario.id, "b", now=T0 + 1)
    result = {"text": 'ünïcødé "quoted" \\ \n', "exact": 2**53 + 1, "ratio": 0.1, "none": None}
    ref = 's3://bucket/"odd" key\n'
    done_a, done_b = await store.complete_many(
        [CompletionItem(a.id, a.lease_token, ref, result), CompletionItem(b.id, b.lease_token, "")],
        now=T0 + 2,
    )
    assert (completed(done_a).task.result, completed(done_a).task.result_ref) == (result, ref)
    stored = await store.get_task(a.id)
    assert (stored.result, stored.result_ref) == (result, ref)
    assert (completed(done_b).task.result, completed(done_b).task.result_ref) == (None, "")
