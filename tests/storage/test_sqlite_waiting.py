"""SQLite-only: the per-task `waiting` counter that releases a fan-in, and the migration
that adds it to a version-1 database file."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from scenarist.core.model import Lane, TaskStatus
from scenarist.core.rerun import RerunRequest
from scenarist.core.tenants import TenantPolicy
from scenarist.storage.sqlite.expansion import expanded_group
from scenarist.storage.sqlite.schema import SCHEMA_VERSION
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import (
    T0,
    diamond,
    lease,
    lease_named,
    plan,
    spec,
    statuses,
    submit,
)


def waiting_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, waiting FROM tasks ORDER BY seq").fetchall()
    return dict(rows)


async def complete_named(store: SqliteStore, scenario_id: str, name: str) -> tuple[str, ...]:
    task = await lease_named(store, scenario_id, name, now=T0 + 1)
    done = await store.complete(task.id, task.lease_token, result_ref="r", result=None, now=T0 + 2)
    return done.released


async def test_waiting_counts_parents_not_yet_succeeded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, diamond())
        assert waiting_counts(path) == {"a": 0, "b": 1, "c": 1, "d": 2}
        await complete_named(store, scenario.id, "a")
        await complete_named(store, scenario.id, "b")
        assert waiting_counts(path) == {"a": 0, "b": 0, "c": 0, "d": 1}
        assert await complete_named(store, scenario.id, "c") == (f"{scenario.id}:d",)
    finally:
        await store.close()


async def test_retry_resets_waiting_to_the_parents_not_in_success(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await SqliteStore.open(path)
    parents = [spec(f"p_{i}") for i in range(4)]
    try:
        scenario, _ = await submit(store, plan(*parents, spec("join", *(p.name for p in parents))))
        for name in ("p_0", "p_1"):
            await complete_named(store, scenario.id, name)
        failing = await lease_named(store, scenario.id, "p_2", now=T0 + 1)
        await store.fail(
            failing.id, failing.lease_token, attempt=failing.attempt, error="x",
            retry_at=None, now=T0 + 2,
        )  # fmt: skip
        assert (await statuses(store, scenario.id))["join"] == TaskStatus.SKIPPED
        await store.retry_scenario(scenario.id, now=T0 + 3)
        # p_2 failed and p_3 is still queued: two parents left to succeed.
        assert waiting_counts(path)["join"] == 2
        assert await complete_named(store, scenario.id, "p_3") == ()
        assert await complete_named(store, scenario.id, "p_2") == (f"{scenario.id}:join",)
    finally:
        await store.close()


async def test_a_parent_succeeding_under_a_skipped_join_counts_after_retry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = await SqliteStore.open(path)
    try:
        join = plan(spec("p_0"), spec("p_1"), spec("join", "p_0", "p_1"))
        scenario, _ = await submit(store, join)
        failing = await lease_named(store, scenario.id, "p_0", now=T0 + 1)
        await store.fail(
            failing.id, failing.lease_token, attempt=failing.attempt, error="x",
            retry_at=None, now=T0 + 2,
        )  # fmt: skip
        assert await complete_named(store, scenario.id, "p_1") == ()  # join is skipped
        await store.retry_scenario(scenario.id, now=T0 + 3)
        assert waiting_counts(path)["join"] == 1
        assert await complete_named(store, scenario.id, "p_0") == (f"{scenario.id}:join",)
    finally:
        await store.close()


async def test_a_version_1_file_is_migrated_with_waiting_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, diamond())
        await complete_named(store, scenario.id, "a")
        await complete_named(store, scenario.id, "b")
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:  # turn the file back into a version-1 file
        conn.execute("ALTER TABLE tasks DROP COLUMN waiting")
        conn.execute("ALTER TABLE tasks DROP COLUMN lease_seconds")
        conn.execute("ALTER TABLE scenarios DROP COLUMN request_digest")
        conn.execute("ALTER TABLE tasks DROP COLUMN usage")
        conn.execute("ALTER TABLE scenarios DROP COLUMN traceparent")
        conn.execute("DROP TABLE usage_totals")
        drop_version_6_columns(conn)
        conn.execute("PRAGMA user_version = 1")

    reopened = await SqliteStore.open(path)
    try:
        assert waiting_counts(path) == {"a": 0, "b": 0, "c": 0, "d": 1}
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert await complete_named(reopened, scenario.id, "c") == (f"{scenario.id}:d",)
    finally:
        await reopened.close()


def drop_version_6_columns(conn: sqlite3.Connection) -> None:
    """Back to version 5: without joins (version 6) or groups (version 7)."""
    drop_version_7_columns(conn)
    for column in ("need", "optional", "tolerated"):
        conn.execute(f"ALTER TABLE tasks DROP COLUMN {column}")
    conn.execute("ALTER TABLE scenarios DROP COLUMN tolerated")


def drop_version_7_columns(conn: sqlite3.Connection) -> None:
    """Back to version 6: without groups (version 7) or anything newer."""
    drop_version_8_columns(conn)
    conn.execute("DROP INDEX tasks_parallel")
    for column in ("group_spec", "join_spec", "max_parallel", "parallel_group"):
        conn.execute(f"ALTER TABLE tasks DROP COLUMN {column}")


def drop_version_8_columns(conn: sqlite3.Connection) -> None:
    """Back to version 7: without the workers registry (or anything newer)."""
    drop_version_9_columns(conn)
    conn.execute("DROP TABLE workers")


def drop_version_9_columns(conn: sqlite3.Connection) -> None:
    """Back to version 8: without runs (or anything newer)."""
    drop_version_10_columns(conn)
    conn.execute("DROP TABLE task_runs")
    for column in ("run", "runs", "no_cache"):
        conn.execute(f"ALTER TABLE tasks DROP COLUMN {column}")


def drop_version_10_columns(conn: sqlite3.Connection) -> None:
    """Back to version 9: without the step cache (or lease-time gates)."""
    drop_version_11_columns(conn)
    for column in ("cache_ttl", "cache_key", "cached", "cached_from"):
        conn.execute(f"ALTER TABLE tasks DROP COLUMN {column}")
    conn.execute("DROP TABLE cache_entries")
    conn.execute("DROP TABLE cache_counts")


def drop_version_11_columns(conn: sqlite3.Connection) -> None:
    """Back to version 10: without lease-time gates (or kept groups)."""
    drop_version_12_columns(conn)
    conn.execute("DROP INDEX tasks_by_concurrency_key")
    conn.execute("DROP TABLE rate_buckets")
    for column in ("concurrency_key", "concurrency_limit"):
        conn.execute(f"ALTER TABLE tasks DROP COLUMN {column}")


def drop_version_12_columns(conn: sqlite3.Connection) -> None:
    """Back to version 11: without the expanded groups' kept rows (or lanes)."""
    drop_version_13_columns(conn)
    conn.execute("DROP TABLE expanded_groups")


