"""The step cache in SQLite (core/step_cache.py): lookups for the tasks a transaction made
ready, the entry a cached task's completion writes, the counts, the clear and the sweep.

`make_ready` and `write_entry` run inside the transaction of the step they belong to
(submit, completion, retry), so an entry exists exactly when its success does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from scenarist.core.model import JSON
from scenarist.core.step_cache import CacheCount, CacheEntry, entry_of, ready_changes
from scenarist.core.transitions import TaskFields
from scenarist.storage.sqlite.rows import dumps, loads
from scenarist.storage.sqlite.transitions import Changes, ScenarioTasks, apply_changes


def make_ready(
    conn: sqlite3.Connection,
    changes: Changes,
    tasks: ScenarioTasks,
    names: Iterable[str],
    *,
    now: float,
) -> None:
    """Rows cache_hit / cache_miss (and the releases of the hits) for `names`, the tasks
    this transaction just made ready; `tasks` reads them as the step left them."""
    moves = ready_changes(names, tasks.get, lambda key: _entry(conn, key), now=now)
    if not moves:
        return
    counts: dict[str, list[int]] = {}
    for move in moves:
        if move.rule in ("cache_hit", "cache_miss"):
            fields = tasks.get(move.name)
            assert fields is not None
            counted = counts.setdefault(fields["service"], [0, 0])
            counted[move.rule == "cache_miss"] += 1
    apply_changes(conn, changes, tasks, moves, now=now)
    conn.executemany(
        "INSERT INTO cache_counts (service, hits, misses) VALUES (?, ?, ?) "
        "ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, "
        "misses = misses + excluded.misses",
        [(service, hits, misses) for service, (hits, misses) in counts.items()],
    )


def write_entry(
    conn: sqlite3.Connection,
    task: TaskFields,
    *,
    result_ref: str | None,
    result: Mapping[str, JSON] | None,
    now: float,
) -> None:
    """The entry of `task`'s success (none unless it is cached and was looked up); the
    latest success of a key replaces an earlier one."""
    entry = entry_of(task, result_ref=result_ref, result=result, now=now)
    if entry is None:
        return
    conn.execute(
        "INSERT OR REPLACE INTO cache_entries "
        "(key, service, task_id, result_ref, result, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            entry.key,
            entry.service,
            entry.task_id,
            entry.result_ref,
            None if entry.result is None else dumps(dict(entry.result)),
            entry.expires_at,
        ),
    )


def _entry(conn: sqlite3.Connection, key: str) -> CacheEntry | None:
    row = conn.execute("SELECT * FROM cache_entries WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    return CacheEntry(
        key=row["key"],
        service=row["service"],
        task_id=row["task_id"],
        result_ref=row["result_ref"],
        result=None if row["result"] is None else loads(row["result"]),
        expires_at=row["expires_at"],
    )


def cache_counts(conn: sqlite3.Connection) -> list[CacheCount]:
    rows = conn.execute("SELECT service, hits, misses FROM cache_counts ORDER BY service")
    return [CacheCount(row["service"], row["hits"], row["misses"]) for row in rows]


def clear_cache(conn: sqlite3.Connection, *, service: str | None) -> None:
    if service is None:
        conn.execute("DELETE FROM cache_entries")
    else:
        conn.execute("DELETE FROM cache_entries WHERE service = ?", (service,))


def sweep_cache(conn: sqlite3.Connection, *, now: float, limit: int) -> int:
    """Delete up to `limit` expired entries (a lookup already ignores them)."""
    return conn.execute(
        "DELETE FROM cache_entries WHERE key IN "
        "(SELECT key FROM cache_entries WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
        (now, limit),
    ).rowcount
