"""`SqliteStore`: the embedded, zero-setup `Store` (stdlib sqlite3, WAL).

All database work runs on one dedicated thread (a single-worker executor): the event loop
never blocks on disk, and this process's writes are serialised. Every store method is one
transaction (BEGIN IMMEDIATE for writes) that re-checks its preconditions, so it is atomic
also against other processes that open the same file; BEGIN IMMEDIATE plus busy_timeout
make those wait their turn. Long polls (`watch_ready`, `watch_events`) are woken
in-process only: a write made by another process is noticed when the poll times out.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from scenarist.core.errors import (
    ConflictError,
    ExpansionRequiredError,
    NotFoundError,
    ScenaristError,
    StoreUnavailableError,
)
from scenarist.core.gates import NO_GATES, Gates
from scenarist.core.model import (
    JSON,
    Completion,
    Event,
    QueueStats,
    RunRecord,
    Scenario,
    ScenarioStatus,
    Task,
    TenantStats,
)
from scenarist.core.rerun import RerunRequest
from scenarist.core.step_cache import CacheCount
from scenarist.core.tenants import NO_TENANTS, Tenants
from scenarist.core.usage import Usage, UsageTotal
from scenarist.core.workers import WorkerRecord, WorkerSighting
from scenarist.storage.base import CompletionItem
from scenarist.storage.sqlite import cache_ops, history, reads, scenario_ops, task_ops, workers
from scenarist.storage.sqlite.notify import events_key, ready_key
from scenarist.storage.sqlite.schema import connect
from scenarist.storage.sqlite.transitions import Changes
from scenarist.storage.watch import Watch, WatchHub

T = TypeVar("T")
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0
MEMORY = ":memory:"


class SqliteStore:
    """Open with `await SqliteStore.open(path)`; close with `await store.close()`."""

    def __init__(
        self, path: str, executor: ThreadPoolExecutor, conn: sqlite3.Connection, retention: float
    ) -> None:
        self.path = path
        self.retention_seconds = retention
        self._executor = executor
        self._conn: sqlite3.Connection | None = conn
        self._watches = WatchHub()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        synchronous: str = "NORMAL",
    ) -> SqliteStore:
        """Open (creating file, parent directories and schema as needed) the database."""
        location = str(path)
        if location != MEMORY:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scenarist-sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(
                executor, lambda: connect(location, synchronous=synchronous)
            )
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StoreUnavailableError(f"cannot open sqlite store {location}: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(location, executor, conn, retention_seconds)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    # --- transactions on the DB thread --------------------------------------------------

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(op, write=False, changes=Changes())

    async def _write(self, op: Callable[[sqlite3.Connection, Changes], T]) -> T:
        """Run `op` in BEGIN IMMEDIATE; after it commits, wake the long polls it concerns
        (from a done-callback, so a cancelled caller does not swallow the wake-up)."""
        changes = Changes()
        return await self._run(lambda conn: op(conn, changes), write=True, changes=changes)

    async def _run(
        self, op: Callable[[sqlite3.Connection], T], *, write: bool, changes: Changes
    ) -> T:
        conn = self._conn
        if conn is None:
            raise StoreUnavailableError(f"sqlite store {self.path} is closed")
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(
                self._executor, lambda: self._transaction(conn, op, write)
            )
        except RuntimeError as exc:  # executor already shut down by close()
            raise StoreUnavailableError(f"sqlite store {self.path} is closed") from exc
        if write:
            future.add_done_callback(lambda done: self._wake(done, changes))
        return await future

    def _transaction(
        self, conn: sqlite3.Connection, op: Callable[[sqlite3.Connection], T], write: bool
    ) -> T:
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = op(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:  # e.g. a scenario id that already exists
            raise ConflictError(f"sqlite store {self.path} refused a write: {exc}") from exc
        except (sqlite3.OperationalError, sqlite3.DatabaseError, sqlite3.ProgrammingError) as exc:
            # Locked beyond busy_timeout, disk I/O error, file gone, closed connection:
            # the request may be retried later.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreUnavailableError(f"sqlite store {self.path} is unavailable: {exc}") from exc
        return result

    def _wake(self, done: asyncio.Future[T], changes: Changes) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        self._watches.notify(ready_key(service) for service in changes.ready_services)
        self._watches.notify(events_key(scenario_id) for scenario_id in changes.scenarios)

    # --- submit and read ----------------------------------------------------------------

    async def create_scenario(
        self, scenario: Scenario, tasks: Sequence[Task]
    ) -> tuple[Scenario, bool]:
        return await self._write(
            lambda conn, changes: scenario_ops.create_scenario(conn, changes, scenario, tasks)
        )

    async def create_scenarios(
        self, batch: Sequence[tuple[Scenario, Sequence[Task]]]
    ) -> list[tuple[Scenario, bool]]:
        return await self._write(
            lambda conn, changes: [
                scenario_ops.create_scenario(conn, changes, scenario, tasks)
                for scenario, tasks in batch
            ]
        )

    async def get_scenario(self, scenario_id: str) -> Scenario:
        return await self._read(lambda conn: reads.get_scenario(conn, scenario_id))

    async def list_tasks(self, scenario_id: str) -> list[Task]:
        return await self._read(lambda conn: reads.list_tasks(conn, scenario_id))

    async def get_task(self, task_id: str) -> Task:
        return await self._read(lambda conn: reads.get_task(conn, task_id))

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        return await self._read(lambda conn: reads.get_tasks(conn, task_ids))

    async def list_scenarios(
        self,
        *,
        status: ScenarioStatus | None,
        template: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Scenario], str | None]:
        return await self._read(
            lambda conn: reads.list_scenarios(
                conn, status=status, template=template, cursor=cursor, limit=limit
            )
        )

    async def read_events(self, scenario_id: str, *, after: str | None, limit: int) -> list[Event]:
        return await self._read(
            lambda conn: reads.read_events(conn, scenario_id, after=after, limit=limit)
        )

    async def queue_stats(self, *, now: float) -> list[QueueStats]:
        return await self._read(lambda conn: reads.queue_stats(conn, now=now))

    async def tenant_stats(self, *, now: float) -> list[TenantStats]:
        return await self._read(lambda conn: reads.tenant_stats(conn, now=now))

    async def usage_totals(self, *, since: float | None) -> list[UsageTotal]:
        return await self._read(lambda conn: reads.usage_totals(conn, since=since))

    # --- worker protocol ----------------------------------------------------------------

    async def lease(
        self,
        service: str,
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
        return await self.lease_services(
            [service],
            max_tasks=max_tasks,
            lease_seconds=lease_seconds,
            worker_id=worker_id,
            now=now,
            nonce=nonce,
            gates=gates,
            labels=labels,
            tenants=tenants,
        )

    async def lease_services(
        self,
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
        return await self._write(
            lambda conn, changes: task_ops.lease(
                conn,
                changes,
                services,
                max_tasks=max_tasks,
                lease_seconds=lease_seconds,
                worker_id=worker_id,
                now=now,
                nonce=nonce,
                gates=gates,
                labels=labels,
                tenants=tenants,
            )
        )

    async def claim(
        self,
        task_id: str,
        *,
        lease_seconds: float | None,
        worker_id: str | None,
        now: float,
        nonce: str,
    ) -> Task:
        return await self._write(
            lambda conn, changes: task_ops.claim(
                conn,
                changes,
                task_id,
                lease_seconds=lease_seconds,
                worker_id=worker_id,
                now=now,
                nonce=nonce,
            )
        )

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None, now: float
    ) -> Task:
        return await self._write(
            lambda conn, changes: task_ops.heartbeat(
                conn, changes, task_id, lease_token, lease_seconds=lease_seconds, now=now
            )
        )

    async def complete(
        self,
        task_id: str,
        lease_token: str | None,
        *,
        result_ref: str | None,
        result: Mapping[str, JSON] | None,
        now: float,
        usage: Usage | None = None,
        payloads: Mapping[str, Sequence[JSON]] | None = None,
    ) -> Completion:
        return await self._write(
            lambda conn, changes: task_ops.complete(
                conn,
                changes,
                task_id,
                lease_token,
                result_ref=result_ref,
                result=result,
                now=now,
                usage=usage,
                payloads=payloads or {},
            )
        )

    async def complete_many(
        self, items: Sequence[CompletionItem], *, now: float
    ) -> list[Completion | ScenaristError]:
        """One transaction per item: writes are serialised on the store's thread anyway."""
        outcomes: list[Completion | ScenaristError] = []
        for item in items:
            try:
                outcomes.append(
                    await self.complete(
                        item.task_id,
                        item.lease_token,
                        result_ref=item.result_ref,
                        result=item.result,
                        now=now,
                        usage=item.usage,
                        payloads=item.payloads,
                    )
                )
            except (ConflictError, NotFoundError, ExpansionRequiredError) as exc:
                outcomes.append(exc)
        return outcomes

    async def fail(
        self,
        task_id: str,
        lease_token: str | None,
        *,
        attempt: int,
        error: str,
        retry_at: float | None,
        now: float,
        usage: Usage | None = None,
    ) -> Task:
        return await self._write(
            lambda conn, changes: task_ops.fail(
                conn,
                changes,
                task_id,
                lease_token,
                attempt=attempt,
                error=error,
                retry_at=retry_at,
                now=now,
                usage=usage,
            )
        )

    async def find_expired(self, *, now: float, limit: int) -> list[Task]:
        return await self._read(lambda conn: task_ops.find_expired(conn, now=now, limit=limit))

    async def expire_lease(
        self, task_id: str, lease_token: str, *, retry_at: float | None, now: float
    ) -> Task | None:
        return await self._write(
            lambda conn, changes: task_ops.expire_lease(
                conn, changes, task_id, lease_token, retry_at=retry_at, now=now
            )
        )

    async def hand_back(self, task_id: str, lease_token: str, *, now: float) -> Task | None:
        return await self._write(
            lambda conn, changes: task_ops.hand_back(conn, changes, task_id, lease_token, now=now)
        )

    # --- scenario control ---------------------------------------------------------------

    async def record_worker(self, sighting: WorkerSighting, *, now: float) -> None:
        await self._write(lambda conn, _: workers.record_worker(conn, sighting, now=now))

    async def touch_worker(self, worker_id: str, *, now: float) -> None:
        await self._write(lambda conn, _: workers.touch_worker(conn, worker_id, now=now))

    async def list_workers(
        self, *, forget_before: float, count_in_flight: bool = True
    ) -> list[WorkerRecord]:
        return await self._write(
            lambda conn, _: workers.list_workers(
                conn, forget_before=forget_before, count_in_flight=count_in_flight
            )
        )

    async def cancel_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        return await self._write(
            lambda conn, changes: scenario_ops.cancel_scenario(conn, changes, scenario_id, now=now)
        )

    async def retry_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        return await self._write(
            lambda conn, changes: scenario_ops.retry_scenario(conn, changes, scenario_id, now=now)
        )

    async def rerun_scenario(
        self, scenario_id: str, request: RerunRequest, *, now: float
    ) -> tuple[Scenario, tuple[str, ...]]:
        return await self._write(
            lambda conn, changes: scenario_ops.rerun_scenario(
                conn, changes, scenario_id, request, now=now
            )
        )

    async def task_history(self, task_id: str) -> list[RunRecord]:
        return await self._read(lambda conn: history.task_history(conn, task_id))

    # --- scenario-end callbacks (outbox) ------------------------------------------------

    async def claim_due_callbacks(
        self, *, now: float, limit: int, lease_seconds: float
    ) -> list[Scenario]:
        return await self._write(
            lambda conn, _: scenario_ops.claim_due_callbacks(
                conn, now=now, limit=limit, lease_seconds=lease_seconds
            )
        )

    async def finish_callback(self, scenario_id: str, *, retry_at: float | None) -> None:
        await self._write(
            lambda conn, _: scenario_ops.finish_callback(conn, scenario_id, retry_at=retry_at)
        )

    # --- waiting and maintenance --------------------------------------------------------

    async def watch_ready(self, services: Sequence[str]) -> Watch:
        return self._watches.watch(ready_key(service) for service in services)

    async def watch_events(self, scenario_id: str) -> Watch:
        return self._watches.watch([events_key(scenario_id)])

    async def cache_counts(self) -> list[CacheCount]:
        return await self._read(cache_ops.cache_counts)

    async def clear_cache(self, *, service: str | None) -> None:
        return await self._write(lambda conn, _: cache_ops.clear_cache(conn, service=service))

    async def sweep_cache(self, *, now: float, limit: int) -> int:
        return await self._write(lambda conn, _: cache_ops.sweep_cache(conn, now=now, limit=limit))

    async def purge_finished(self, *, now: float, limit: int) -> int:
        before = now - self.retention_seconds
        return await self._write(
            lambda conn, _: scenario_ops.purge_finished(conn, before=before, limit=limit)
        )