def drop_version_13_columns(conn: sqlite3.Connection) -> None:
    """Back to version 12: scenarios without a priority lane (or tasks an affinity)."""
    drop_version_14_columns(conn)
    conn.execute("ALTER TABLE scenarios DROP COLUMN lane")


def drop_version_14_columns(conn: sqlite3.Connection) -> None:
    """Back to version 13: tasks without a worker affinity (or tenants)."""
    drop_version_15_columns(conn)
    conn.execute("ALTER TABLE tasks DROP COLUMN affinity")


def drop_version_15_columns(conn: sqlite3.Connection) -> None:
    """Back to version 14: scenarios and tasks without a tenant, no fair-share passes."""
    conn.execute("DROP INDEX tasks_ready_by_tenant")
    conn.execute("DROP TABLE fair_passes")
    conn.execute("ALTER TABLE tasks DROP COLUMN tenant")
    conn.execute("ALTER TABLE scenarios DROP COLUMN tenant")


async def test_a_version_8_file_migrates_and_its_tasks_are_in_their_first_run(
    tmp_path: Path,
) -> None:
    """Version 9 adds runs and their history: an older task is in its first run, with no
    history, and can be rerun."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, diamond())
        await complete_named(store, scenario.id, "a")
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_9_columns(conn)
        conn.execute("PRAGMA user_version = 8")

    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        a = await reopened.get_task(f"{scenario.id}:a")
        assert (a.run, a.runs, a.no_cache) == (1, 1, False)
        assert await reopened.task_history(a.id) == []
        request = RerunRequest(("a",), no_cache=True, history_limit=5)
        _, again = await reopened.rerun_scenario(scenario.id, request, now=T0 + 9)
        assert again == ("a", "b", "c", "d")
        history = await reopened.task_history(a.id)
        assert [(r.run, r.status) for r in history] == [(1, TaskStatus.SUCCESS)]
        rerun = await reopened.get_task(a.id)
        assert (rerun.run, rerun.runs, rerun.no_cache) == (2, 2, True)
    finally:
        await reopened.close()


async def test_a_version_10_file_migrates_and_its_tasks_have_no_concurrency_key(
    tmp_path: Path,
) -> None:
    """Version 11 adds a task's concurrency key and the services' token buckets: an older
    task has no key, and leases as before."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, diamond())
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_11_columns(conn)
        conn.execute("PRAGMA user_version = 10")

    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert conn.execute("SELECT COUNT(*) FROM rate_buckets").fetchone()[0] == 0
        tasks = await reopened.list_tasks(scenario.id)
        assert all(t.concurrency_key is None for t in tasks)
        assert await complete_named(reopened, scenario.id, "a") == (
            f"{scenario.id}:b",
            f"{scenario.id}:c",
        )
    finally:
        await reopened.close()


