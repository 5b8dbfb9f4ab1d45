"""Read queries. Each runs in one (deferred) transaction, so a scenario and its counters
are read from the same snapshot; WAL readers never wait for the writer."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from scenarist.core.errors import ScenarioNotFoundError
from scenarist.core.model import (
    Event,
    Progress,
    QueueStats,
    Scenario,
    ScenarioStatus,
    Task,
    TenantStats,
)
from scenarist.core.usage import UsageTotal, usage_hour
from scenarist.storage.sqlite.rows import (
    decode_cursor,
    decode_event_id,
    encode_cursor,
    progress_from_counts,
    row_to_event,
    row_to_scenario,
    row_to_task,
)
from scenarist.storage.sqlite.transitions import fetch_scenario, fetch_task


def read_progress(conn: sqlite3.Connection, scenario_ids: list[str]) -> dict[str, Progress]:
    if not scenario_ids:
        return {}
    marks = ", ".join("?" * len(scenario_ids))
    rows = conn.execute(
        f"SELECT scenario_id, service, status, n FROM task_counts WHERE scenario_id IN ({marks})",
        scenario_ids,
    ).fetchall()
    counts: dict[str, list[tuple[str, str, int]]] = {sid: [] for sid in scenario_ids}
    for row in rows:
        counts[row["scenario_id"]].append((row["service"], row["status"], row["n"]))
    growing = {
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT scenario_id FROM tasks WHERE scenario_id IN ({marks}) "
            "AND group_spec IS NOT NULL AND status IN ('pending', 'queued', 'processing')",
            scenario_ids,
        )
    }
    return {
        sid: replace(progress_from_counts(c), growing=sid in growing) for sid, c in counts.items()
    }


def get_scenario(conn: sqlite3.Connection, scenario_id: str) -> Scenario:
    row = fetch_scenario(conn, scenario_id)
    return row_to_scenario(row, read_progress(conn, [scenario_id])[scenario_id])


def get_task(conn: sqlite3.Connection, task_id: str) -> Task:
    return row_to_task(fetch_task(conn, task_id))


# SQLite allows 32766 host parameters per statement; stay well below on any build.
IDS_PER_QUERY = 500


def get_tasks(conn: sqlite3.Connection, task_ids: Sequence[str]) -> dict[str, Task]:
    unique = list(dict.fromkeys(task_ids))
    found: dict[str, Task] = {}
    for start in range(0, len(unique), IDS_PER_QUERY):
        chunk = unique[start : start + IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(f"SELECT * FROM tasks WHERE id IN ({marks})", chunk):
            found[row["id"]] = row_to_task(row)
    return found


def list_tasks(conn: sqlite3.Connection, scenario_id: str) -> list[Task]:
    fetch_scenario(conn, scenario_id)
    rows = conn.execute(
        "SELECT * FROM tasks WHERE scenario_id = ? ORDER BY seq", (scenario_id,)
    ).fetchall()
    return [row_to_task(row) for row in rows]


def list_scenarios(
    conn: sqlite3.Connection,
    *,
    status: ScenarioStatus | None,
    template: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Scenario], str | None]:
    """Newest first by (created_at, id); the cursor is the last row's position."""
    where: list[str] = []
    args: list[object] = []
    if status is not None:
        where.append("status = ?")
        args.append(status.value)
    if template is not None:
        where.append("template = ?")
        args.append(template)
    if cursor is not None:
        created_at, last_id = decode_cursor(cursor)
        where.append("(created_at < ? OR (created_at = ? AND id < ?))")
        args += [created_at, created_at, last_id]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT * FROM scenarios {clause} ORDER BY created_at DESC, id DESC LIMIT ?",
        (*args, limit + 1),
    ).fetchall()
    page = rows[:limit]
    progress = read_progress(conn, [row["id"] for row in page])
    scenarios = [row_to_scenario(row, progress[row["id"]]) for row in page]
    if len(rows) <= limit:
        return scenarios, None
    last = page[-1]
    return scenarios, encode_cursor(last["created_at"], last["id"])


