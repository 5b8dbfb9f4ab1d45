"""How SQLite applies the steps of a completion that expands `for_each` groups
(`core.group_expansion`): an instance is inserted with its counter and event, the group's
row is deleted with its counter (and kept as it was in `expanded_groups`, decision 63),
every other step is a change of the lifecycle table."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from scenarist.core.group_expansion import Instance, Step
from scenarist.core.model import TaskStatus
from scenarist.core.rerun_groups import Restore
from scenarist.core.transitions import Change
from scenarist.storage.sqlite.rows import INSERT_TASK, dumps, loads, task_to_row
from scenarist.storage.sqlite.transitions import (
    Changes,
    ScenarioTasks,
    append_event,
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


def kept_groups(conn: sqlite3.Connection, scenario_id: str) -> dict[str, dict[str, Any]]:
    """The scenario's expanded groups as core.rerun reads them (names and spec decoded)."""
    kept = {}
    for row in conn.execute(
        "SELECT name, record FROM expanded_groups WHERE scenario_id = ?", (scenario_id,)
    ):
        record = loads(row["record"])
        assert isinstance(record, dict)
        for column in ("depends_on", "dependents", "group_spec"):
            record[column] = None if record[column] is None else loads(record[column])
        kept[row["name"]] = record
    return kept


def remove_instances(
    conn: sqlite3.Connection, changes: Changes, tasks: ScenarioTasks, removed: Sequence[Change]
) -> None:
    """Row remove_instance: the row goes with its counter and its history (no event)."""
    for change in removed:
        fields = tasks.get(change.name)
        assert fields is not None, change.name
        del tasks.fields[change.name]
        conn.execute("DELETE FROM tasks WHERE id = ?", (fields["id"],))
        conn.execute("DELETE FROM task_runs WHERE task_id = ?", (fields["id"],))
        bump_count(conn, tasks.scenario_id, fields["service"], str(fields["status"]), -1)
        if fields["tolerated"]:
            conn.execute(
                "UPDATE scenarios SET tolerated = tolerated - 1 WHERE id = ?",
                (tasks.scenario_id,),
            )
    if removed:
        conn.execute(
            "DELETE FROM task_counts WHERE scenario_id = ? AND n = 0", (tasks.scenario_id,)
        )
        changes.scenarios.add(tasks.scenario_id)


def restore_groups(
    conn: sqlite3.Connection,
    changes: Changes,
    scenario_id: str,
    restored: Sequence[Restore],
    *,
    now: float,
) -> None:
    """Row collapse_group: the kept row back in `tasks`, pending, with its counter and
    event; it is no longer an expanded group."""
    for restore in restored:
        row = conn.execute(
            "DELETE FROM expanded_groups WHERE scenario_id = ? AND name = ? RETURNING record",
            (scenario_id, restore.name),
        ).fetchone()
        record = loads(row["record"])
        assert isinstance(record, dict)
        record.update(
            status=TaskStatus.PENDING.value,
            waiting=restore.waiting,
            no_cache=int(restore.no_cache),
        )
        # Generated columns (hidden 2 or 3) are computed, never written.
        generated = {
            info["name"] for info in conn.execute("PRAGMA table_xinfo(tasks)") if info["hidden"]
        }
        record = {k: v for k, v in record.items() if k not in generated}
        columns = ", ".join(record)
        marks = ", ".join("?" for _ in record)
        conn.execute(f"INSERT INTO tasks ({columns}) VALUES ({marks})", tuple(record.values()))
        bump_count(conn, scenario_id, record["service"], TaskStatus.PENDING.value, +1)
        conn.execute("INSERT OR IGNORE INTO services (name) VALUES (?)", (record["service"],))
        append_event(
            conn, scenario_id, at=now, task=restore.name, status="pending",
            attempt=record["attempt"],
        )  # fmt: skip
        changes.scenarios.add(scenario_id)


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
        task = step.task(scenario_id, now)
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
