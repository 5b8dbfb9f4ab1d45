"""Worker-protocol writes: lease, claim, heartbeat, complete, fail, expire.

Each function is the body of one BEGIN IMMEDIATE transaction (see store.py) and re-checks
its preconditions inside it, so racing calls from any process apply one after the other.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from scenarist.core import transition_changes as changes_of
from scenarist.core import transition_guards as guards
from scenarist.core import transitions as tr
from scenarist.core.affinity import Affinity
from scenarist.core.gates import NO_GATES, Bucket, Gates, LeaseCounts, LeaseRoom
from scenarist.core.group_expansion import Payloads, complete_steps, released_names
from scenarist.core.model import JSON, Completion, Task, TaskStatus
from scenarist.core.model import task_id as task_id_of
from scenarist.core.tenants import NO_TENANTS, Tenants
from scenarist.core.usage import Usage
from scenarist.storage.sqlite.cache_ops import make_ready, write_entry
from scenarist.storage.sqlite.expansion import apply_steps, next_seq
from scenarist.storage.sqlite.fair_lease import fair_rows
from scenarist.storage.sqlite.rows import row_to_task
from scenarist.storage.sqlite.transitions import (
    Changes,
    ScenarioTasks,
    apply_changes,
    count_usage,
    fetch_task,
    lease_inputs,
    mark_started,
    refresh_scenarios,
)

# Tasks of a group with `max_parallel` already processing that many (decision 56).
RUNNING_IN_GROUP = """
(SELECT COUNT(*) FROM tasks AS running WHERE running.scenario_id = tasks.scenario_id
 AND running.parallel_group = tasks.parallel_group AND running.status = 'processing')
"""
# Tasks sharing the concurrency key already processing (decision 67), over the index
# tasks_by_concurrency_key.
RUNNING_WITH_KEY = """
(SELECT COUNT(*) FROM tasks AS running WHERE running.concurrency_key = tasks.concurrency_key
 AND running.status = 'processing')
