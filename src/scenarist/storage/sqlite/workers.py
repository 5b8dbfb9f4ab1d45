"""The workers registry on SQLite: one `workers` row per worker id (core/workers.py).

A sighting is an upsert of one row; a heartbeat moves `last_seen` only. Tasks in flight
are not kept here but counted from the tasks when the registry is read (the
`tasks_in_flight` index covers processing rows), so they cannot drift from the leases."""

from __future__ import annotations

import json
import sqlite3

from scenarist.core.workers import WorkerRecord, WorkerSighting

UPSERT = """
INSERT INTO workers (worker_id, services, labels, sdk_version, poll_seconds, first_seen,
                     last_seen)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (worker_id) DO UPDATE SET
    services = excluded.services,
    labels = excluded.labels,
    sdk_version = excluded.sdk_version,
    poll_seconds = excluded.poll_seconds,
    last_seen = max(last_seen, excluded.last_seen)
"""


IN_FLIGHT = (
    "SELECT worker_id, count(*) FROM tasks "
    "WHERE status = 'processing' AND worker_id IS NOT NULL GROUP BY worker_id"
)


def record_worker(conn: sqlite3.Connection, sighting: WorkerSighting, *, now: float) -> None:
    conn.execute(
        UPSERT,
        (
            sighting.worker_id,
            json.dumps(list(sighting.services)),
            json.dumps(dict(sighting.labels), sort_keys=True),
            sighting.sdk_version,
            sighting.poll_seconds,
            now,
            now,
        ),
    )


def touch_worker(conn: sqlite3.Connection, worker_id: str, *, now: float) -> None:
    conn.execute(
        "UPDATE workers SET last_seen = max(last_seen, ?) WHERE worker_id = ?", (now, worker_id)
    )


def list_workers(
    conn: sqlite3.Connection, *, forget_before: float, count_in_flight: bool
) -> list[WorkerRecord]:
    """Forget the workers last seen before `forget_before`, then list the others by id."""
    conn.execute("DELETE FROM workers WHERE last_seen < ?", (forget_before,))
    in_flight = dict(conn.execute(IN_FLIGHT).fetchall()) if count_in_flight else {}
    return [
        WorkerRecord(
            worker_id=row["worker_id"],
            services=tuple(json.loads(row["services"])),
            labels=json.loads(row["labels"]),
            sdk_version=row["sdk_version"],
            poll_seconds=row["poll_seconds"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            in_flight=in_flight.get(row["worker_id"], 0),
        )
        for row in conn.execute("SELECT * FROM workers ORDER BY worker_id")
    ]
