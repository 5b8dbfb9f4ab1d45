"""How SQLite applies the steps of a completion that expands `for_each` groups
(`core.group_expansion`): an instance is inserted with its counter and event, the group's
row is deleted with its counter (and kept as it was in `expanded_groups`, decision 63),
every other step is a change of the lifecycle table."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from scenarist.core.group_expansion import Instance, Step
from scenarist.core.model import Task, task_id
from scenarist.storage.sqlite.rows import INSERT_TASK, dumps, loads, task_to_row
from scenarist.storage.sqlite.transitions import (
    Changes,
    ScenarioTasks,
    apply_changes,
    bump_count,
)

_WAITING_COLUMN = 17  # position of `waiting` in task_to_row


def next_seq(conn: sqlite3.Connection, scenario_id: str) -> int:
    row = conn.execute(
        "SELECT max(seq) FROM tasks WHERE scenario_id = ?", (scenario_id,)
    ).fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


def apply_steps(
    conn: sqlite3.Connection,
    changes: Changes,
    tasks: ScenarioTasks,
    steps: Sequence[Step],
    *,
    now: float,
) -> None:
    """In step order; a run of instances is written with one statement per table (a
    10,000-item group is 10,000 rows: one executemany each, not 30,000 statements)."""
    scenario_id = tasks.scenario_id
    pending: list[Instance] = []
    for step in steps:
        if isinstance(step, Instance):
            pending.append(step)
            continue
        _insert(conn, changes, scenario_id, pending, now)
        pending = []
        if step.rule == "expand_group":
            fields = tasks.fields.pop(step.name)
            keep_group(conn, fields["id"])
            conn.execute("DELETE FROM tasks WHERE id = ?", (fields["id"],))
            bump_count(conn, scenario_id, fields["service"], step.before.value, -1)
            # A service whose only task was the group leaves the progress (as in a plan
            # that never had it); a service with tasks keeps a non-zero row.
            conn.execute(
                "DELETE FROM task_counts WHERE scenario_id = ? AND service = ? AND n = 0",
                (scenario_id, fields["service"]),
            )
            changes.scenarios.add(scenario_id)
        else:
            apply_changes(conn, changes, tasks, [step], now=now)
    _insert(conn, changes, scenario_id, pending, now)


def keep_group(conn: sqlite3.Connection, group_id: str) -> None:
    """The group's row as it is now (its spec, payload, place in the plan and graph), so
    a rerun of the task it expanded from can bring the group back (decision 63)."""
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (group_id,)).fetchone()
    conn.execute(
        "INSERT OR REPLACE INTO expanded_groups (scenario_id, name, record) VALUES (?, ?, ?)",
        (row["scenario_id"], row["name"], dumps(dict(row))),
    )


def expanded_group(conn: sqlite3.Connection, scenario_id: str, name: str) -> dict[str, Any] | None:
    """The row `keep_group` kept for group `name` (None: it never expanded)."""
    row = conn.execute(
        "SELECT record FROM expanded_groups WHERE scenario_id = ? AND name = ?",
        (scenario_id, name),
    ).fetchone()
    if row is None:
        return None
    record = loads(row["record"])
    assert isinstance(record, dict)
    return record


def _insert(
    conn: sqlite3.Connection,
    changes: Changes,
    scenario_id: str,
    instances: Sequence[Instance],
    now: float,
) -> None:
    if not instances:
        return
    rows, events = [], []
    counts: dict[tuple[str, str], int] = {}
    for step in instances:
        task = _task(scenario_id, step, now)
        row = list(task_to_row(task, step.fields["seq"]))
        row[_WAITING_COLUMN] = step.fields["waiting"]
        rows.append(row)
        events.append((scenario_id, now, step.name, task.status.value, 0))
        key = (task.service, task.status.value)
        counts[key] = counts.get(key, 0) + 1
        if task.queued_at is not None:
            changes.ready_services.add(task.service)
    conn.executemany(INSERT_TASK, rows)
    conn.executemany(
        "INSERT INTO events (scenario_id, at, task, status, attempt) VALUES (?, ?, ?, ?, ?)",
        events,
    )
    for (service, status), n in counts.items():
        bump_count(conn, scenario_id, service, status, n)
    changes.scenarios.add(scenario_id)


def _task(scenario_id: str, step: Instance, now: float) -> Task:
    f = step.fields
    return Task(
        id=task_id(scenario_id, step.name),
        scenario_id=scenario_id,
        name=step.name,
        service=f["service"],
        payload=f["payload"],
        depends_on=tuple(f["depends_on"]),
        dependents=tuple(f["dependents"]),
        level=f["level"],
        status=step.status,
        attempt=0,
        max_attempts=f["max_attempts"],
        timeout_seconds=f["timeout_seconds"],
        created_at=now,
        queued_at=f["queued_at"],
        need=f["need"],
        optional=f["optional"],
        max_parallel=f["max_parallel"],
        parallel_group=f["parallel_group"],
    )