"""
# Walks the partial index tasks_ready in ready order and stops after `limit` rows; a task
# whose group is at its max_parallel, or whose key at its limit, stays queued (held back).
READY_TASKS = f"""
SELECT * FROM tasks
WHERE service = ? AND status = 'queued' AND (available_at IS NULL OR available_at <= ?)
AND (max_parallel IS NULL OR {RUNNING_IN_GROUP} < max_parallel)
AND (concurrency_key IS NULL OR {RUNNING_WITH_KEY} < concurrency_limit)
ORDER BY priority DESC, ready_at, id
LIMIT ?
"""


# Several services: each service's best `limit` rows (an index walk each), merged.
READY_ORDER = "ORDER BY priority DESC, ready_at, id"


def ready_rows(
    conn: sqlite3.Connection, limits: Mapping[str, int], now: float, limit: int
) -> list[sqlite3.Row]:
    """The best `limit` ready rows over the services, each service at most its own limit."""
    services = list(limits)
    if len(services) == 1:
        return conn.execute(READY_TASKS, (services[0], now, limits[services[0]])).fetchall()
    part = f"SELECT * FROM ({READY_TASKS})"
    query = " UNION ALL ".join([part] * len(services)) + f" {READY_ORDER} LIMIT ?"
    params = [value for service in services for value in (service, now, limits[service])]
    return conn.execute(query, [*params, limit]).fetchall()


def lease_counts(conn: sqlite3.Connection) -> LeaseCounts:
    """What is processing now, read inside the lease's transaction from the task rows
    themselves, so every end of an attempt has released its count in its own step."""

    def one(query: str, *params: object) -> int:
        return int(conn.execute(query, params).fetchone()[0])

    def bucket(service: str) -> Bucket | None:
        row = conn.execute(
            "SELECT tokens, at FROM rate_buckets WHERE service = ?", (service,)
        ).fetchone()
        return None if row is None else Bucket(row["tokens"], row["at"])

    return LeaseCounts(
        in_flight=lambda service: one(
            "SELECT COUNT(*) FROM tasks WHERE service = ? AND status = 'processing'", service
        ),
        key_running=lambda key: one(
            "SELECT COUNT(*) FROM tasks WHERE concurrency_key = ? AND status = 'processing'", key
        ),
        group_running=lambda scenario_id, group: running_in_group(conn, scenario_id, group),
        bucket=bucket,
        tenant_running=lambda tenant: one(
            "SELECT COUNT(*) FROM tasks WHERE tenant = ? AND status = 'processing'", tenant
        ),
    )


def candidate(row: sqlite3.Row) -> Candidate | sqlite3.Row:
    """A ready row as LeaseRoom reads it: the row itself unless it has an affinity."""
    return row if row["affinity"] is None else Candidate(row)


class Candidate:
    """A row with an affinity, `affinity` decoded from its JSON column."""

    __slots__ = ("_row",)

    def __init__(self, row: sqlite3.Row) -> None:
        self._row = row

    def __getitem__(self, key: str, /) -> Any:
        value = self._row[key]
        return Affinity.from_json(json.loads(value)) if key == "affinity" else value


def gated_rows(
    conn: sqlite3.Connection,
    services: Sequence[str],
    gates: Gates,
    now: float,
    max_tasks: int,
    *,
    labels: Mapping[str, str],
) -> tuple[list[sqlite3.Row], LeaseRoom]:
    """The ready rows this lease takes: in ready order, each admitted by the gates
    (core/gates.py LeaseRoom) counting the ones taken before it. Rows the query returns
    but the room refuses (a key or group filled by this very lease) are skipped, and the
    query is widened until `max_tasks` are admitted or nothing more is ready."""
    counts = lease_counts(conn)
    room = LeaseRoom(gates, counts, now=now, labels=labels)
    open_services = [s for s in services if room.service_room(s) != 0]
    fetch = max_tasks
    while open_services:
        rows = ready_rows(conn, dict.fromkeys(open_services, fetch), now, fetch)
        room = LeaseRoom(gates, counts, now=now, labels=labels)
        kept: list[sqlite3.Row] = []
        for row in rows:
            if len(kept) < max_tasks and room.admit(candidate(row)):
                kept.append(row)
        if len(kept) >= max_tasks or len(rows) < fetch:
            return kept, room
        fetch *= 2
    return [], room


def store_buckets(conn: sqlite3.Connection, room: LeaseRoom) -> None:
    for service, bucket in room.spent_buckets().items():
        conn.execute(
            "INSERT INTO rate_buckets (service, tokens, at) VALUES (?, ?, ?) "
            "ON CONFLICT (service) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
            (service, bucket.tokens, bucket.at),
        )


def running_in_group(conn: sqlite3.Connection, scenario_id: str, group: str) -> int:
    count: int = conn.execute(
        "SELECT COUNT(*) FROM tasks WHERE scenario_id = ? AND parallel_group = ? "
        "AND status = 'processing'",
        (scenario_id, group),
    ).fetchone()[0]
    return count


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
    gates: Gates = NO_GATES,
    labels: Mapping[str, str] | None = None,
    tenants: Tenants = NO_TENANTS,
) -> list[Task]:
    distinct = list(dict.fromkeys(services))
    if tenants:
        rows, room = fair_rows(
            conn, READY_TASKS, distinct, lease_counts(conn), gates=gates, tenants=tenants,
            now=now, max_tasks=max_tasks, labels=labels or {}, candidate=candidate,
        )  # fmt: skip
    else:
        rows, room = gated_rows(conn, distinct, gates, now, max_tasks, labels=labels or {})
    leased = [
        start_lease(
            conn,
            changes,
            row,
            rule="lease",
            lease_seconds=lease_seconds,
            worker_id=worker_id,
            now=now,
            nonce=nonce,
        )
        for row in rows
    ]
    store_buckets(conn, room)
    refresh_scenarios(conn, changes, now)
    return leased


def start_lease(
    conn: sqlite3.Connection,
    changes: Changes,
    row: sqlite3.Row,
    *,
    rule: str,
    lease_seconds: float | None,
    worker_id: str | None,
    now: float,
    nonce: str,
) -> Task:
    """queued -> processing under a fresh token (rules lease and claim); returns the task
    with its inputs."""
    tasks = ScenarioTasks(conn, row["scenario_id"])
    fields = tasks.add(row)
    move = changes_of.lease_change(
        fields, rule=rule, lease_seconds=lease_seconds, worker_id=worker_id, now=now, nonce=nonce
    )
    apply_changes(conn, changes, tasks, [move], now=now)
    mark_started(conn, row["scenario_id"], now)
    return row_to_task(fetch_task(conn, row["id"]), inputs=lease_inputs(tasks, fields))


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
    guards.check_claim(row)
    if row["max_parallel"] is not None:
        guards.check_claim_room(
            row, running_in_group(conn, row["scenario_id"], row["parallel_group"])
        )
    task = start_lease(
        conn,
        changes,
        row,
        rule="claim",
        lease_seconds=lease_seconds,
        worker_id=worker_id,
        now=now,
        nonce=nonce,
    )
    refresh_scenarios(conn, changes, now)
    return task


def heartbeat(
    conn: sqlite3.Connection,
    changes: Changes,
    task_id: str,
    lease_token: str,
    *,
    lease_seconds: float | None,
    now: float,
) -> Task:
    row = fetch_task(conn, task_id)
    guards.check_heartbeat(row, lease_token)
    tasks = ScenarioTasks(conn, row["scenario_id"])
    move = changes_of.heartbeat_change(tasks.add(row), lease_seconds=lease_seconds, now=now)
    apply_changes(conn, changes, tasks, [move], now=now)
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
    usage: Usage | None = None,
    payloads: Payloads | None = None,
) -> Completion:
    row = fetch_task(conn, task_id)
    if guards.is_duplicate_completion(row, lease_token):
        return Completion(task=row_to_task(row), duplicate=True)
    guards.check_lease(row, lease_token, TaskStatus.SUCCESS)
    tasks = ScenarioTasks(conn, row["scenario_id"])
    steps = complete_steps(
        tasks.add(row),
        tasks.get,
        result_ref=result_ref,
        result=result,
        now=now,
        usage=usage,
        payloads=payloads or {},
        next_seq=next_seq(conn, row["scenario_id"]),
    )
    apply_steps(conn, changes, tasks, steps, now=now)
    write_entry(conn, tasks.add(row), result_ref=result_ref, result=result, now=now)
    make_ready(conn, changes, tasks, released_names(steps), now=now)
    count_usage(conn, row, usage, now)
    refresh_scenarios(conn, changes, now)
    return Completion(
        task=row_to_task(fetch_task(conn, task_id)),
        released=tuple(task_id_of(row["scenario_id"], n) for n in released_names(steps)),
    )


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
    usage: Usage | None = None,
) -> Task:
    row = fetch_task(conn, task_id)
    guards.check_fail(row, lease_token, attempt)
    end_attempt(conn, changes, row, error=error, retry_at=retry_at, now=now, usage=usage)
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
    if row is None or not guards.can_expire(row, lease_token, now):
        return None
    end_attempt(conn, changes, row, error=tr.LEASE_EXPIRED_ERROR, retry_at=retry_at, now=now)
    return row_to_task(fetch_task(conn, task_id))


def end_attempt(
    conn: sqlite3.Connection,
    changes: Changes,
    row: sqlite3.Row,
    *,
    error: str,
    retry_at: float | None,
    now: float,
    usage: Usage | None = None,
) -> None:
    """A failed attempt: back to the queue after the backoff, or failed for good with
    everything downstream skipped (rules requeue, fail, skip)."""
    tasks = ScenarioTasks(conn, row["scenario_id"])
    moves = changes_of.fail_changes(
        tasks.add(row), tasks.get, error=error, retry_at=retry_at, now=now, usage=usage
    )
    apply_changes(conn, changes, tasks, moves, now=now)
    count_usage(conn, row, usage, now)
    refresh_scenarios(conn, changes, now)


def hand_back(
    conn: sqlite3.Connection, changes: Changes, task_id: str, lease_token: str, *, now: float
) -> Task | None:
    """Undo the lease `lease_token` (row hand_back, see Store.hand_back); None when it is
    not current."""
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None or not guards.can_hand_back(row, lease_token):
        return None
    tasks = ScenarioTasks(conn, row["scenario_id"])
    apply_changes(conn, changes, tasks, [changes_of.hand_back_change(tasks.add(row))], now=now)
    refresh_scenarios(conn, changes, now)
    return row_to_task(fetch_task(conn, task_id))