async def test_a_version_6_file_migrates_and_its_tasks_are_not_groups(tmp_path: Path) -> None:
    """Version 7 keeps an unexpanded group's spec and the join below it: an older
    scenario has neither, and goes on as before."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, diamond())
        await complete_named(store, scenario.id, "a")
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_7_columns(conn)
        conn.execute("PRAGMA user_version = 6")

    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tasks = await reopened.list_tasks(scenario.id)
        assert not any(t.dynamic or t.join is not None for t in tasks)
        assert (await reopened.get_scenario(scenario.id)).progress.growing is False
        assert await complete_named(reopened, scenario.id, "b") == ()
        assert await complete_named(reopened, scenario.id, "c") == (f"{scenario.id}:d",)
    finally:
        await reopened.close()


async def test_a_version_5_file_gets_joins_with_todays_rule(tmp_path: Path) -> None:
    """Version 6 adds need / optional / tolerated: an older scenario keeps `join: all`
    (a failed parent skips the fan-in) and counts no tolerated failures."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        scenario, _ = await submit(store, plan(spec("p_0"), spec("p_1"), spec("j", "p_0", "p_1")))
        await complete_named(store, scenario.id, "p_0")
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_6_columns(conn)
        conn.execute("PRAGMA user_version = 5")

    reopened = await SqliteStore.open(path)
    try:
        failing = await lease_named(reopened, scenario.id, "p_1", now=T0 + 1)
        await reopened.fail(
            failing.id, failing.lease_token, attempt=failing.attempt, error="x",
            retry_at=None, now=T0 + 2,
        )  # fmt: skip
        assert (await statuses(reopened, scenario.id))["j"] == TaskStatus.SKIPPED
        after = await reopened.get_scenario(scenario.id)
        assert (after.status.value, after.tolerated_failures) == ("failed", 0)
    finally:
        await reopened.close()


