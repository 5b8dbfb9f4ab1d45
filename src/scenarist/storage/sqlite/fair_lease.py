"""The lease's walk when the catalog has tenants (core/tenants.py, decision 79): each
(service, tenant)'s ready rows read page by page in ready order over the index
tasks_ready_by_tenant, walked in the fair order, each row admitted by the gates; the
passes the walk moved are stored in the same transaction (table fair_passes)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from scenarist.core.gates import Gates, LeaseCounts, LeaseRoom
from scenarist.core.tenants import FairShare, Tenants, fair_walk

PAGE = 64
# The tenants with queued tasks of a service: a skip scan of tasks_ready_by_tenant, one
# index seek per tenant (a DISTINCT would read every queued row of the service).
TENANTS_QUEUED = """
WITH RECURSIVE queued (tenant) AS (
    SELECT MIN(tenant) FROM tasks WHERE service = ?1 AND status = 'queued'
    UNION ALL
    SELECT (SELECT MIN(tenant) FROM tasks
            WHERE service = ?1 AND status = 'queued' AND tenant > queued.tenant)
    FROM queued WHERE queued.tenant IS NOT NULL
)
SELECT tenant FROM queued WHERE tenant IS NOT NULL
"""


def tenant_rows(
    conn: sqlite3.Connection,
    ready_query: str,
    service: str,
    tenant: str,
    *,
    now: float,
    first: int,
) -> Iterator[sqlite3.Row]:
    """The tenant's ready rows of the service in ready order, `first` rows, then a page
    at a time (a lease of one task reads one row per tenant unless it passes some)."""
    query = ready_query.replace("WHERE service = ?", "WHERE service = ? AND tenant = ?")
    query = query.replace("LIMIT ?", "LIMIT ? OFFSET ?")
    offset, size = 0, first
    while True:
        rows = conn.execute(query, (service, tenant, now, size, offset)).fetchall()
        yield from rows
        if len(rows) < size:
            return
        offset, size = offset + size, PAGE


def fair_rows(
    conn: sqlite3.Connection,
    ready_query: str,
    services: Sequence[str],
    counts: LeaseCounts,
    *,
    gates: Gates,
    tenants: Tenants,
    now: float,
    max_tasks: int,
    labels: Mapping[str, str],
    candidate: Callable[[sqlite3.Row], Any],
) -> tuple[list[sqlite3.Row], LeaseRoom]:
    """The rows the lease takes, in the fair order, and the room that admitted them."""
    room = LeaseRoom(gates, counts, now=now, labels=labels, tenants=tenants)
    share = FairShare(tenants, lambda service, tenant: stored_pass(conn, service, tenant))
    streams = {
        (service, row["tenant"]): tenant_rows(
            conn, ready_query, service, row["tenant"], now=now, first=min(max_tasks, PAGE)
        )
        for service in services
        if room.service_room(service) != 0
        for row in conn.execute(TENANTS_QUEUED, (service,))
    }
    taken: list[sqlite3.Row] = []

    def visit(row: sqlite3.Row) -> bool:
        if not room.admit(candidate(row)):
            return False
        taken.append(row)
        return True

    fair_walk(streams, share, visit=visit, more=lambda: len(taken) < max_tasks)
    for (service, tenant), value in share.moved().items():
        conn.execute(
            "INSERT INTO fair_passes (service, tenant, pass) VALUES (?, ?, ?) "
            "ON CONFLICT (service, tenant) DO UPDATE SET pass = excluded.pass",
            (service, tenant, value),
        )
    return taken, room


def stored_pass(conn: sqlite3.Connection, service: str, tenant: str) -> float | None:
    row = conn.execute(
        "SELECT pass FROM fair_passes WHERE service = ? AND tenant = ?", (service, tenant)
    ).fetchone()
    return None if row is None else float(row[0])
