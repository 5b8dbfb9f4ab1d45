"""Scenario-level writes: create, cancel, retry, rerun, the callback outbox and the purge."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from scenarist.core import transition_changes as changes_of
from scenarist.core import transition_guards as guards
from scenarist.core.model import JSON, Scenario, ScenarioStatus, Task, TaskStatus
from scenarist.core.rerun import RerunRequest, merged_payloads, rerun_plan
from scenarist.storage.sqlite.cache_ops import make_ready
from scenarist.storage.sqlite.expansion import kept_groups, remove_instances, restore_groups
from scenarist.storage.sqlite.history import archive_runs
from scenarist.storage.sqlite.reads import get_scenario
from scenarist.storage.sqlite.rows import INSERT_TASK, dumps, loads, task_to_row
from scenarist.storage.sqlite.transitions import (
    Changes,
    ScenarioTasks,
    append_event,
    apply_changes,
    bump_count,
    fetch_scenario,
    refresh_scenario,
    refresh_scenarios,
)


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
        "callback_url, request_digest, traceparent, lane, tenant) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            scenario.id,
            scenario.template,
            dumps(scenario.params),
            ScenarioStatus.PENDING.value,
            scenario.created_at,
            scenario.idempotency_key,
            scenario.callback_url,
            scenario.request_digest,
            scenario.traceparent,
            scenario.lane.value,
            scenario.tenant,
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
    roots = [t.name for t in tasks if t.status is TaskStatus.QUEUED]
    if any(t.cache_ttl is not None for t in tasks):
        make_ready(conn, changes, ScenarioTasks(conn, scenario.id), roots, now=scenario.created_at)
    # A scenario without tasks is final at once (success), callback included.
    refresh_scenario(conn, changes, scenario.id, scenario.created_at)
    changes.scenarios.add(scenario.id)
    return get_scenario(conn, scenario.id), True


def cancel_scenario(
    conn: sqlite3.Connection, changes: Changes, scenario_id: str, *, now: float
) -> Scenario:
    row = fetch_scenario(conn, scenario_id)
    if not guards.check_cancel(scenario_id, row["status"], bool(row["cancelled"])):
        return get_scenario(conn, scenario_id)
    tasks = ScenarioTasks(conn, scenario_id)
    moves = changes_of.cancel_changes(tasks.all_in_plan_order(), now=now)
    apply_changes(conn, changes, tasks, moves, now=now)
    conn.execute("UPDATE scenarios SET cancelled = 1 WHERE id = ?", (scenario_id,))
    changes.scenarios.add(scenario_id)
    refresh_scenarios(conn, changes, now)
    return get_scenario(conn, scenario_id)


def retry_scenario(
    conn: sqlite3.Connection, changes: Changes, scenario_id: str, *, now: float
) -> Scenario:
    row = fetch_scenario(conn, scenario_id)
    tasks = ScenarioTasks(conn, scenario_id)
    every = tasks.all_in_plan_order()
    guards.check_retry(scenario_id, row["status"], every)
    moves = changes_of.retry_changes(every, now=now)
    apply_changes(conn, changes, tasks, moves, now=now)
    make_ready(conn, changes, tasks, [m.name for m in moves if m.rule == "retry_ready"], now=now)
    conn.execute("UPDATE scenarios SET cancelled = 0 WHERE id = ?", (scenario_id,))
    changes.scenarios.add(scenario_id)
    refresh_scenarios(conn, changes, now)
    return get_scenario(conn, scenario_id)


def rerun_scenario(
    conn: sqlite3.Connection,
    changes: Changes,
    scenario_id: str,
    request: RerunRequest,
    *,
    now: float,
) -> tuple[Scenario, tuple[str, ...]]:
    """core.rerun's plan in one transaction: cancels, the ended runs into history, the
    new runs; the scenario is no longer cancelled and its status is derived again."""
    row = fetch_scenario(conn, scenario_id)
    tasks = ScenarioTasks(conn, scenario_id)
    every = tasks.all_in_plan_order()

    def payload_of(name: str) -> JSON:
        found = tasks.get(name)
        return None if found is None else loads(found["payload"])

    plan = rerun_plan(
        every,
        request,
        scenario=dict(row),
        payloads=merged_payloads(request, payload_of),
        now=now,
        kept=kept_groups(conn, scenario_id),
    )
    apply_changes(conn, changes, tasks, plan.cancels, now=now)
    archive_runs(conn, tasks, plan.archive, request.history_limit)
    remove_instances(conn, changes, tasks, plan.removed)
    restore_groups(conn, changes, scenario_id, plan.restored, now=now)
    apply_changes(conn, changes, tasks, plan.changes, now=now)
    conn.execute("UPDATE scenarios SET cancelled = 0 WHERE id = ?", (scenario_id,))
    changes.scenarios.add(scenario_id)
    refresh_scenarios(conn, changes, now)
    return get_scenario(conn, scenario_id), plan.tasks


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
    # Only while the scenario is still in the outbox (as Redis's ZADD XX): a retry took it
    # out, and a delivery that was in flight must not put a running scenario back.
    conn.execute(
        "UPDATE scenarios SET callback_due_at = ? WHERE id = ? AND callback_due_at IS NOT NULL",
        (retry_at, scenario_id),
    )


def purge_finished(conn: sqlite3.Connection, *, before: float, limit: int) -> int:
    """Tasks, counters and events go with their scenario (ON DELETE CASCADE)."""
    rows = conn.execute(
        "SELECT id FROM scenarios WHERE finished_at IS NOT NULL AND finished_at < ? "
        "ORDER BY finished_at LIMIT ?",
        (before, limit),
    ).fetchall()
    conn.executemany("DELETE FROM scenarios WHERE id = ?", [(row["id"],) for row in rows])
    return len(rows)