async def test_a_version_11_file_migrates_and_keeps_the_groups_it_expands(
    tmp_path: Path,
) -> None:
    """Version 12 keeps an expanded group's row (decision 63): an older file gets the
    table, and a group that expands after the migration is kept in it."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    group = dataclasses.replace(
        spec("g", "a"), for_each="{{ x }}", group_spec={"for_each": "{{ x }}"}
    )
    try:
        scenario, _ = await submit(store, plan(spec("a"), group))
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_12_columns(conn)
        conn.execute("PRAGMA user_version = 11")

    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        task = await lease_named(reopened, scenario.id, "a", now=T0 + 1)
        await reopened.complete(
            task.id, task.lease_token, result_ref=None, result=None, now=T0 + 2,
            payloads={"g": [{}]},
        )  # fmt: skip
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            kept = expanded_group(conn, scenario.id, "g")
        assert kept is not None
        assert (kept["name"], kept["status"]) == ("g", "pending")
        assert [t.name for t in await reopened.list_tasks(scenario.id)] == ["a", "g_1"]
    finally:
        await reopened.close()


async def test_a_version_12_file_migrates_into_the_normal_lane(tmp_path: Path) -> None:
    """Version 13 gives scenarios a lane (decision 77): an older file's scenarios are in
    the normal lane, and its queued tasks keep their place against a new batch scenario
    and yield to a new interactive one."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        old, _ = await submit(store, plan(spec("a")), now=T0)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_13_columns(conn)
        conn.execute("PRAGMA user_version = 12")

    reopened = await SqliteStore.open(path)
    try:
        assert (await reopened.get_scenario(old.id)).lane is Lane.NORMAL
        batch, _ = await submit(reopened, plan(spec("b")), now=T0 - 2, lane=Lane.BATCH)
        urgent, _ = await submit(reopened, plan(spec("c")), now=T0 + 1, lane=Lane.INTERACTIVE)
        leased = await lease(reopened, now=T0 + 2, max_tasks=3)
        assert [t.scenario_id for t in leased] == [urgent.id, old.id, batch.id]
        assert (await reopened.get_scenario(urgent.id)).lane is Lane.INTERACTIVE
    finally:
        await reopened.close()


async def test_a_version_13_file_migrates_and_its_tasks_go_to_any_worker(tmp_path: Path) -> None:
    """Version 14 gives tasks a worker affinity (decision 78): an older file's tasks have
    none, so a worker with or without labels leases them."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        old, _ = await submit(store, plan(spec("a"), spec("b")), now=T0)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_14_columns(conn)
        conn.execute("PRAGMA user_version = 13")

    reopened = await SqliteStore.open(path)
    try:
        assert (await reopened.get_task(f"{old.id}:a")).affinity is None
        [a] = await reopened.lease(
            "svc", max_tasks=1, lease_seconds=None, worker_id="w", now=T0 + 1, nonce="n",
            labels={"gpu": "a100"},
        )  # fmt: skip
        [b] = await lease(reopened, now=T0 + 1, max_tasks=1)
        assert {a.name, b.name} == {"a", "b"}
    finally:
        await reopened.close()


async def test_a_version_14_file_migrates_into_the_default_tenant(tmp_path: Path) -> None:
    """Version 15 gives scenarios and tasks a tenant (decision 79): an older file's are
    the default tenant's, and a lease sharing the service out by tenant still takes them."""
    path = tmp_path / "old.db"
    store = await SqliteStore.open(path)
    try:
        old, _ = await submit(store, plan(spec("a")), now=T0)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        drop_version_15_columns(conn)
        conn.execute("PRAGMA user_version = 14")

    reopened = await SqliteStore.open(path)
    try:
        assert (await reopened.get_scenario(old.id)).tenant == "default"
        assert (await reopened.get_task(f"{old.id}:a")).tenant == "default"
        [a] = await reopened.lease(
            "svc", max_tasks=1, lease_seconds=None, worker_id="w", now=T0 + 1, nonce="n",
            tenants={"studio": TenantPolicy(weight=3.0)},
        )  # fmt: skip
        assert a.name == "a"
    finally:
        await reopened.close()
