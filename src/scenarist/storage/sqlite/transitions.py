"""The building blocks of every write: one task status change (with its counter and event),
the dependency rule (release / skip dependents) and the scenario status derivation.

Every function runs inside the caller's open transaction on the store's single DB thread.
`move_task` is the only place that changes a task's status, so counters and events can
never disagree with the tasks table.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scenarist.core.errors import (
    IllegalTransitionError,
    ScenarioNotFoundError,
    StaleLeaseError,
    TaskNotFoundError,
)
from scenarist.core.lifecycle import derive_scenario_status
from scenarist.core.model import JSON, ScenarioStatus, Task, TaskStatus, task_id
from scenarist.storage.sqlite.rows import dumps, loads, progress_from_counts, row_to_task


@dataclass
class Changes:
    """What a transaction touched, for the in-process wake-ups sent after it commits."""

    ready_services: set[str] = field(default_factory=set)
    scenarios: set[str] = field(default_factory=set)


def fetch_task(conn: sqlite3.Connection, task_id_: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM tasks WHERE id = ?", (task_id_,)
    ).fetchone()
    if row is None:
        raise TaskNotFoundError(task_id_)
    return row


def fetch_scenario(conn: sqlite3.Connection, scenario_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM scenarios WHERE id = ?", (scenario_id,)
    ).fetchone()
    if row is None:
        raise ScenarioNotFoundError(scenario_id)
    return row


def check_lease(row: sqlite3.Row, lease_token: str | None, requested: TaskStatus) -> None:
    """The task must be processing under `lease_token` (any lease when None, the seed's
    PATCH); a stale token is StaleLeaseError, a token-less misuse IllegalTransitionError."""
    status = row["status"]
    if status == TaskStatus.PROCESSING and lease_token in (None, row["lease_token"]):
        return
    if lease_token is None:
        raise IllegalTransitionError(row["id"], status, requested)
    raise StaleLeaseError(row["id"], status)


def append_event(
    conn: sqlite3.Connection,
    scenario_id: str,
    *,
    at: float,
    task: str | None,
    status: str,
    attempt: int,
) -> None:
    conn.execute(
        "INSERT INTO events (scenario_id, at, task, status, attempt) VALUES (?, ?, ?, ?, ?)",
        (scenario_id, at, task, status, attempt),
    )


def bump_count(
    conn: sqlite3.Connection, scenario_id: str, service: str, status: str, delta: int
) -> None:
    conn.execute(
        "INSERT INTO task_counts (scenario_id, service, status, n) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET n = n + excluded.n",
        (scenario_id, service, status, delta),
    )


def move_task(
    conn: sqlite3.Connection,
    changes: Changes,
    row: sqlite3.Row,
    status: TaskStatus,
    *,
    now: float,
    **columns: object,
) -> None:
    """Set the task's status (and the given columns), move it between counters and append
    its event. Column names come from this package's code, never from callers' input."""
    values: dict[str, object] = {"status": status.value, **columns}
    assignments = ", ".join(f"{name} = ?" for name in values)
    conn.execute(f"UPDATE tasks SET {assignments} WHERE id = ?", (*values.values(), row["id"]))
    scenario_id, service = row["scenario_id"], row["service"]
    bump_count(conn, scenario_id, service, row["status"], -1)
    bump_count(conn, scenario_id, service, status.value, +1)
    attempt = columns.get("attempt", row["attempt"])
    assert isinstance(attempt, int)
    append_event(conn, scenario_id, at=now, task=row["name"], status=status.value, attempt=attempt)
    changes.scenarios.add(scenario_id)
    if status is TaskStatus.QUEUED:
        changes.ready_services.add(service)


def fetch_named(
    conn: sqlite3.Connection, scenario_id: str, names: Iterable[str]
) -> list[sqlite3.Row]:
    ids = [task_id(scenario_id, name) for name in names]
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = conn.execute(f"SELECT * FROM tasks WHERE id IN ({marks})", ids).fetchall()
    by_id = {row["id"]: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def release_dependents(
    conn: sqlite3.Connection, changes: Changes, parent: sqlite3.Row, now: float
) -> list[str]:
    """Count `parent`'s success off each dependent's `waiting` and queue every pending one
    that reaches 0. Runs in the completing transaction, so of several parents finishing at
    once exactly the last one brings the count to 0: a fan-in is released once, and the
    cost of a completion does not grow with the number of the dependent's parents."""
    scenario_id = parent["scenario_id"]
    names = list(dict.fromkeys(loads(parent["dependents"])))
    conn.executemany(
        "UPDATE tasks SET waiting = waiting - 1 WHERE id = ?",
        [(task_id(scenario_id, name),) for name in names],
    )
    released = []
    for child in fetch_named(conn, scenario_id, names):
        if child["status"] == TaskStatus.PENDING and child["waiting"] <= 0:
            move_task(conn, changes, child, TaskStatus.QUEUED, now=now, queued_at=now)
            released.append(child["id"])
    return released


