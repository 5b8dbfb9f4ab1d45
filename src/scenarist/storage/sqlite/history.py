"""Runs a rerun ended (decision 60): written in the rerun's transaction, the last
`history_limit` of each task kept, read newest first."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from scenarist.core.model import RunRecord
from scenarist.core.rerun import run_record
from scenarist.storage.sqlite.rows import loads
from scenarist.storage.sqlite.transitions import ScenarioTasks, fetch_task

_COLUMNS = (
    "run, attempt, status, payload, worker_id, queued_at, started_at, finished_at, "
    "result_ref, result, error"
)


def archive_runs(
    conn: sqlite3.Connection, tasks: ScenarioTasks, names: Sequence[str], history_limit: int
) -> None:
    """Each named task's current run (as the transaction sees it) into its history; the
    runs beyond the last `history_limit` go."""
    for name in names:
        fields = tasks.get(name)
        assert fields is not None, name
        conn.execute(
            f"INSERT INTO task_runs (task_id, scenario_id, {_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fields["id"],
                tasks.scenario_id,
                *(fields[column] for column in _COLUMNS.split(", ")),
            ),
        )
        conn.execute(
            "DELETE FROM task_runs WHERE task_id = ? AND run <= ?",
            (fields["id"], fields["run"] - history_limit),
        )


def task_history(conn: sqlite3.Connection, task_id: str) -> list[RunRecord]:
    fetch_task(conn, task_id)  # an unknown task is not found, not an empty history
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM task_runs WHERE task_id = ? ORDER BY run DESC", (task_id,)
    ).fetchall()
    return [
        run_record(
            row,
            payload=loads(row["payload"]),
            result=None if row["result"] is None else loads(row["result"]),
        )
        for row in rows
    ]
