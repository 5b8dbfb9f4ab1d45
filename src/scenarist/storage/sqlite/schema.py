"""The SQLite schema and connection settings.

Indexes exist for the hot paths: `tasks_ready` serves `lease` (ready tasks of one service
in ready order, a partial index over queued rows only), `tasks_in_flight` serves the
reaper, `task_counts` makes a scenario's progress a handful of rows instead of a scan of
its tasks, and the `scenarios_by_*` indexes serve newest-first listings with filters.

`tasks.waiting` counts a task's parents that have not succeeded yet, so completing a parent
releases a fan-in dependent by decrementing one counter instead of re-reading all of its
parents (which made completing the P parents of a join cost O(P^2)).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 15
BUSY_TIMEOUT_MS = 10_000  # other processes writing the same file wait this long at most
SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

CACHE_DDL = """-- The step cache (core/step_cache.py): one entry per key, written in the step of the
-- success it records. The maintenance tick deletes expired ones (a lookup ignores them
-- anyway). Hits and misses per service, counted in the steps that looked up.
CREATE TABLE IF NOT EXISTS cache_entries (
    key TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    task_id TEXT NOT NULL,
    result_ref TEXT,
    result TEXT,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cache_entries_by_expiry ON cache_entries (expires_at);
CREATE TABLE IF NOT EXISTS cache_counts (
    service TEXT PRIMARY KEY,
    hits INTEGER NOT NULL DEFAULT 0,
    misses INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

DDL = (
    """
CREATE TABLE IF NOT EXISTS scenarios (
    id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    idempotency_key TEXT UNIQUE,
    callback_url TEXT,
    callback_due_at REAL,
    request_digest TEXT,
    traceparent TEXT,
    tolerated INTEGER NOT NULL DEFAULT 0,
    lane TEXT NOT NULL DEFAULT 'normal',
    tenant TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS scenarios_by_created ON scenarios (created_at, id);
CREATE INDEX IF NOT EXISTS scenarios_by_status ON scenarios (status, created_at, id);
CREATE INDEX IF NOT EXISTS scenarios_by_template ON scenarios (template, created_at, id);
CREATE INDEX IF NOT EXISTS scenarios_finished
    ON scenarios (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS scenarios_callbacks_due
    ON scenarios (callback_due_at) WHERE callback_due_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    payload TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    dependents TEXT NOT NULL,
    level INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    timeout_seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    available_at REAL,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    lease_token TEXT,
    lease_expires_at REAL,
    lease_seconds REAL,
    worker_id TEXT,
    result_ref TEXT,
    result TEXT,
    error TEXT,
    waiting INTEGER NOT NULL DEFAULT 0,
    usage TEXT,
    need INTEGER,
    optional INTEGER NOT NULL DEFAULT 0,
    tolerated INTEGER,
    group_spec TEXT,
    join_spec TEXT,
    max_parallel INTEGER,
    parallel_group TEXT,
    run INTEGER NOT NULL DEFAULT 1,
    runs INTEGER NOT NULL DEFAULT 1,
    no_cache INTEGER NOT NULL DEFAULT 0,
    cache_ttl INTEGER,
    cache_key TEXT,
    cached INTEGER,
    cached_from TEXT,
    concurrency_key TEXT,
    concurrency_limit INTEGER,
    affinity TEXT,
    tenant TEXT NOT NULL DEFAULT 'default',
    ready_at REAL GENERATED ALWAYS AS (COALESCE(available_at, queued_at)) VIRTUAL
);
CREATE INDEX IF NOT EXISTS tasks_by_scenario ON tasks (scenario_id, seq);
CREATE INDEX IF NOT EXISTS tasks_ready
    ON tasks (service, priority DESC, ready_at, id, available_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS tasks_parallel
    ON tasks (scenario_id, parallel_group, status) WHERE parallel_group IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_in_flight
    ON tasks (lease_expires_at, id) WHERE status = 'processing';
CREATE INDEX IF NOT EXISTS tasks_by_concurrency_key
    ON tasks (concurrency_key, status) WHERE concurrency_key IS NOT NULL;

-- A rate-limited service's token bucket (core/gates.py): tokens left at time `at`.
CREATE TABLE IF NOT EXISTS rate_buckets (
    service TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS task_counts (
    scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (scenario_id, service, status)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    at REAL NOT NULL,
    task TEXT,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_scenario ON events (scenario_id, id);

-- Every service that ever had a task, so queue_stats lists idle services too.
CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY) WITHOUT ROWID;

-- Usage reported per hour, template, service and name (core/usage.py), kept when
-- retention deletes the scenarios, like a Prometheus counter.
CREATE TABLE IF NOT EXISTS usage_totals (
    hour REAL NOT NULL,
    template TEXT NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (hour, template, service, name)
) WITHOUT ROWID;

"""
    + CACHE_DDL
)

# The workers registry (core/workers.py): each worker's last lease, first and last seen.
WORKERS_TABLE = """
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY,
    services TEXT NOT NULL,
    labels TEXT NOT NULL,
    sdk_version TEXT,
    poll_seconds REAL NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
) WITHOUT ROWID
"""
DDL += WORKERS_TABLE + ";"

# Tenants' fair share (core/tenants.py, decision 79): each (service, tenant)'s pass, and
# each service's virtual time under the tenant ''. Written only when the catalog has
# tenants; a lease of a tenant's rows walks tasks_ready_by_tenant.
TENANTS_DDL = (
    """CREATE TABLE IF NOT EXISTS fair_passes (
    service TEXT NOT NULL,
    tenant TEXT NOT NULL,
    pass REAL NOT NULL,
    PRIMARY KEY (service, tenant)
) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS tasks_ready_by_tenant
    ON tasks (service, tenant, priority DESC, ready_at, id, available_at)
    WHERE status = 'queued'""",
)
DDL += ";".join(TENANTS_DDL) + ";"

# The runs a rerun ended (decision 60), the last `history_limit` of each task; they go
# with their scenario (the purge deletes the scenario row).
HISTORY_DDL = (
    """
    CREATE TABLE IF NOT EXISTS task_runs (
        task_id TEXT NOT NULL,
        run INTEGER NOT NULL,
        scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        worker_id TEXT,
        queued_at REAL,
        started_at REAL,
        finished_at REAL,
        result_ref TEXT,
        result TEXT,
        error TEXT,
        PRIMARY KEY (task_id, run)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS task_runs_by_scenario ON task_runs (scenario_id)",
)

# Version 1 -> 2: add `tasks.waiting` and fill it from the parents' current statuses (a task
# id is "<scenario_id>:<name>", so a parent's row is found from the child's depends_on).
MIGRATE_V1_TO_V2 = (
    "ALTER TABLE tasks ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0",
    """
    UPDATE tasks SET waiting = (
        SELECT count(*) FROM (SELECT DISTINCT value FROM json_each(tasks.depends_on)) AS dep
        JOIN tasks AS parent ON parent.id = tasks.scenario_id || ':' || dep.value
        WHERE parent.status != 'success'
    )
    WHERE depends_on != '[]'
    """,
)

# Version 2 -> 3: the lease length a worker asked for, so heartbeats renew that length.
MIGRATE_V2_TO_V3 = ("ALTER TABLE tasks ADD COLUMN lease_seconds REAL",)
# Version 3 -> 4: `scenarios.request_digest` (an idempotency key's request digest; older
# scenarios have none).
MIGRATE_V3_TO_V4 = ("ALTER TABLE scenarios ADD COLUMN request_digest TEXT",)
# Version 4 -> 5: what tasks' attempts reported (`tasks.usage`, JSON) and the hourly totals;
# the scenario's trace context (`scenarios.traceparent`; older scenarios have none).
MIGRATE_V4_TO_V5 = (
    "ALTER TABLE tasks ADD COLUMN usage TEXT",
    "ALTER TABLE scenarios ADD COLUMN traceparent TEXT",
    """
    CREATE TABLE IF NOT EXISTS usage_totals (
        hour REAL NOT NULL,
        template TEXT NOT NULL,
        service TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (hour, template, service, name)
    ) WITHOUT ROWID
    """,
)
# Version 5 -> 6: joins and optional tasks: a task's `need` (successes among its parents
# it needs; NULL: all), `optional`, whether its failure was `tolerated`, and the
# scenario's count of tolerated failures. Older tasks keep today's rule (NULL, 0).
MIGRATE_V5_TO_V6 = (
    "ALTER TABLE tasks ADD COLUMN need INTEGER",
    "ALTER TABLE tasks ADD COLUMN optional INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tasks ADD COLUMN tolerated INTEGER",
    "ALTER TABLE scenarios ADD COLUMN tolerated INTEGER NOT NULL DEFAULT 0",
)
# Version 6 -> 7: `for_each` groups run: an unexpanded group keeps its unrendered spec
# (`group_spec`, JSON), a task below one keeps its join (`join_spec`, JSON) until the
# group expands. `max_parallel` / `parallel_group`: at most that many tasks of the group
# processing at once (checked by the lease's query). Older tasks are none of these (NULL).
MIGRATE_V6_TO_V7 = (
    "ALTER TABLE tasks ADD COLUMN group_spec TEXT",
    "ALTER TABLE tasks ADD COLUMN join_spec TEXT",
    "ALTER TABLE tasks ADD COLUMN max_parallel INTEGER",
    "ALTER TABLE tasks ADD COLUMN parallel_group TEXT",
    "CREATE INDEX IF NOT EXISTS tasks_parallel ON tasks (scenario_id, parallel_group, status) "
    "WHERE parallel_group IS NOT NULL",
)
# Version 7 -> 8: the workers registry (one row per worker id; older files had none).
MIGRATE_V7_TO_V8 = (WORKERS_TABLE,)

# Version 8 -> 9: reruns (decision 60): a task's current `run`, the `runs` its history
# shows, the run's `no_cache` flag, and the ended runs in `task_runs`. Older tasks are in
# their first run.
MIGRATE_V8_TO_V9 = (
    "ALTER TABLE tasks ADD COLUMN run INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE tasks ADD COLUMN runs INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE tasks ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0",
    *HISTORY_DDL,
)

# Version 9 -> 10: the step cache: a task's entry lifetime (`cache_ttl`; NULL: not cached),
# the key it was looked up with, whether its success came from the cache and from which
# task; the entries and the hit/miss counts. Older tasks are not cached (NULL).
MIGRATE_V9_TO_V10 = (
    "ALTER TABLE tasks ADD COLUMN cache_ttl INTEGER",
    "ALTER TABLE tasks ADD COLUMN cache_key TEXT",
    "ALTER TABLE tasks ADD COLUMN cached INTEGER",
    "ALTER TABLE tasks ADD COLUMN cached_from TEXT",
    *(statement for statement in CACHE_DDL.split(";") if statement.strip()),
)

# Version 10 -> 11: lease-time gates (core/gates.py): a task's rendered `concurrency_key`
# and its limit (older tasks have none: NULL), the index that counts processing tasks per
# key, and the services' token buckets. A service's processing tasks are counted over
# tasks_in_flight (as many as there are leases): one more index on every status change
# would cost each lease and completion more than the count saves.)
MIGRATE_V10_TO_V11 = (
    "ALTER TABLE tasks ADD COLUMN concurrency_key TEXT",
    "ALTER TABLE tasks ADD COLUMN concurrency_limit INTEGER",
    "CREATE INDEX IF NOT EXISTS tasks_by_concurrency_key ON tasks (concurrency_key, status) "
    "WHERE concurrency_key IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS rate_buckets (service TEXT PRIMARY KEY, tokens REAL NOT NULL, "
    "at REAL NOT NULL) WITHOUT ROWID",
)

# Version 11 -> 12: an expanded `for_each` group's row as it was when it expanded (decision
# 63), so a rerun of the task it expanded from can bring the group back; it goes with its
# scenario. Older files kept none: their expanded groups cannot be brought back.
EXPANDED_GROUPS_DDL = """
CREATE TABLE IF NOT EXISTS expanded_groups (
    scenario_id TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (scenario_id, name)
) WITHOUT ROWID
"""
MIGRATE_V11_TO_V12 = (EXPANDED_GROUPS_DDL,)

# Version 12 -> 13: a scenario's priority lane (decision 77). Its tasks carry the lane in
# their `priority` (the normal lane keeps the seed's 0-4), so older rows need no change.
MIGRATE_V12_TO_V13 = ("ALTER TABLE scenarios ADD COLUMN lane TEXT NOT NULL DEFAULT 'normal'",)
# Version 13 -> 14: a task's worker affinity (decision 78), its rendered `requires`,
# `prefers` and `prefer_wait` as JSON; NULL (older rows): any worker.
MIGRATE_V13_TO_V14 = ("ALTER TABLE tasks ADD COLUMN affinity TEXT",)
# Version 14 -> 15: a scenario's tenant on it and on its tasks (decision 79), and the
# passes of the tenants' fair share; older rows are the default tenant's.
MIGRATE_V14_TO_V15 = (
    "ALTER TABLE scenarios ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    *TENANTS_DDL,
)
MIGRATIONS = {
    1: MIGRATE_V1_TO_V2,
    2: MIGRATE_V2_TO_V3,
    3: MIGRATE_V3_TO_V4,
    4: MIGRATE_V4_TO_V5,
    5: MIGRATE_V5_TO_V6,
    6: MIGRATE_V6_TO_V7,
    7: MIGRATE_V7_TO_V8,
    8: MIGRATE_V8_TO_V9,
    9: MIGRATE_V9_TO_V10,
    10: MIGRATE_V10_TO_V11,
    11: MIGRATE_V11_TO_V12,
    12: MIGRATE_V12_TO_V13,
    13: MIGRATE_V13_TO_V14,
    14: MIGRATE_V14_TO_V15,
}


def connect(path: str, *, synchronous: str) -> sqlite3.Connection:
    """Open a connection in autocommit mode: every store method opens its own transaction
    explicitly (BEGIN IMMEDIATE for writes), so nothing is left open between calls."""
    mode = synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}, got {mode!r}")
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {mode}")
    conn.execute("PRAGMA foreign_keys = ON")
    apply_schema(conn)
    return conn


def apply_schema(conn: sqlite3.Connection) -> None:
    """Create the tables once; several processes opening the same file at the same time
    serialise on BEGIN IMMEDIATE and the later ones find the schema already there."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"database schema version {version} is newer than this build ({SCHEMA_VERSION})"
            )
        if version == 0:
            for statement in (*DDL.split(";"), *HISTORY_DDL, EXPANDED_GROUPS_DDL):
                if statement.strip():
                    conn.execute(statement)
        else:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