def skip_dependents(
    conn: sqlite3.Connection, changes: Changes, parent: sqlite3.Row, now: float
) -> None:
    """Breadth-first over dependents: every transitive non-final dependent -> skipped."""
    scenario_id = parent["scenario_id"]
    frontier = deque(loads(parent["dependents"]))
    seen: set[str] = set()
    while frontier:
        names = [name for name in dict.fromkeys(frontier) if name not in seen]
        frontier.clear()
        seen.update(names)
        for child in fetch_named(conn, scenario_id, names):
            if not TaskStatus(child["status"]).is_final:
                move_task(
                    conn,
                    changes,
                    child,
                    TaskStatus.SKIPPED,
                    now=now,
                    finished_at=now,
                    lease_expires_at=None,
                )
            frontier.extend(loads(child["dependents"]))


def start_lease(
    conn: sqlite3.Connection,
    changes: Changes,
    row: sqlite3.Row,
    *,
    lease_seconds: float | None,
    worker_id: str | None,
    now: float,
    nonce: str,
) -> Task:
    """queued -> processing under a fresh token; returns the task with its inputs."""
    attempt = row["attempt"] + 1
    expires_at = now + (lease_seconds if lease_seconds is not None else row["timeout_seconds"])
    move_task(
        conn,
        changes,
        row,
        TaskStatus.PROCESSING,
        now=now,
        attempt=attempt,
        lease_token=f"{nonce}.{attempt}",
        started_at=now,
        lease_expires_at=expires_at,
        worker_id=worker_id,
        available_at=None,
    )
    conn.execute(
        "UPDATE scenarios SET started_at = ? WHERE id = ? AND started_at IS NULL",
        (now, row["scenario_id"]),
    )
    return row_to_task(fetch_task(conn, row["id"]), inputs=lease_inputs(conn, row))


def lease_inputs(conn: sqlite3.Connection, row: sqlite3.Row) -> tuple[Mapping[str, JSON], ...]:
    """One mapping per parent, in depends_on order."""
    parents = fetch_named(conn, row["scenario_id"], loads(row["depends_on"]))
    return tuple(
        {
            "task": parent["name"],
            "result_ref": parent["result_ref"],
            "result": None if parent["result"] is None else loads(parent["result"]),
        }
        for parent in parents
    )


def refresh_scenarios(conn: sqlite3.Connection, changes: Changes, now: float) -> None:
    """Re-derive the status of every scenario the transaction touched."""
    for scenario_id in sorted(changes.scenarios):
        refresh_scenario(conn, changes, scenario_id, now)


def refresh_scenario(
    conn: sqlite3.Connection, changes: Changes, scenario_id: str, now: float
) -> None:
    """Store the derived status; on becoming final stamp finished_at and put a scenario
    with a callback_url into the outbox; on leaving final (retry) undo both."""
    row = fetch_scenario(conn, scenario_id)
    counts = conn.execute(
        "SELECT service, status, n FROM task_counts WHERE scenario_id = ?", (scenario_id,)
    ).fetchall()
    derived = derive_scenario_status(
        progress_from_counts(counts),
        started=row["started_at"] is not None,
        cancelled=bool(row["cancelled"]),
    )
    current = ScenarioStatus(row["status"])
    if derived is current:
        return
    if derived.is_final and not current.is_final:
        due = now if row["callback_url"] is not None else None
        conn.execute(
            "UPDATE scenarios SET status = ?, finished_at = ?, callback_due_at = ? WHERE id = ?",
            (derived.value, now, due, scenario_id),
        )
    elif current.is_final and not derived.is_final:
        conn.execute(
            "UPDATE scenarios SET status = ?, finished_at = NULL, callback_due_at = NULL "
            "WHERE id = ?",
            (derived.value, scenario_id),
        )
    else:
        conn.execute("UPDATE scenarios SET status = ? WHERE id = ?", (derived.value, scenario_id))
    append_event(conn, scenario_id, at=now, task=None, status=derived.value, attempt=0)
    changes.scenarios.add(scenario_id)


def store_result(result: Mapping[str, JSON] | None) -> str | None:
    return None if result is None else dumps(dict(result))
