"""Conformance: usage reported with completions and failures (every backend). The sums must
equal the reported numbers across retries, failed attempts, a scenario retry, a batch and
a duplicate completion, on the task and in the store's hourly totals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scenarist.core.usage import UsageTotal, usage_hour
from scenarist.storage.base import CompletionItem, Store
from scenarist.storage.sqlite.schema import SCHEMA_VERSION
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import T0, lease_named, plan, spec, submit
from tests.storage.test_sqlite_waiting import drop_version_6_columns

HOUR = usage_hour(T0)


def totals(rows: list[UsageTotal]) -> dict[tuple[str, str, str], float]:
    return {(r.template, r.service, r.name): r.value for r in rows}


async def test_every_attempt_counts_and_a_duplicate_completion_does_not(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a", service="gpu", max_attempts=3)))
    task_id = f"{scenario.id}:a"
    first = await lease_named(store, scenario.id, "a", now=T0 + 1)
    failed = await store.fail(
        task_id,
        first.lease_token,
        attempt=1,
        error="oom",
        retry_at=T0 + 2,
        now=T0 + 2,
        usage={"gpu_seconds": 0.1, "cost_usd": 0.25},
    )
    assert failed.usage == {"gpu_seconds": 0.1, "cost_usd": 0.25}
    second = await lease_named(store, scenario.id, "a", now=T0 + 3)
    done = await store.complete(
        task_id,
        second.lease_token,
        result_ref=None,
        result=None,
        now=T0 + 4,
        usage={"gpu_seconds": 0.2, "tokens": 812},
    )
    expected = {"gpu_seconds": 0.1 + 0.2, "cost_usd": 0.25, "tokens": 812.0}
    assert done.task.usage == expected
    again = await store.complete(
        task_id, second.lease_token, result_ref=None, result=None, now=T0 + 5, usage={"tokens": 9}
    )
    assert again.duplicate
    assert (await store.get_task(task_id)).usage == expected
    assert totals(await store.usage_totals(since=None)) == {
        ("Demo", "gpu", name): value for name, value in expected.items()
    }


async def test_a_scenario_retry_keeps_what_the_failed_run_cost(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a", max_attempts=1)))
    task_id = f"{scenario.id}:a"
    leased = await lease_named(store, scenario.id, "a", now=T0 + 1)
    await store.fail(
        task_id,
        leased.lease_token,
        attempt=1,
        error="boom",
        retry_at=None,
        now=T0 + 2,
        usage={"cpu_seconds": 1.5},
    )
    await store.retry_scenario(scenario.id, now=T0 + 3)
    assert (await store.get_task(task_id)).usage == {"cpu_seconds": 1.5}
    again = await lease_named(store, scenario.id, "a", now=T0 + 4)
    await store.complete(
        task_id, again.lease_token, result_ref=None, result=None, now=T0 + 5,
        usage={"cpu_seconds": 2.0},
    )  # fmt: skip
    assert (await store.get_task(task_id)).usage == {"cpu_seconds": 3.5}


async def test_a_batch_counts_each_item_once_and_an_expiry_adds_nothing(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", service="tts"), spec("c")))
    sid = scenario.id
    a = await lease_named(store, sid, "a", now=T0 + 1)
    b = await lease_named(store, sid, "b", now=T0 + 1)
    c = await lease_named(store, sid, "c", now=T0 + 1)
    outcomes = await store.complete_many(
        [
            CompletionItem(a.id, a.lease_token, None, None, usage={"tokens": 1}),
            CompletionItem(b.id, b.lease_token, None, None, usage={"tokens": 2}),
            CompletionItem(a.id, a.lease_token, None, None, usage={"tokens": 100}),  # a repeat
        ],
        now=T0 + 2,
    )
    assert [getattr(o, "duplicate", None) for o in outcomes] == [False, False, True]
    assert c.lease_expires_at is not None
    await store.expire_lease(c.id, str(c.lease_token), retry_at=None, now=c.lease_expires_at)
    assert (await store.get_task(c.id)).usage is None
    assert totals(await store.usage_totals(since=None)) == {
        ("Demo", "svc", "tokens"): 1.0,
        ("Demo", "tts", "tokens"): 2.0,
    }


async def test_totals_are_kept_by_the_hour_they_were_reported_in(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b")))
    sid = scenario.id
    for name, now in (("a", HOUR + 10), ("b", HOUR + 3600 + 10)):
        leased = await lease_named(store, sid, name, now=now - 1)
        await store.complete(
            leased.id, leased.lease_token, result_ref=None, result=None, now=now,
            usage={"cost_usd": 0.5},
        )  # fmt: skip
    every = await store.usage_totals(since=None)
    assert [(t.hour, t.value) for t in every] == [(HOUR, 0.5), (HOUR + 3600, 0.5)]
    # `since` is rounded down to its hour: the hour it falls in is included.
    later = await store.usage_totals(since=HOUR + 3600 + 1800)
    assert later == [UsageTotal(HOUR + 3600, "Demo", "svc", "cost_usd", 0.5)]
    assert await store.usage_totals(since=HOUR + 7200) == []


async def test_a_version_4_file_is_migrated_and_counts_usage(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, plan(spec("a"), spec("b")))
        await lease_named(store, scenario.id, "a", now=T0 + 1)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:  # turn the file back into a version-4 file
        conn.execute("ALTER TABLE tasks DROP COLUMN usage")
        conn.execute("ALTER TABLE scenarios DROP COLUMN traceparent")
        conn.execute("DROP TABLE usage_totals")
        drop_version_6_columns(conn)  # version 6 came after: a version 4 file has neither
        conn.execute("PRAGMA user_version = 4")
    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        task = await reopened.get_task(f"{scenario.id}:a")
        assert task.usage is None
        done = await reopened.complete(
            task.id, task.lease_token, result_ref=None, result=None, now=T0 + 2,
            usage={"tokens": 4},
        )  # fmt: skip
        assert done.task.usage == {"tokens": 4.0}
        assert totals(await reopened.usage_totals(since=None)) == {("Demo", "svc", "tokens"): 4.0}
    finally:
        await reopened.close()
