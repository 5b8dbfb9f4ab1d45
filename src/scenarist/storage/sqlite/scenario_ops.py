"""Scenario-level writes: create, cancel, retry, the callback outbox and the purge."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from scenarist.core.errors import ConflictError
from scenarist.core.model import Scenario, ScenarioStatus, Task, TaskStatus
from scenarist.storage.sqlite.reads import get_scenario
from scenarist.storage.sqlite.rows import INSERT_TASK, dumps, loads, task_to_row
from scenarist.storage.sqlite.transitions import (
    Changes,
    append_event,
    bump_count,
    fetch_scenario,
    move_task,
    refresh_scenario,
    refresh_scenarios,
)

RETRYABLE = (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED)


def create_scenario(
    conn: sqlite3.Connection, changes: Changes, scenario: Scenario, tasks: Sequence[Task]
) -> tuple[Scenario, bool]:
    if scenario.idempotency_key is not None:
        existing = conn.execute(
            "SELECT id FROM scenarios WHERE idempotency_key = ?", (scenario.idempotency_key,)
        ).fetchone()
        if existing is not None:
            return get_scenario(conn, existing["id"]), False
    conn.execute(
        "INSERT INTO scenarios (id, template, params, status, created_at, idempotency_key, "
        "callback_url, request_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            scenario.id,
            scenario.template,
            dumps(scenario.params),
            ScenarioStatus.PENDING.value,
            scenario.created_at,
            scenario.idempotency_key,
            scenario.callback_url,
            scenario.request_digest,
        ),
    )
    conn.executemany(INSERT_TASK, [task_to_row(task, seq) for seq, task in enumerate(tasks)])
    conn.executemany(
        "INSERT OR IGNORE INTO services (name) VALUES (?)", [(t.service,) for t in tasks]
    )
    for task in tasks:
        bump_count(conn, scenario.id, task.service, task.status.value, +1)
        if task.status is TaskStatus.QUEUED:
            changes.ready_services.add(task.service)
    append_event(conn, scenario.id, at=scenario.created_at, task=None, status="pending", attempt=0)
    # A scenario without tasks is final at once (success), callback included.
    refresh_scenario(conn, changes, scenario.id, scenario.created_at)
    changes.scenarios.add(scenario.id)
    return get_scenario(conn, scenario.id), True


def cancel_scenario(
    conn: sqlite3.Connection, changes: Changes, scenario_id: str, *, now: float
) -> Scenario:
    row = fetch_scenario(conn, scenario_id)
    if row["cancelled"]:
        return get_scenario(conn, scenario_id)
    if ScenarioStatus(row["status"]).is_final:
        raise ConflictError(
            f"scenario {scenario_id!r} is {row['status']}; only an unfinished scenario "
            "can be cancelled",
            current_status=row["status"],
            field="status",
        )
    unfinished = conn.execute(
        "SELECT * FROM tasks WHERE scenario_id = ? AND status IN (?, ?, ?) ORDER BY seq",
        (scenario_id, TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING),
    ).fetchall()
    for task in unfinished:
        move_task(
            conn,
            changes,
            task,
            TaskStatus.CANCELLED,
            now=now,
            finished_at=now,
            lease_expires_at=None,
        )
    conn.execute("UPDATE scenarios SET cancelled = 1 WHERE id = ?", (scenario_id,))
    changes.scenarios.add(scenario_id)
    refresh_scenarios(conn, changes, now)
    return get_scenario(conn, scenario_id)


def retry_scenario(
    conn: sqlite3.Connection, changes: Changes, scenario_id: str, *, now: float
) -> Scenario:
    row = fetch_scenario(conn, scenario_id)
    tasks = conn.execute(
        "SELECT * FROM tasks WHERE scenario_id = ? ORDER BY seq", (scenario_id,)
    ).fetchall()
    # Decided on the statuses before the retry: a retried parent is not a success.
    succeeded = {t["name"] for t in tasks if t["status"] == TaskStatus.SUCCESS}
    retried = [t for t in tasks if t["status"] in RETRYABLE]
    if not retried:
        raise ConflictError(
            f"scenario {scenario_id!r} has no failed, skipped or cancelled task to retry",
            current_status=row["status"],
            field="status",
        )
    for task in retried:
        waiting = len(set(loads(task["depends_on"])) - succeeded)
        ready = waiting == 0
        move_task(
            conn,
            changes,
            task,
            TaskStatus.QUEUED if ready else TaskStatus.PENDING,
            now=now,
            waiting=waiting,
            attempt=0,
            queued_at=now if ready else None,
            available_at=None,
            started_at=None,
            finished_at=None,
            lease_token=None,
            lease_expires_at=None,
            worker_id=None,
            result_ref=None,
            result=None,
            error=None,
        )
    conn.execute("UPDATE scenarios SET cancelled = 0 WHERE id = ?", (scenario_id,))
    refresh_scenarios(conn, changes, now)
    return get_scenario(conn, scenario_id)


def claim_due_callbacks(
    conn: sqlite3.Connection, *, now: float, limit: int, lease_seconds: float
) -> list[Scenario]:
    rows = conn.execute(
        "SELECT id FROM scenarios WHERE callback_due_at IS NOT NULL AND callback_due_at <= ? "
        "ORDER BY callback_due_at, id LIMIT ?",
        (now, limit),
    ).fetchall()
    ids = [row["id"] for row in rows]
    conn.executemany(
        "UPDATE scenarios SET callback_due_at = ? WHERE id = ?",
        [(now + lease_seconds, scenario_id) for scenario_id in ids],
    )
    return [get_scenario(conn, scenario_id) for scenario_id in ids]


def finish_callback(conn: sqlite3.Connection, scenario_id: str, *, retry_at: float | None) -> None:
    fetch_scenario(conn, scenario_id)
    conn.execute("UPDATE scenarios SET callback_due_at = ? WHERE id = ?", (retry_at, scenario_id))


def purge_finished(conn: sqlite3.Connection, *, before: float, limit: int) -> int:
    """Tasks, counters and events go with their scenario (ON DELETE CASCADE)."""
    rows = conn.execute(
        "SELECT id FROM scenarios WHERE finished_at IS NOT NULL AND finished_at < ? "
        "ORDER BY finished_at LIMIT ?",
        (before, limit),
    ).fetchall()
    conn.executemany("DELETE FROM scenarios WHERE id = ?", [(row["id"],) for row in rows])
    return len(rows)
