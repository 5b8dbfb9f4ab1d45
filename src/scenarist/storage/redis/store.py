"""`Store` on Redis: one Lua script per atomic operation (see lua/ and keys.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis.asyncio import Redis

from scenarist.core.errors import (
    NotRunnableError,
    ParallelLimitError,
    ScenarioNotFoundError,
    ScenaristError,
    TaskNotFoundError,
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
    TaskStatus,
    TenantStats,
)
from scenarist.core.rerun import RerunRequest
from scenarist.core.step_cache import CacheCount, served_at_submit
from scenarist.core.tenants import NO_TENANTS, Tenants
from scenarist.core.transitions import LEASE_EXPIRED_ERROR
from scenarist.core.usage import Usage, UsageTotal
from scenarist.core.workers import WorkerRecord, WorkerSighting
from scenarist.storage.base import CompletionItem
from scenarist.storage.redis import completions, reads, rerun, step_cache, workers
from scenarist.storage.redis.codec import (
    decode_scenario,
    decode_task,
    dump_json,
    opt,
    task_index,
    ts,
)
from scenarist.storage.redis.connect import connect
from scenarist.storage.redis.failures import (
    check_control_outcome,
    check_task_outcome,
    locate,
    translate_errors,
)
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.notifier import Notifier
from scenarist.storage.redis.pool import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT_SECONDS,
    PoolLimits,
)
from scenarist.storage.redis.scripts import Scripts
from scenarist.storage.redis.shard_lease import Leaser
from scenarist.storage.redis.submit import Submitter
from scenarist.storage.watch import Watch

DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0


def as_stored(scenario: Scenario, tasks: Sequence[Task]) -> Scenario:
    """The scenario as a read gives it back: its total is growing while a group waits."""
    growing = any(t.dynamic and not t.status.is_final for t in tasks)
    if growing == scenario.progress.growing:
        return scenario
    return dataclasses.replace(
        scenario, progress=dataclasses.replace(scenario.progress, growing=growing)
    )


def refuse_unrunnable(scenario: Scenario, tasks: Sequence[Task], *, shards: int) -> None:
    """A `concurrency` key runs on one Redis node only (decision 68: its count lives in a
    shard): on Redis Cluster such a plan is refused, the task named, never run as if the
    key were absent."""
    if shards == 1:
        return
    for task in tasks:
        if task.concurrency_key is not None:
            raise NotRunnableError(
                f"scenario {scenario.template!r}, task {task.name!r}: Redis Cluster does "
                "not run concurrency keys (a single Redis node and SQLite do)",
                field="scenario",
            )


class RedisStore:
    """Scenarios, tasks, queues and events in Redis. Build it with `await RedisStore.open()`."""

    def __init__(
        self,
        client: Redis,
        space: KeySpace,
        scripts: Scripts,
        notifier: Notifier,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self._client = client
        self._space = space
        self._scripts = scripts
        self._notifier = notifier
        self._listing = reads.ScenarioListing(client, space)
        self._leaser = Leaser(client, space, scripts)
        self._submitter = Submitter(client, space, scripts, retention_seconds)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        publish_lists: bool = False,
        list_prefix: str = "",
        key_prefix: str = "scenarist",
        shard_count: int | None = None,
        wait_replicas: int | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT_SECONDS,
    ) -> RedisStore:
        """Connect (lazily: an unreachable server fails the first call, not this one).
        `publish_lists` pushes ready tasks onto plain lists for seed workers; those lists
        live outside the shard hash tag, so it needs single-node Redis and one shard.
        `redis+cluster://` URLs open Redis Cluster (see cluster.py: `shard_count` defaults
        to 16 there, `wait_replicas` confirms each state change on replicas). At most
        `max_connections` connections per node; a call that finds them all busy waits
        up to `pool_timeout` seconds for one (see pool.py)."""
        parts = connect(
            url,
            common_args=(ts(retention_seconds), "1" if publish_lists else "0", list_prefix),
            publish_lists=publish_lists,
            key_prefix=key_prefix,
            shard_count=shard_count,
            wait_replicas=wait_replicas,
            pool=PoolLimits(max_connections, pool_timeout),
        )
        return cls(
            parts.client,
            parts.space,
            parts.scripts,
            parts.notifier,
            retention_seconds=retention_seconds,
        )

    @property
    def key_space(self) -> KeySpace:
        return self._space

    @property
    def client(self) -> Redis:
        return self._client

    async def close(self) -> None:
        await self._notifier.close()
        await self._client.aclose()

    @translate_errors
    async def ping(self) -> None:
        await self._client.ping()

    # --- submit and read ----------------------------------------------------------------

    @translate_errors
    async def create_scenario(
        self, scenario: Scenario, tasks: Sequence[Task]
    ) -> tuple[Scenario, bool]:
        refuse_unrunnable(scenario, tasks, shards=self._space.shard_count)
        sid, created = await self._submitter.create(scenario, tasks)
        if created and not served_at_submit(tasks):
            # Stored exactly as given (the script derives the same status and counters),
            # so reading it back would only cost a round trip on the submit path.
            return as_stored(scenario, tasks), True
        return await self.get_scenario(sid), created

    @translate_errors
    async def create_scenarios(
        self, batch: Sequence[tuple[Scenario, Sequence[Task]]]
    ) -> list[tuple[Scenario, bool]]:
        for scenario, tasks in batch:  # the whole batch: an outcome per item is a success
            refuse_unrunnable(scenario, tasks, shards=self._space.shard_count)
        outcomes = await self._submitter.create_many(batch)
        # Read back: the existing ones, and new ones whose roots the cache may have served.
        reread = [
            sid
            for (_, tasks), (sid, created) in zip(batch, outcomes, strict=True)
            if not created or served_at_submit(tasks)
        ]
        found = await reads.get_scenarios(self._client, self._space, reread)
        return [
            (found[sid], created) if sid in found else (as_stored(scenario, tasks), True)
            for (scenario, tasks), (sid, created) in zip(batch, outcomes, strict=True)
        ]

    @translate_errors
    async def get_scenario(self, scenario_id: str) -> Scenario:
        fields = await self._read_hash(self._space.for_scenario(scenario_id).scenario(scenario_id))
        if not fields:
            raise ScenarioNotFoundError(scenario_id)
        return decode_scenario(scenario_id, fields)

    async def _read_hash(self, key: str) -> dict[str, str]:
        return cast(dict[str, str], await self._client.hgetall(key))

    @translate_errors
    async def list_tasks(self, scenario_id: str) -> list[Task]:
        shard = self._space.for_scenario(scenario_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.exists(shard.scenario(scenario_id))
            pipe.hgetall(shard.tasks(scenario_id))
            exists, records = await pipe.execute()
        if not exists:
            raise ScenarioNotFoundError(scenario_id)
        ordered = sorted(records.items(), key=lambda item: task_index(item[1]))
        return [decode_task(scenario_id, name, raw) for name, raw in ordered]

    @translate_errors
    async def get_task(self, task_id: str) -> Task:
        sid, name = locate(task_id)
        raw = cast(
            str | None, await self._client.hget(self._space.for_scenario(sid).tasks(sid), name)
        )
        if raw is None:
            raise TaskNotFoundError(task_id)
        return decode_task(sid, name, raw)

    @translate_errors
    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        return await reads.get_tasks(self._client, self._space, task_ids)

    @translate_errors
    async def list_scenarios(
        self,
        *,
        status: ScenarioStatus | None,
        template: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Scenario], str | None]:
        return await self._listing.page(
            status=status, template=template, cursor=cursor, limit=limit
        )

    @translate_errors
    async def read_events(self, scenario_id: str, *, after: str | None, limit: int) -> list[Event]:
        shard = self._space.for_scenario(scenario_id)
        return await reads.read_events(self._client, shard, scenario_id, after=after, limit=limit)

    @translate_errors
    async def tenant_stats(self, *, now: float) -> list[TenantStats]:
        rows = [
            await self._scripts.run("tenant_stats", [s.prefix, s.services], [ts(now)])
            for s in self._space.shards()
        ]
        return reads.tenant_stats(rows)

    @translate_errors
    async def queue_stats(self, *, now: float) -> list[QueueStats]:
        rows = [
            await self._scripts.run("stats", [s.prefix, s.services, s.in_flight], [ts(now)])
            for s in self._space.shards()
        ]
        stats = reads.queue_stats(rows, now=now)
        if self._space.shard_count == 1:
            return stats
        # On a cluster the buckets live in the services' gate slots (gate_slots.py).
        buckets = await self._leaser.buckets([q.service for q in stats])
        return [
            q
            if q.service not in buckets
            else dataclasses.replace(
                q, bucket_tokens=buckets[q.service][0], bucket_at=buckets[q.service][1]
            )
            for q in stats
        ]

    @translate_errors
    async def usage_totals(self, *, since: float | None) -> list[UsageTotal]:
        return await reads.usage_totals(self._client, self._space, since=since)

    # --- worker protocol ----------------------------------------------------------------

    @translate_errors
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
        """In ready order across every shard of the service (see shard_lease.py)."""
        args = (opt(lease_seconds), opt(worker_id), ts(now), nonce, dump_json(labels or {}))
        return await self._leaser.lease(
            [service], max_tasks, args, now=now, gates=gates, lease_seconds=lease_seconds,
            tenants=tenants,
        )  # fmt: skip

    @translate_errors
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
        """One script per shard over every listed service (lease_many.lua)."""
        unique = list(dict.fromkeys(services))
        args = (opt(lease_seconds), opt(worker_id), ts(now), nonce, dump_json(labels or {}))
        return await self._leaser.lease(
            unique, max_tasks, args, now=now, gates=gates, lease_seconds=lease_seconds,
            tenants=tenants,
        )  # fmt: skip

    @translate_errors
    async def claim(
        self,
        task_id: str,
        *,
        lease_seconds: float | None,
        worker_id: str | None,
        now: float,
        nonce: str,
    ) -> Task:
        sid, name = locate(task_id)
        outcome = await self._run_task_script(
            "claim", sid, [name, opt(lease_seconds), opt(worker_id), ts(now), nonce]
        )
        if outcome[0] == "full":
            raise ParallelLimitError(task_id, outcome[2], int(outcome[1]))
        check_task_outcome(outcome, task_id, TaskStatus.PROCESSING)
        return decode_task(sid, name, outcome[1], outcome[2])

    @translate_errors
    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None, now: float
    ) -> Task:
        sid, name = locate(task_id)
        outcome = await self._run_task_script(
            "heartbeat", sid, [name, lease_token, opt(lease_seconds), ts(now)]
        )
        check_task_outcome(outcome, task_id, TaskStatus.PROCESSING)
        return decode_task(sid, name, outcome[1])

    @translate_errors
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
        item = CompletionItem(
            task_id, lease_token, result_ref, result, usage=usage, payloads=payloads or {}
        )
        [done] = await self.complete_many([item], now=now)
        if isinstance(done, ScenaristError):
            raise done
        return done

    @translate_errors
    async def complete_many(
        self, items: Sequence[CompletionItem], *, now: float
    ) -> list[Completion | ScenaristError]:
        """One complete.lua call per shard (see completions.py); the cache entries they
        wrote are then copied to the other shards (step_cache.py)."""
        outcomes = await completions.complete_many(self._scripts, self._space, items, now=now)
        await step_cache.copy_entries(self._client, self._space, outcomes, now=now)
        return outcomes

    @translate_errors
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
        sid, name = locate(task_id)
        reported = opt(dump_json(dict(usage))) if usage else ""
        outcome = await self._run_task_script(
            "fail",
            sid,
            [name, opt(lease_token), attempt, error, opt(retry_at), ts(now), reported],
        )
        check_task_outcome(outcome, task_id, TaskStatus.FAILED)
        return decode_task(sid, name, outcome[1])

    @translate_errors
    async def find_expired(self, *, now: float, limit: int) -> list[Task]:
        return await reads.find_expired(self._client, self._space, now=now, limit=limit)

    @translate_errors
    async def expire_lease(
        self, task_id: str, lease_token: str, *, retry_at: float | None, now: float
    ) -> Task | None:
        sid, name = locate(task_id)
        outcome = await self._run_task_script(
            "expire", sid, [name, lease_token, opt(retry_at), ts(now), LEASE_EXPIRED_ERROR]
        )
        return None if outcome[0] == "none" else decode_task(sid, name, outcome[1])

    @translate_errors
    async def hand_back(self, task_id: str, lease_token: str, *, now: float) -> Task | None:
        try:
            sid, name = locate(task_id)
        except TaskNotFoundError:
            return None
        outcome = await self._run_task_script("hand_back", sid, [name, lease_token, ts(now)])
        return None if outcome[0] == "none" else decode_task(sid, name, outcome[1])

    async def _run_task_script(self, operation: str, sid: str, args: list[str | int]) -> Any:
        keys = self._space.for_scenario(sid).scenario_keys(sid)
        return await self._scripts.run(operation, keys, [sid, *args])

    # --- scenario control ---------------------------------------------------------------

    @translate_errors
    async def record_worker(self, sighting: WorkerSighting, *, now: float) -> None:
        await workers.record_worker(self._client, self._space, sighting, now=now)

    @translate_errors
    async def touch_worker(self, worker_id: str, *, now: float) -> None:
        await workers.touch_worker(self._client, self._space, worker_id, now=now)

    @translate_errors
    async def list_workers(
        self, *, forget_before: float, count_in_flight: bool = True
    ) -> list[WorkerRecord]:
        return await workers.list_workers(
            self._client,
            self._space,
            forget_before=forget_before,
            count_in_flight=count_in_flight,
        )

    @translate_errors
    async def cancel_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        outcome = await self._run_task_script("cancel", scenario_id, [ts(now)])
        check_control_outcome(outcome, scenario_id, "cancel")
        return await self.get_scenario(scenario_id)

    @translate_errors
    async def retry_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        outcome = await self._run_task_script("retry", scenario_id, [ts(now)])
        check_control_outcome(outcome, scenario_id, "retry")
        return await self.get_scenario(scenario_id)

    @translate_errors
    async def rerun_scenario(
        self, scenario_id: str, request: RerunRequest, *, now: float
    ) -> tuple[Scenario, tuple[str, ...]]:
        again = await rerun.rerun(
            self._client, self._space, self._scripts, scenario_id, request, ts(now)
        )
        return await self.get_scenario(scenario_id), again

    @translate_errors
    async def task_history(self, task_id: str) -> list[RunRecord]:
        return await rerun.task_history(self._client, self._space, task_id)

    # --- scenario-end callbacks (outbox) ------------------------------------------------

    @translate_errors
    async def claim_due_callbacks(
        self, *, now: float, limit: int, lease_seconds: float
    ) -> list[Scenario]:
        due: list[Scenario] = []
        for shard in self._space.shards():
            if len(due) >= limit:
                break
            ids = await self._scripts.run(
                "callbacks_claim",
                [shard.prefix, shard.outbox],
                [ts(now), limit - len(due), ts(lease_seconds)],
            )
            for sid in ids:
                fields = await self._read_hash(shard.scenario(sid))
                if fields:
                    due.append(decode_scenario(sid, fields))
                else:  # expired by retention before delivery: nothing left to report
                    await self.finish_callback(sid, retry_at=None)
        return due

    @translate_errors
    async def finish_callback(self, scenario_id: str, *, retry_at: float | None) -> None:
        shard = self._space.for_scenario(scenario_id)
        await self._scripts.run(
            "callbacks_finish", [shard.prefix, shard.outbox], [scenario_id, opt(retry_at)]
        )

    # --- waiting and maintenance --------------------------------------------------------

    async def watch_ready(self, services: Sequence[str]) -> Watch:
        return await self._notifier.watch([self._space.ready_channel(s) for s in services])

    async def watch_events(self, scenario_id: str) -> Watch:
        return await self._notifier.watch([self._space.events_channel(scenario_id)])

    @translate_errors
    async def cache_counts(self) -> list[CacheCount]:
        return await step_cache.cache_counts(self._client, self._space)

    @translate_errors
    async def clear_cache(self, *, service: str | None) -> None:
        await step_cache.clear_cache(self._scripts, self._space, service=service)

    async def sweep_cache(self, *, now: float, limit: int) -> int:
        """Entries expire natively (their TTL), so nothing is deleted here."""
        return 0

    @translate_errors
    async def purge_finished(self, *, now: float, limit: int) -> int:
        """Retention is native (PEXPIRE when a scenario becomes final), so nothing is
        deleted here; this maintenance tick promotes due delayed tasks instead, so retried
        tasks reach publish_lists consumers and waiters even when nobody leases."""
        await self._leaser.promote(self._space.shards(), now)
        return 0
