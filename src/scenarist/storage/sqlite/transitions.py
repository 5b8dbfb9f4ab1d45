"""How SQLite applies the lifecycle table of `core.transitions`: the rows a transaction
reads (as the fields core expects), one write per change with its counters and event,
and the scenario status derivation.

Every function runs inside the caller's open transaction on the store's single DB thread.
`apply_changes` is the only place that changes a task, so counters and events can never
disagree with the tasks table, and no rule exists here that core does not define.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scenarist.core import transitions as tr
from scenarist.core.affinity import Affinity
from scenarist.core.errors import ScenarioNotFoundError, TaskNotFoundError
from scenarist.core.lifecycle import derive_scenario_status
from scenarist.core.model import JSON, ScenarioStatus, TaskStatus, task_id
from scenarist.core.usage import Usage, usage_hour
from scenarist.storage.sqlite.rows import dumps, loads, progress_from_counts


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


def task_fields(row: sqlite3.Row) -> dict[str, Any]:
    """A row as the fields `core.transitions` reads (names decoded; result stays text)."""
    fields = dict(zip(row.keys(), row, strict=True))
    fields["depends_on"] = loads(row["depends_on"])
    fields["dependents"] = loads(row["dependents"])
    fields["usage"] = None if row["usage"] is None else loads(row["usage"])
    fields["group_spec"] = None if row["group_spec"] is None else loads(row["group_spec"])
    fields["join"] = None if row["join_spec"] is None else loads(row["join_spec"])
    affinity = row["affinity"]
    fields["affinity"] = None if affinity is None else Affinity.from_json(loads(affinity))
    return fields


class ScenarioTasks:
    """The task rows of one scenario this transaction has read, each read once, so every
    change computed in the transaction sees the same, current fields."""

    def __init__(self, conn: sqlite3.Connection, scenario_id: str) -> None:
        self.conn = conn
        self.scenario_id = scenario_id
        self.fields: dict[str, dict[str, Any]] = {}

    def add(self, row: sqlite3.Row) -> dict[str, Any]:
        return self.fields.setdefault(row["name"], task_fields(row))

    def get(self, name: str) -> dict[str, Any] | None:
        found = self.fields.get(name)
        if found is None:
            row = self.conn.execute(
                "SELECT * FROM tasks WHERE id = ?", (task_id(self.scenario_id, name),)
            ).fetchone()
            found = None if row is None else self.add(row)
        return found

    def all_in_plan_order(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM tasks WHERE scenario_id = ? ORDER BY seq", (self.scenario_id,)
        ).fetchall()
        return [self.add(row) for row in rows]


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


def _column_value(name: str, value: Any) -> Any:
    if name == "result":
        return store_result(value)
    if name in ("usage", "payload"):
        return None if value is None else dumps(dict(value))
    if name in ("depends_on", "dependents"):
        return dumps(list(value))
    return value


def apply_changes(
    conn: sqlite3.Connection,
    changes: Changes,
    tasks: ScenarioTasks,
    moves: Sequence[tr.Change],
    *,
    now: float,
) -> None:
    """Write each change in order; a status move also moves the counters and appends
    its event. Column names come from the rule table, never from callers' input."""
    scenario_id = tasks.scenario_id
    for change in moves:
        fields = tasks.get(change.name)
        assert fields is not None, change.name
        attempt = change.event_attempt(fields)
        values = {name: _column_value(name, v) for name, v in change.fields.items()}
        if change.moves:
            values["status"] = change.after.value
        assignments = ", ".join(f"{name} = ?" for name in values)
        conn.execute(
            f"UPDATE tasks SET {assignments} WHERE id = ?", (*values.values(), fields["id"])
        )
        if "tolerated" in values:
            tolerated = int(bool(values["tolerated"])) - int(bool(fields["tolerated"]))
            if tolerated:
                conn.execute(
                    "UPDATE scenarios SET tolerated = tolerated + ? WHERE id = ?",
                    (tolerated, scenario_id),
                )
        fields.update(values)
        if "usage" in change.fields:  # read back by core as a mapping, unlike result
            fields["usage"] = change.fields["usage"]
        if "depends_on" in change.fields:
            fields["depends_on"] = list(change.fields["depends_on"])
        if "dependents" in change.fields:
            fields["dependents"] = list(change.fields["dependents"])
        if not change.moves:
            continue
        service = fields["service"]
        bump_count(conn, scenario_id, service, change.before.value, -1)
        bump_count(conn, scenario_id, service, change.after.value, +1)
        append_event(
            conn, scenario_id, at=now, task=change.name, status=change.after.value, attempt=attempt
        )
        changes.scenarios.add(scenario_id)
        if change.after is TaskStatus.QUEUED:
            changes.ready_services.add(service)


def mark_started(conn: sqlite3.Connection, scenario_id: str, now: float) -> None:
    conn.execute(
        "UPDATE scenarios SET started_at = ? WHERE id = ? AND started_at IS NULL",
        (now, scenario_id),
    )


def lease_inputs(tasks: ScenarioTasks, fields: Mapping[str, Any]) -> tuple[Mapping[str, JSON], ...]:
    """One mapping per parent, in depends_on order."""
    inputs = []
    for name in fields["depends_on"]:
        parent = tasks.get(name)
        if parent is None:
            continue
        result = parent["result"]
        inputs.append(tr.parent_input(parent, None if result is None else loads(result)))
    return tuple(inputs)


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
        tolerated=row["tolerated"],
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


def count_usage(
    conn: sqlite3.Connection, row: sqlite3.Row, usage: Usage | None, now: float
) -> None:
    """Add one report to the hourly totals (inside the completion's or failure's step)."""
    if not usage:
        return
    template = fetch_scenario(conn, row["scenario_id"])["template"]
    conn.executemany(
        "INSERT INTO usage_totals (hour, template, service, name, value) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET value = value + excluded.value",
        [(usage_hour(now), template, row["service"], n, v) for n, v in usage.items()],
    )


def store_result(result: Mapping[str, JSON] | None) -> str | None:
    return None if result is None else dumps(dict(result))


def released_ids(scenario_id: str, moves: Iterable[tr.Change]) -> tuple[str, ...]:
    return tuple(task_id(scenario_id, c.name) for c in moves if c.rule == "release")