def read_events(
    conn: sqlite3.Connection, scenario_id: str, *, after: str | None, limit: int
) -> list[Event]:
    after_id = 0 if after is None else decode_event_id(after)
    if conn.execute("SELECT 1 FROM scenarios WHERE id = ?", (scenario_id,)).fetchone() is None:
        raise ScenarioNotFoundError(scenario_id)
    rows = conn.execute(
        "SELECT * FROM events WHERE scenario_id = ? AND id > ? ORDER BY id LIMIT ?",
        (scenario_id, after_id, limit),
    ).fetchall()
    return [row_to_event(row) for row in rows]


def queue_stats(conn: sqlite3.Connection, *, now: float) -> list[QueueStats]:
    queued = {
        row["service"]: row
        for row in conn.execute(
            "SELECT service, "
            "SUM(available_at IS NULL OR available_at <= ?1) AS ready, "
            "SUM(COALESCE(available_at > ?1, 0)) AS delayed, "
            "MIN(CASE WHEN available_at IS NULL OR available_at <= ?1 THEN ready_at END) "
            "AS oldest "
            "FROM tasks WHERE status = 'queued' GROUP BY service",
            (now,),
        )
    }
    held = dict(
        conn.execute(
            "SELECT service, COUNT(*) FROM tasks WHERE status = 'queued' "
            "AND max_parallel IS NOT NULL AND (available_at IS NULL OR available_at <= ?) AND "
            "(SELECT COUNT(*) FROM tasks AS running WHERE running.scenario_id = tasks.scenario_id "
            "AND running.parallel_group = tasks.parallel_group "
            "AND running.status = 'processing') >= max_parallel GROUP BY service",
            (now,),
        ).fetchall()
    )
    held_by_key = dict(
        conn.execute(
            "SELECT service, COUNT(*) FROM tasks WHERE status = 'queued' "
            "AND concurrency_key IS NOT NULL AND (available_at IS NULL OR available_at <= ?) "
            "AND NOT (max_parallel IS NOT NULL AND (SELECT COUNT(*) FROM tasks AS running "
            "WHERE running.scenario_id = tasks.scenario_id "
            "AND running.parallel_group = tasks.parallel_group "
            "AND running.status = 'processing') >= max_parallel) "
            "AND (SELECT COUNT(*) FROM tasks AS running "
            "WHERE running.concurrency_key = tasks.concurrency_key "
            "AND running.status = 'processing') >= concurrency_limit GROUP BY service",
            (now,),
        ).fetchall()
    )
    in_flight = dict(
        conn.execute(
            "SELECT service, COUNT(*) FROM tasks WHERE status = 'processing' GROUP BY service"
        ).fetchall()
    )
    buckets = {row[0]: row for row in conn.execute("SELECT service, tokens, at FROM rate_buckets")}
    stats = []
    for (service,) in conn.execute("SELECT name FROM services ORDER BY name"):
        row = queued.get(service)
        oldest = None if row is None else row["oldest"]
        stats.append(
            QueueStats(
                service=service,
                ready=0 if row is None else row["ready"],
                delayed=0 if row is None else row["delayed"],
                in_flight=in_flight.get(service, 0),
                oldest_ready_age=None if oldest is None else max(0.0, now - oldest),
                held=held.get(service, 0),
                held_by_key=held_by_key.get(service, 0),
                bucket_tokens=buckets[service][1] if service in buckets else None,
                bucket_at=buckets[service][2] if service in buckets else None,
            )
        )
    return stats


def usage_totals(conn: sqlite3.Connection, *, since: float | None) -> list[UsageTotal]:
    rows = conn.execute(
        "SELECT hour, template, service, name, value FROM usage_totals WHERE hour >= ? "
        "ORDER BY hour, template, service, name",
        (-math.inf if since is None else usage_hour(since),),
    ).fetchall()
    return [UsageTotal(*row) for row in rows]


def tenant_stats(conn: sqlite3.Connection, *, now: float) -> list[TenantStats]:
    rows = conn.execute(
        "SELECT tenant, "
        "SUM(status = 'queued' AND (available_at IS NULL OR available_at <= ?)), "
        "SUM(status = 'processing') FROM tasks WHERE status IN ('queued', 'processing') "
        "GROUP BY tenant ORDER BY tenant",
        (now,),
    ).fetchall()
    return [TenantStats(t, int(r), int(f)) for t, r, f in rows if r or f]
