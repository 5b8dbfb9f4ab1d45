"""Conversions between SQLite rows and the domain records, and the listing cursor."""

from __future__ import annotations

import base64
import binascii
import math
import sqlite3
from collections.abc import Iterable, Mapping

import orjson

from scenarist.core.affinity import Affinity
from scenarist.core.errors import ParamError
from scenarist.core.model import (
    JSON,
    Event,
    Lane,
    Progress,
    Scenario,
    ScenarioStatus,
    Task,
    TaskStatus,
    lane_of_priority,
)


def dumps(value: JSON) -> str:
    return orjson.dumps(value).decode()


def loads(text: str) -> JSON:
    return orjson.loads(text)


def task_to_row(task: Task, seq: int) -> tuple[object, ...]:
    """Values for INSERT_TASK, in its column order."""
    return (
        task.id,
        task.scenario_id,
        seq,
        task.name,
        task.service,
        dumps(task.payload),
        dumps(list(task.depends_on)),
        dumps(list(task.dependents)),
        task.level,
        task.priority,
        task.status.value,
        task.attempt,
        task.max_attempts,
        task.timeout_seconds,
        task.created_at,
        task.available_at,
        task.queued_at,
        # A new task's parents are new too, so none has succeeded yet.
        len(set(task.depends_on)),
        task.need,
        int(task.optional),
        None if task.group_spec is None else dumps(task.group_spec),
        None if task.join is None else dumps(task.join),
        task.max_parallel,
        task.parallel_group,
        task.cache_ttl,
        task.concurrency_key,
        task.concurrency_limit,
        None if task.affinity is None else dumps(task.affinity.to_json()),
        task.tenant,
    )


INSERT_TASK = """
INSERT INTO tasks (id, scenario_id, seq, name, service, payload, depends_on, dependents,
                   level, priority, status, attempt, max_attempts, timeout_seconds,
                   created_at, available_at, queued_at, waiting, need, optional, group_spec,
                   join_spec, max_parallel, parallel_group, cache_ttl, concurrency_key,
                   concurrency_limit, affinity, tenant)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def row_to_task(row: sqlite3.Row, inputs: tuple[Mapping[str, JSON], ...] = ()) -> Task:
    result = row["result"]
    return Task(
        id=row["id"],
        scenario_id=row["scenario_id"],
        name=row["name"],
        service=row["service"],
        payload=loads(row["payload"]),
        depends_on=tuple(loads(row["depends_on"])),
        dependents=tuple(loads(row["dependents"])),
        level=row["level"],
        status=TaskStatus(row["status"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        timeout_seconds=row["timeout_seconds"],
        created_at=row["created_at"],
        available_at=row["available_at"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_token=row["lease_token"],
        lease_expires_at=row["lease_expires_at"],
        lease_seconds=row["lease_seconds"],
        worker_id=row["worker_id"],
        result_ref=row["result_ref"],
        result=None if result is None else loads(result),
        error=row["error"],
        usage=None if row["usage"] is None else loads(row["usage"]),
        inputs=inputs,
        need=row["need"],
        optional=bool(row["optional"]),
        tolerated=bool(row["tolerated"]),
        group_spec=None if row["group_spec"] is None else loads(row["group_spec"]),
        join=None if row["join_spec"] is None else loads(row["join_spec"]),
        max_parallel=row["max_parallel"],
        parallel_group=row["parallel_group"],
        run=row["run"],
        runs=row["runs"],
        no_cache=bool(row["no_cache"]),
        cache_ttl=row["cache_ttl"],
        cache_key=row["cache_key"],
        cached=bool(row["cached"]),
        cached_from=row["cached_from"],
        concurrency_key=row["concurrency_key"],
        concurrency_limit=row["concurrency_limit"],
        lane=lane_of_priority(row["priority"]),
        affinity=None if row["affinity"] is None else Affinity.from_json(loads(row["affinity"])),
        tenant=row["tenant"],
    )


def progress_from_counts(counts: Iterable[tuple[str, str, int]]) -> Progress:
    """Progress from (service, status, n) counter rows; same shape as count_progress:
    every TaskStatus is a key of by_status and of each service's breakdown."""
    by_status = dict.fromkeys(TaskStatus, 0)
    by_service: dict[str, dict[TaskStatus, int]] = {}
    for service, status, n in counts:
        by_status[TaskStatus(status)] += n
        by_service.setdefault(service, dict.fromkeys(TaskStatus, 0))[TaskStatus(status)] += n
    return Progress(total=sum(by_status.values()), by_status=by_status, by_service=by_service)


def row_to_scenario(row: sqlite3.Row, progress: Progress) -> Scenario:
    return Scenario(
        id=row["id"],
        template=row["template"],
        params=loads(row["params"]),
        status=ScenarioStatus(row["status"]),
        progress=progress,
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        cancelled=bool(row["cancelled"]),
        idempotency_key=row["idempotency_key"],
        callback_url=row["callback_url"],
        request_digest=row["request_digest"],
        traceparent=row["traceparent"],
        tolerated_failures=row["tolerated"],
        lane=Lane(row["lane"]),
        tenant=row["tenant"],
    )


def row_to_event(row: sqlite3.Row) -> Event:
    return Event(
        id=str(row["id"]),
        scenario_id=row["scenario_id"],
        at=row["at"],
        task=row["task"],
        status=row["status"],
        attempt=row["attempt"],
    )


def encode_cursor(created_at: float, scenario_id: str) -> str:
    """Opaque position after a scenario in the newest-first listing."""
    raw = f"{created_at!r}|{scenario_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, sep, scenario_id = raw.partition("|")
        created_at = float(created)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ParamError(f"malformed cursor {cursor!r}", field="cursor") from None
    if not sep or not scenario_id or not math.isfinite(created_at):
        raise ParamError(f"malformed cursor {cursor!r}", field="cursor")
    return created_at, scenario_id


MAX_EVENT_ID = 2**63 - 1  # SQLite's largest INTEGER; a larger one cannot be bound


def decode_event_id(after: str) -> int:
    """An event id as stored: ASCII digits up to SQLite's largest integer (`int()` alone
    takes signs, underscores and non-ASCII digits, and a value SQLite cannot bind)."""
    if not (after.isascii() and after.isdigit()) or int(after) > MAX_EVENT_ID:
        raise ParamError(
            f"malformed event id {after!r}: expected an event id of this store "
            f"(an integer from 0 to {MAX_EVENT_ID})",
            field="after",
        )
    return int(after)
