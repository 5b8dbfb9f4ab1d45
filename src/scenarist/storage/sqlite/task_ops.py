"""Worker-protocol writes: lease, claim, heartbeat, complete, fail, expire.

Each function is the body of one BEGIN IMMEDIATE transaction (see store.py) and re-checks
its preconditions inside it, so racing calls from any process apply one after the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from scenarist.core.errors import IllegalTransitionError, StaleLeaseError
from scenarist.core.model import JSON, Completion, Task, TaskStatus
from scenarist.storage.sqlite.rows import row_to_task
from scenarist.storage.sqlite.transitions import (
    Changes,
    check_lease,
    fetch_task,
    move_task,
    refresh_scenarios,
    release_dependents,
    skip_dependents,
    start_lease,
    store_result,
)

LEASE_EXPIRED_ERROR = "lease expired"

# Walks the partial index tasks_ready in ready order and stops after `limit` rows.
READY_TASKS = """
SELECT * FROM tasks
WHERE service = ? AND status = 'queued' AND (available_at IS NULL OR available_at <= ?)
ORDER BY priority DESC, ready_at, id
LIMIT ?
"""


# Several services: each service's best `limit` rows (an index walk each), merged.
READY_ORDER = "ORDER BY priority DESC, ready_at, id"


def ready_rows(
    conn: sqlite3.Connection, services: Sequence[str], now: float, limit: int
) -> list[sqlite3.Row]:
    if len(services) == 1:
        return conn.execute(READY_TASKS, (services[0], now, limit)).fetchall()
    part = f"SELECT * FROM ({READY_TASKS})"
    query = " UNION ALL ".join([part] * len(services)) + f" {READY_ORDER} LIMIT ?"
    params = [value for service in services for value in (service, now, limit)]
    return conn.execute(query, [*params, limit]).fetchall()


def lease(
    conn: sqlite3.Connection,
    changes: Changes,
    services: Sequence[str],
    *,
    max_tasks: int,
    lease_seconds: float | None,
    worker_id: str | None,
    now: float,
    nonce: str,
) -> list[Task]:
    rows = ready_rows(conn, list(dict.fromkeys(services)), now, max_tasks)
    leased = [
        start_lease(
            conn,
            changes,
            row,
            lease_seconds=lease_seconds,
            worker_id=worker_id,
            now=now,
            nonce=nonce,
        )
        for row in rows
    ]
    refresh_scenarios(conn, changes, now)
    return leased


def claim(
    conn: sqlite3.Connection,
    changes: Changes,
    task_id: str,
    *,
    lease_seconds: float | None,
    worker_id: str | None,
    now: float,
    nonce: str,
) -> Task:
    row = fetch_task(conn, task_id)
    if row["status"] != TaskStatus.QUEUED:
        raise IllegalTransitionError(task_id, row["status"], TaskStatus.PROCESSING)
    task = start_lease(
        conn, changes, row, lease_seconds=lease_seconds, worker_id=worker_id, now=now, nonce=nonce
    )
    refresh_scenarios(conn, changes, now)
    return task


def heartbeat(
    conn: sqlite3.Connection,
    task_id: str,
    lease_token: str,
    *,
    lease_seconds: float | None,
    now: float,
) -> Task:
    row = fetch_task(conn, task_id)
    if row["status"] != TaskStatus.PROCESSING or row["lease_token"] != lease_token:
        raise StaleLeaseError(task_id, row["status"])
    seconds = lease_seconds if lease_seconds is not None else row["timeout_seconds"]
    conn.execute("UPDATE tasks SET lease_expires_at = ? WHERE id = ?", (now + seconds, task_id))
    return row_to_task(fetch_task(conn, task_id))


def complete(
    conn: sqlite3.Connection,
    changes: Changes,
    task_id: str,
    lease_token: str | None,
    *,
    result_ref: str | None,
    result: Mapping[str, JSON] | None,
    now: float,
) -> Completion:
    row = fetch_task(conn, task_id)
    if (
        lease_token is not None
        and row["status"] == TaskStatus.SUCCESS
        and row["lease_token"] == lease_token
    ):
        return Completion(task=row_to_task(row), duplicate=True)
    check_lease(row, lease_token, TaskStatus.SUCCESS)
    move_task(
        conn,
        changes,
        row,
        TaskStatus.SUCCESS,
        now=now,
        finished_at=now,
        lease_expires_at=None,
        result_ref=result_ref,
        result=store_result(result),
    )
    released = release_dependents(conn, changes, row, now)
    refresh_scenarios(conn, changes, now)
    return Completion(task=row_to_task(fetch_task(conn, task_id)), released=tuple(released))


def fail(
    conn: sqlite3.Connection,
    changes: Changes,
    task_id: str,
    lease_token: str | None,
    *,
    attempt: int,
    error: str,
    retry_at: float | None,
    now: float,
) -> Task:
    row = fetch_task(conn, task_id)
    check_lease(row, lease_token, TaskStatus.FAILED)
    if row["attempt"] != attempt:
        raise StaleLeaseError(task_id, row["status"])
    end_attempt(conn, changes, row, error=error, retry_at=retry_at, now=now)
    return row_to_task(fetch_task(conn, task_id))


def find_expired(conn: sqlite3.Connection, *, now: float, limit: int) -> list[Task]:
    rows = conn.execute(
        "SELECT * FROM tasks WHERE status = 'processing' AND lease_expires_at <= ? "
        "ORDER BY lease_expires_at, id LIMIT ?",
        (now, limit),
    ).fetchall()
    return [row_to_task(row) for row in rows]


def expire_lease(
    conn: sqlite3.Connection,
    changes: Changes,
    task_id: str,
    lease_token: str,
    *,
    retry_at: float | None,
    now: float,
) -> Task | None:
    """None when the task is gone, re-leased, finished, or its lease was extended."""
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if (
        row is None
        or row["status"] != TaskStatus.PROCESSING
        or row["lease_token"] != lease_token
        or row["lease_expires_at"] > now
    ):
        return None
    end_attempt(conn, changes, row, error=LEASE_EXPIRED_ERROR, retry_at=retry_at, now=now)
    return row_to_task(fetch_task(conn, task_id))


def end_attempt(
    conn: sqlite3.Connection,
    changes: Changes,
    row: sqlite3.Row,
    *,
    error: str,
    retry_at: float | None,
    now: float,
) -> None:
    """A failed attempt: back to the queue after the backoff, or failed for good with
    everything downstream skipped."""
    if retry_at is not None:
        move_task(
            conn,
            changes,
            row,
            TaskStatus.QUEUED,
            now=now,
            available_at=retry_at,
            queued_at=now,
            lease_token=None,
            lease_expires_at=None,
            worker_id=None,
            error=error,
        )
    else:
        move_task(
            conn,
            changes,
            row,
            TaskStatus.FAILED,
            now=now,
            finished_at=now,
            lease_expires_at=None,
            error=error,
        )
        skip_dependents(conn, changes, row, now)
    refresh_scenarios(conn, changes, now)


def hand_back(
    conn: sqlite3.Connection, changes: Changes, task_id: str, lease_token: str, *, now: float
) -> Task | None:
    """Undo the lease `lease_token` (see Store.hand_back); None when it is not current."""
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None or row["status"] != TaskStatus.PROCESSING or row["lease_token"] != lease_token:
        return None
    attempt = row["attempt"] - 1
    move_task(
        conn,
        changes,
        row,
        TaskStatus.QUEUED,
        now=now,
        attempt=attempt,
        lease_token=None,
        lease_expires_at=None,
        worker_id=None,
        available_at=None,
        started_at=row["started_at"] if attempt > 0 else None,
    )
    refresh_scenarios(conn, changes, now)
    return row_to_task(fetch_task(conn, task_id))
