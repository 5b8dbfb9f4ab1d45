"""A fan-in whose parents all complete at the same moment is released exactly once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from scenarist.core.model import Completion, Task, TaskStatus
from scenarist.storage.base import Store
from tests.storage.plans import T0, lease, plan, spec, submit, task_events

PARENTS = 16


async def start_round(store: Store, now: float) -> tuple[str, list[Task]]:
    the_plan = plan(
        *(spec(f"p{i}", service="parts") for i in range(PARENTS)),
        spec("join", *(f"p{i}" for i in range(PARENTS)), service="joins"),
    )
    scenario, _ = await submit(store, the_plan, now=now)
    parents = await lease(store, "parts", now=now, max_tasks=PARENTS)
    assert len(parents) == PARENTS
    return scenario.id, parents


async def complete_all(store: Store, parents: list[Task], now: float) -> list[Completion]:
    return list(
        await asyncio.gather(
            *(
                store.complete(t.id, t.lease_token, result_ref=t.name, result=None, now=now)
                for t in parents
            )
        )
    )


async def assert_released_once(store: Store, scenario_id: str, released: list[str]) -> None:
    join_id = f"{scenario_id}:join"
    assert released == [join_id]
    assert (await store.get_task(join_id)).status is TaskStatus.QUEUED
    join_events = [e for e in await task_events(store, scenario_id) if e[0] == "join"]
    assert join_events == [("join", "queued", 0)]


async def test_concurrent_parent_completions_release_the_join_once(store: Store) -> None:
    for round_no in range(200):
        now = T0 + round_no
        scenario_id, parents = await start_round(store, now)
        done = await complete_all(store, parents, now)
        assert all(d.task.status is TaskStatus.SUCCESS and not d.duplicate for d in done)
        await assert_released_once(store, scenario_id, [r for d in done for r in d.released])
        leased = await lease(store, "joins", now=now, max_tasks=5)
        assert [t.id for t in leased] == [f"{scenario_id}:join"]
        assert len(leased[0].inputs) == PARENTS
        assert await lease(store, "joins", now=now, max_tasks=5) == []


def test_completions_from_several_sqlite_connections_release_once(tmp_path: Path) -> None:
    """Threads with their own event loop and their own SqliteStore on one file stand in
    for several API processes: BEGIN IMMEDIATE must serialise them."""
    from scenarist.storage.sqlite.store import SqliteStore

    path, rounds, threads = tmp_path / "shared.db", 200, 4

    async def setup() -> list[tuple[str, list[Task]]]:
        store = await SqliteStore.open(path)
        try:
            return [await start_round(store, T0 + r) for r in range(rounds)]
        finally:
            await store.close()

    plans = asyncio.run(setup())
    barrier = threading.Barrier(threads)
    released: list[list[str]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    async def worker(slot: int) -> None:
        store = await SqliteStore.open(path)
        try:
            for round_no, (_, parents) in enumerate(plans):
                mine = parents[slot::threads]
                barrier.wait(timeout=30)
                for done in await complete_all(store, mine, T0 + round_no):
                    released[round_no].extend(done.released)
        finally:
            await store.close()

    def run(slot: int) -> None:
        try:
            asyncio.run(worker(slot))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    pool = [threading.Thread(target=run, args=(slot,)) for slot in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors

    async def verify() -> None:
        store = await SqliteStore.open(path)
        try:
            for round_no, (scenario_id, _) in enumerate(plans):
                await assert_released_once(store, scenario_id, released[round_no])
            leased = await lease(store, "joins", now=T0 + rounds, max_tasks=1000)
            assert sorted(t.id for t in leased) == sorted(f"{sid}:join" for sid, _ in plans)
        finally:
            await store.close()

    asyncio.run(verify())
