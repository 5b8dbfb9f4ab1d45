"""Conformance: the workers registry (record_worker, touch_worker, list_workers).

A lease's sighting replaces services, labels and SDK version; a heartbeat moves only
`last_seen`; tasks in flight are counted from the processing tasks each worker holds;
workers not seen since `forget_before` are dropped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from scenarist.core.workers import WorkerSighting
from scenarist.storage.base import Store
from scenarist.storage.sqlite.schema import SCHEMA_VERSION
from scenarist.storage.sqlite.store import SqliteStore
from tests.storage.plans import T0, lease, plan, spec, submit
from tests.storage.test_sqlite_waiting import drop_version_8_columns

GPU = WorkerSighting(
    "gpu-1", ("image-service",), {"gpu": "a100", "model": "sdxl"}, "0.1.0", poll_seconds=20.0
)


async def test_a_sighting_is_listed_and_a_later_one_replaces_it(store: Store) -> None:
    assert await store.list_workers(forget_before=0.0) == []
    await store.record_worker(GPU, now=T0)
    [worker] = await store.list_workers(forget_before=0.0)
    assert worker.worker_id == "gpu-1"
    assert (worker.services, dict(worker.labels)) == (("image-service",), GPU.labels)
    assert (worker.sdk_version, worker.poll_seconds) == ("0.1.0", 20.0)
    assert (worker.first_seen, worker.last_seen, worker.in_flight) == (T0, T0, 0)
    reloaded = WorkerSighting("gpu-1", ("image-service", "video-service"), {"model": "flux"})
    await store.record_worker(reloaded, now=T0 + 5)
    [worker] = await store.list_workers(forget_before=0.0)
    assert worker.services == ("image-service", "video-service")
    assert dict(worker.labels) == {"model": "flux"}  # replaced, not merged
    assert worker.sdk_version is None
    assert (worker.first_seen, worker.last_seen) == (T0, T0 + 5)


async def test_a_heartbeat_moves_last_seen_only_and_never_back(store: Store) -> None:
    await store.record_worker(GPU, now=T0)
    await store.touch_worker("gpu-1", now=T0 + 30)
    await store.touch_worker("gpu-1", now=T0 + 10)  # a late one
    await store.touch_worker("nobody", now=T0 + 30)  # unknown: stays unknown
    [worker] = await store.list_workers(forget_before=0.0)
    assert (worker.worker_id, worker.last_seen) == ("gpu-1", T0 + 30)
    assert dict(worker.labels) == GPU.labels
    await store.record_worker(GPU, now=T0 + 20)  # a sighting that arrives late
    [worker] = await store.list_workers(forget_before=0.0)
    assert worker.last_seen == T0 + 30


async def test_in_flight_counts_the_processing_tasks_each_worker_holds(store: Store) -> None:
    await submit(store, plan(spec("a"), spec("b"), spec("c")), now=T0)
    await store.record_worker(WorkerSighting("w-1", ("svc",)), now=T0)
    await store.record_worker(WorkerSighting("w-2", ("svc",)), now=T0)
    await lease(store, now=T0 + 1, nonce="n1", max_tasks=2, worker_id="w-1")
    [c] = await lease(store, now=T0 + 1, nonce="n2", max_tasks=1, worker_id="w-2")
    by_id = {w.worker_id: w.in_flight for w in await store.list_workers(forget_before=0.0)}
    assert by_id == {"w-1": 2, "w-2": 1}
    uncounted = await store.list_workers(forget_before=0.0, count_in_flight=False)
    assert {w.worker_id: w.in_flight for w in uncounted} == {"w-1": 0, "w-2": 0}
    await store.complete(c.id, c.lease_token, result_ref=None, result=None, now=T0 + 2)
    by_id = {w.worker_id: w.in_flight for w in await store.list_workers(forget_before=0.0)}
    assert by_id == {"w-1": 2, "w-2": 0}


async def test_workers_not_seen_since_the_cutoff_are_forgotten(store: Store) -> None:
    await store.record_worker(WorkerSighting("old", ("svc",)), now=T0)
    await store.record_worker(WorkerSighting("new", ("svc",)), now=T0 + 100)
    listed = await store.list_workers(forget_before=T0 + 50)
    assert [w.worker_id for w in listed] == ["new"]
    assert [w.worker_id for w in await store.list_workers(forget_before=0.0)] == ["new"]
    await store.touch_worker("old", now=T0 + 200)  # forgotten means unknown
    assert [w.worker_id for w in await store.list_workers(forget_before=0.0)] == ["new"]


async def test_a_version_7_file_migrates_and_records_workers(tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    store = await SqliteStore.open(path)
    await store.close()
    with sqlite3.connect(path) as conn:  # turn the file back into a version-7 file
        drop_version_8_columns(conn)
        conn.execute("PRAGMA user_version = 7")
    reopened = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        await reopened.record_worker(GPU, now=T0)
        assert [w.worker_id for w in await reopened.list_workers(forget_before=0.0)] == ["gpu-1"]
    finally:
        await reopened.close()
