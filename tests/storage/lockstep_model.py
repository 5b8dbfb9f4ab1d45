"""The reference model for the lockstep test: the lifecycle table of `core.transitions`
applied to plain dicts in memory, with the scenario rules of storage/base.py. It is the
oracle every store is compared with, so it is written for clarity, not speed: each
operation reads, asks core for the changes, and applies them one by one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from scenarist.core import ready_order
from scenarist.core import transition_changes as changes_of
from scenarist.core import transition_guards as guards
from scenarist.core import transitions as tr
from scenarist.core.errors import (
    ScenarioNotFoundError,
    ScenaristError,
    TaskNotFoundError,
)
from scenarist.core.gates import NO_GATES, Bucket, Gates, LeaseCounts, LeaseRoom
from scenarist.core.group_expansion import Instance, Step, complete_steps, released_names
from scenarist.core.lifecycle import count_progress, derive_scenario_status
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
from scenarist.core.rerun import RerunRequest, merged_payloads, rerun_plan, run_record
from scenarist.core.step_cache import CacheCount, CacheEntry, entry_of, ready_changes
from scenarist.core.tenants import NO_TENANTS, FairShare, Tenants, fair_walk
from scenarist.core.usage import Usage, UsageTotal, usage_hour
from scenarist.storage.base import CompletionItem

_TASK_ATTRS = {f.name for f in dataclasses.fields(Task)}


class ModelStore:
    """The parts of the Store protocol the lockstep test drives."""

    def __init__(self) -> None:
        self.scenarios: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, dict[str, Any]]] = {}  # scenario -> name -> fields
        self.events: dict[str, list[Event]] = {}
        self.services: set[str] = set()
        self.touched: list[str] = []
        self.usage: dict[tuple[float, str, str, str], float] = {}  # (hour, template, ...)
        self.history: dict[str, list[RunRecord]] = {}  # task id -> ended runs, newest first
        self.cache: dict[str, CacheEntry] = {}
        self.cache_hits: dict[str, list[int]] = {}  # service -> [hits, misses]
        self.buckets: dict[str, Bucket] = {}  # service -> token bucket (core/gates.py)
        self.passes: dict[tuple[str, str], float] = {}  # (service, tenant) -> pass (tenants.py)
        # scenario id -> group name -> the group's fields when it expanded (decision 63)
        self.expanded: dict[str, dict[str, dict[str, Any]]] = {}

    async def close(self) -> None:
        return None

    # --- records ------------------------------------------------------------------------

    def _task(self, task_id: str) -> dict[str, Any]:
        scenario_id, _, name = task_id.partition(":")
        found = self.tasks.get(scenario_id, {}).get(name)
        if found is None:
            raise TaskNotFoundError(task_id)
        return found

    def _public(self, fields: Mapping[str, Any], inputs: tuple[Any, ...] = ()) -> Task:
        values = {k: v for k, v in fields.items() if k in _TASK_ATTRS}
        values["status"] = TaskStatus(values["status"])
        values["tolerated"] = bool(values["tolerated"])
        values["cached"] = bool(values["cached"])
        values["depends_on"] = tuple(values["depends_on"])
        values["dependents"] = tuple(values["dependents"])
        return Task(**{**values, "inputs": inputs})

    def _scenario(self, scenario_id: str) -> Scenario:
        row = self.scenarios.get(scenario_id)
        if row is None:
            raise ScenarioNotFoundError(scenario_id)
        tasks = self.tasks[scenario_id].values()
        progress = count_progress((t["service"], TaskStatus(t["status"])) for t in tasks)
        growing = any(t["group_spec"] is not None and t["status"] in tr.NON_FINAL for t in tasks)
        progress = dataclasses.replace(progress, growing=growing)
        tolerated = sum(bool(t["tolerated"]) for t in tasks)
        return Scenario(progress=progress, tolerated_failures=tolerated, **row)

    def _inputs(self, fields: Mapping[str, Any]) -> tuple[Mapping[str, JSON], ...]:
        siblings = self.tasks[fields["scenario_id"]]
        return tuple(
            tr.parent_input(siblings[name], siblings[name]["result"])
            for name in fields["depends_on"]
        )

    # --- applying changes ---------------------------------------------------------------

    def _apply(self, scenario_id: str, changes: Sequence[Step], now: float) -> None:
        tasks = self.tasks[scenario_id]
        for change in changes:
            if isinstance(change, Instance):
                self._create(scenario_id, change, now)
                continue
            if change.rule == "expand_group":
                self.expanded.setdefault(scenario_id, {})[change.name] = dict(tasks[change.name])
                del tasks[change.name]
                continue
            fields = tasks[change.name]
            attempt = change.event_attempt(fields)
            fields.update(change.fields)
            if change.moves:
                fields["status"] = change.after
                self._event(scenario_id, now, change.name, change.after.value, attempt)
        if scenario_id not in self.touched:
            self.touched.append(scenario_id)

    def _create(self, scenario_id: str, instance: Instance, now: float) -> None:
        task = instance.task(scenario_id, now)
        fields = {a.name: getattr(task, a.name) for a in dataclasses.fields(Task)}
        fields.update(
            seq=instance.fields["seq"], waiting=instance.fields["waiting"], priority=task.priority
        )
        self.tasks[scenario_id][instance.name] = fields
        self._event(scenario_id, now, instance.name, instance.status.value, 0)

    def _event(self, scenario_id: str, at: float, task: str | None, status: str, n: int) -> None:
        events = self.events[scenario_id]
        events.append(Event(str(len(events) + 1), scenario_id, at, task, status, n))

    def _settle(self, now: float) -> None:
        for scenario_id in self.touched:
            row = self.scenarios[scenario_id]
            current = self._scenario(scenario_id)
            derived = derive_scenario_status(
                current.progress,
                started=row["started_at"] is not None,
                cancelled=row["cancelled"],
                tolerated=current.tolerated_failures,
            )
            if derived is not current.status:
                if derived.is_final and not current.status.is_final:
                    row["finished_at"] = now
                elif current.status.is_final and not derived.is_final:
                    row["finished_at"] = None
                row["status"] = derived
                self._event(scenario_id, now, None, derived.value, 0)
        self.touched = []

    def _count_usage(self, fields: Mapping[str, Any], usage: Usage | None, now: float) -> None:
        """The report goes into the hourly totals (in the step of its completion/failure)."""
        template = self.scenarios[fields["scenario_id"]]["template"]
        for name, amount in (usage or {}).items():
            key = (usage_hour(now), template, fields["service"], name)
            self.usage[key] = self.usage.get(key, 0.0) + amount

    async def usage_totals(self, *, since: float | None) -> list[UsageTotal]:
        return [
            UsageTotal(*key, value)
            for key, value in sorted(self.usage.items())
            if since is None or key[0] >= usage_hour(since)
        ]

    def _lookup(self, scenario_id: str) -> tr.Lookup:
        return self.tasks[scenario_id].get

    def _ready(self, scenario_id: str, names: Sequence[str], now: float) -> None:
        """The step cache's answer for tasks that just became ready (core/step_cache.py)."""
        changes = ready_changes(names, self._lookup(scenario_id), self.cache.get, now=now)
        for change in changes:
            if change.rule in ("cache_hit", "cache_miss"):
                service = self.tasks[scenario_id][change.name]["service"]
                counts = self.cache_hits.setdefault(service, [0, 0])
                counts[change.rule == "cache_miss"] += 1
        self._apply(scenario_id, changes, now)

    async def cache_counts(self) -> list[CacheCount]:
        return [CacheCount(s, *counts) for s, counts in sorted(self.cache_hits.items())]

    async def clear_cache(self, *, service: str | None) -> None:
        for key in [k for k, e in self.cache.items() if service in (None, e.service)]:
            del self.cache[key]

    # --- submit and read ----------------------------------------------------------------

    async def create_scenarios(
        self, batch: Sequence[tuple[Scenario, Sequence[Task]]]
    ) -> list[tuple[Scenario, bool]]:
        """Each item as create_scenario, in order (the stores do it in one call)."""
        return [await self.create_scenario(scenario, tasks) for scenario, tasks in batch]

    async def create_scenario(
        self, scenario: Scenario, tasks: Sequence[Task]
    ) -> tuple[Scenario, bool]:
        if scenario.id in self.scenarios:
            return self._scenario(scenario.id), False
        self.scenarios[scenario.id] = {
            "id": scenario.id,
            "template": scenario.template,
            "params": scenario.params,
            "status": ScenarioStatus.PENDING,
            "created_at": scenario.created_at,
            "started_at": None,
            "finished_at": None,
            "cancelled": False,
            "idempotency_key": scenario.idempotency_key,
            "callback_url": scenario.callback_url,
            "request_digest": scenario.request_digest,
            "traceparent": scenario.traceparent,
            "lane": scenario.lane,
            "tenant": scenario.tenant,
        }
        self.tasks[scenario.id] = {}
        for seq, task in enumerate(tasks):
            fields = {f.name: getattr(task, f.name) for f in dataclasses.fields(Task)}
            fields.update(
                seq=seq,
                waiting=len(set(task.depends_on)),
                lease_seconds=None,
                usage=None,
                priority=task.priority,  # as SQLite's column: instances read the lane from it
            )
            self.tasks[scenario.id][task.name] = fields
            self.services.add(task.service)
        self.events[scenario.id] = []
        self._event(scenario.id, scenario.created_at, None, "pending", 0)
        self.touched.append(scenario.id)
        roots = [t.name for t in tasks if t.status is TaskStatus.QUEUED]
        self._ready(scenario.id, roots, scenario.created_at)
        self._settle(scenario.created_at)
        return self._scenario(scenario.id), True

    async def get_scenario(self, scenario_id: str) -> Scenario:
        return self._scenario(scenario_id)

    async def list_tasks(self, scenario_id: str) -> list[Task]:
        self._scenario(scenario_id)
        ordered = sorted(self.tasks[scenario_id].values(), key=lambda t: t["seq"])
        return [self._public(t) for t in ordered]

    async def get_task(self, task_id: str) -> Task:
        return self._public(self._task(task_id))

    async def read_events(self, scenario_id: str, *, after: str | None, limit: int) -> list[Event]:
        self._scenario(scenario_id)
        start = 0 if after is None else int(after)
        return self.events[scenario_id][start : start + limit]

    async def tenant_stats(self, *, now: float) -> list[TenantStats]:
        counts: dict[str, list[int]] = {}
        for t in (t for tasks in self.tasks.values() for t in tasks.values()):
            ready = ready_order.is_ready(t, now)
            flying = t["status"] == TaskStatus.PROCESSING
            if ready or flying:
                entry = counts.setdefault(t["tenant"], [0, 0])
                entry[0] += ready
                entry[1] += flying
        return [TenantStats(name, *n) for name, n in sorted(counts.items())]

    async def queue_stats(self, *, now: float) -> list[QueueStats]:
        stats = []
        every = [t for tasks in self.tasks.values() for t in tasks.values()]
        for service in sorted(self.services):
            mine = [t for t in every if t["service"] == service]
            ready = [t for t in mine if ready_order.is_ready(t, now)]
            oldest = min((ready_order.ready_at(t) for t in ready), default=None)
            bucket = self.buckets.get(service)
            stats.append(
                QueueStats(
                    service=service,
                    ready=len(ready),
                    delayed=sum(t["status"] == TaskStatus.QUEUED for t in mine) - len(ready),
                    in_flight=sum(t["status"] == TaskStatus.PROCESSING for t in mine),
                    oldest_ready_age=None if oldest is None else max(0.0, now - oldest),
                    held=sum(self._held(t) for t in ready),
                    held_by_key=sum(self._held_by_key(t) and not self._held(t) for t in ready),
                    bucket_tokens=None if bucket is None else bucket.tokens,
                    bucket_at=None if bucket is None else bucket.at,
                )
            )
        return stats

    def _running(self, task: Mapping[str, Any]) -> int:
        """Processing tasks of the task's max_parallel group (decision 56)."""
        group = self.tasks[task["scenario_id"]].values()
        return sum(
            t["parallel_group"] == task["parallel_group"] and t["status"] == TaskStatus.PROCESSING
            for t in group
        )

    def _held(self, task: Mapping[str, Any]) -> bool:
        limit = task["max_parallel"]
        return limit is not None and self._running(task) >= limit

    # --- worker protocol ----------------------------------------------------------------

    async def lease(self, service: str, **options: Any) -> list[Task]:
        return await self.lease_services([service], **options)

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
        ready = sorted(
            (
                t
                for tasks in self.tasks.values()
                for t in tasks.values()
                if t["service"] in services and ready_order.is_ready(t, now) and not self._held(t)
            ),
            key=ready_order.ready_key,
        )
        streams: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for t in ready:
            streams.setdefault((t["service"], t["tenant"]), []).append(t)
        # The one lease rule (core/gates.py LeaseRoom): in the fair order (core/tenants.py),
        # each task admitted by its group, key, tenant and service gates, counting the
        # ones taken before it.
        room = LeaseRoom(gates, self._lease_counts(), now=now, labels=labels, tenants=tenants)
        share = FairShare(tenants, lambda service, tenant: self.passes.get((service, tenant)))
        taken: list[dict[str, Any]] = []

        def visit(t: Any) -> bool:
            if not room.admit(t):
                return False
            taken.append(t)
            return True

        fair_walk(streams, share, visit=visit, more=lambda: len(taken) < max_tasks)
        self.buckets.update(room.spent_buckets())
        self.passes.update(share.moved())
        leased = [
            self._take(t, "lease", lease_seconds=lease_seconds, worker_id=worker_id, now=now,
                       nonce=nonce)
            for t in taken
        ]  # fmt: skip
        self._settle(now)
        return leased

    def _processing(self) -> list[dict[str, Any]]:
        every = (t for tasks in self.tasks.values() for t in tasks.values())
        return [t for t in every if t["status"] == TaskStatus.PROCESSING]

    def _lease_counts(self) -> LeaseCounts:
        """Counted from the task statuses, like the stores (core/gates.py)."""
        return LeaseCounts(
            in_flight=lambda s: sum(t["service"] == s for t in self._processing()),
            key_running=lambda k: sum(t["concurrency_key"] == k for t in self._processing()),
            group_running=lambda sid, g: sum(
                (t["scenario_id"], t["parallel_group"]) == (sid, g) for t in self._processing()
            ),
            bucket=self.buckets.get,
            tenant_running=lambda n: sum(t["tenant"] == n for t in self._processing()),
        )

    def _held_by_key(self, fields: dict[str, Any]) -> bool:
        key = fields["concurrency_key"]
        running = sum(t["concurrency_key"] == key for t in self._processing())
        return key is not None and running >= fields["concurrency_limit"]

    def _take(self, fields: dict[str, Any], rule: str, **options: Any) -> Task:
        scenario_id = fields["scenario_id"]
        change = changes_of.lease_change(fields, rule=rule, **options)
        self._apply(scenario_id, [change], options["now"])
        row = self.scenarios[scenario_id]
        if row["started_at"] is None:
            row["started_at"] = options["now"]
        return self._public(fields, self._inputs(fields))

    async def claim(
        self,
        task_id: str,
        *,
        lease_seconds: float | None,
        worker_id: str | None,
        now: float,
        nonce: str,
    ) -> Task:
        fields = self._task(task_id)
        guards.check_claim(fields)
        guards.check_claim_room(fields, self._running(fields))
        task = self._take(
            fields, "claim", lease_seconds=lease_seconds, worker_id=worker_id, now=now, nonce=nonce
        )
        self._settle(now)
        return task

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None, now: float
    ) -> Task:
        fields = self._task(task_id)
        guards.check_heartbeat(fields, lease_token)
        change = changes_of.heartbeat_change(fields, lease_seconds=lease_seconds, now=now)
        fields.update(change.fields)
        return self._public(fields)

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
        fields = self._task(task_id)
        if guards.is_duplicate_completion(fields, lease_token):
            return Completion(task=self._public(fields), duplicate=True)
        guards.check_lease(fields, lease_token, TaskStatus.SUCCESS)
        scenario_id = fields["scenario_id"]
        tasks = self.tasks[scenario_id]
        steps = complete_steps(
            fields,
            self._lookup(scenario_id),
            result_ref=result_ref,
            result=result,
            now=now,
            usage=usage,
            payloads=payloads or {},
            next_seq=1 + max(t["seq"] for t in tasks.values()),
        )
        self._count_usage(fields, usage, now)
        entry = entry_of(fields, result_ref=result_ref, result=result, now=now)
        self._apply(scenario_id, steps, now)
        if entry is not None:
            self.cache[entry.key] = entry
        self._ready(scenario_id, released_names(steps), now)
        self._settle(now)
        released = tuple(f"{scenario_id}:{name}" for name in released_names(steps))
        return Completion(task=self._public(fields), released=released)

    async def complete_many(
        self, items: Sequence[CompletionItem], *, now: float
    ) -> list[Completion | ScenaristError]:
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
            except ScenaristError as exc:
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
        fields = self._task(task_id)
        guards.check_fail(fields, lease_token, attempt)
        self._end_attempt(fields, error=error, retry_at=retry_at, now=now, usage=usage)
        return self._public(fields)

    def _end_attempt(
        self,
        fields: dict[str, Any],
        *,
        error: str,
        retry_at: float | None,
        now: float,
        usage: Usage | None = None,
    ) -> None:
        scenario_id = fields["scenario_id"]
        changes = changes_of.fail_changes(
            fields,
            self._lookup(scenario_id),
            error=error,
            retry_at=retry_at,
            now=now,
            usage=usage,
        )
        self._count_usage(fields, usage, now)
        self._apply(scenario_id, changes, now)
        self._settle(now)

    async def find_expired(self, *, now: float, limit: int) -> list[Task]:
        expired = sorted(
            (
                t
                for tasks in self.tasks.values()
                for t in tasks.values()
                if t["status"] == TaskStatus.PROCESSING and t["lease_expires_at"] <= now
            ),
            key=lambda t: (t["lease_expires_at"], t["id"]),
        )
        return [self._public(t) for t in expired[:limit]]

    async def expire_lease(
        self, task_id: str, lease_token: str, *, retry_at: float | None, now: float
    ) -> Task | None:
        try:
            fields = self._task(task_id)
        except TaskNotFoundError:
            return None
        if not guards.can_expire(fields, lease_token, now):
            return None
        self._end_attempt(fields, error=tr.LEASE_EXPIRED_ERROR, retry_at=retry_at, now=now)
        return self._public(fields)

    async def hand_back(self, task_id: str, lease_token: str, *, now: float) -> Task | None:
        try:
            fields = self._task(task_id)
        except TaskNotFoundError:
            return None
        if not guards.can_hand_back(fields, lease_token):
            return None
        self._apply(fields["scenario_id"], [changes_of.hand_back_change(fields)], now)
        self._settle(now)
        return self._public(fields)

    # --- scenario control ---------------------------------------------------------------

    def _plan_order(self, scenario_id: str) -> list[dict[str, Any]]:
        return sorted(self.tasks[scenario_id].values(), key=lambda t: t["seq"])

    async def cancel_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        current = self._scenario(scenario_id)
        if not guards.check_cancel(scenario_id, current.status.value, current.cancelled):
            return current
        changes = changes_of.cancel_changes(self._plan_order(scenario_id), now=now)
        self._apply(scenario_id, changes, now)
        self.scenarios[scenario_id]["cancelled"] = True
        self._settle(now)
        return self._scenario(scenario_id)

    async def retry_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        current = self._scenario(scenario_id)
        tasks = self._plan_order(scenario_id)
        guards.check_retry(scenario_id, current.status.value, tasks)
        changes = changes_of.retry_changes(tasks, now=now)
        self._apply(scenario_id, changes, now)
        self._ready(scenario_id, [c.name for c in changes if c.rule == "retry_ready"], now)
        self.scenarios[scenario_id]["cancelled"] = False
        self._settle(now)
        return self._scenario(scenario_id)

    async def rerun_scenario(
        self, scenario_id: str, request: RerunRequest, *, now: float
    ) -> tuple[Scenario, tuple[str, ...]]:
        current = self._scenario(scenario_id)
        tasks = self.tasks[scenario_id]
        plan = rerun_plan(
            self._plan_order(scenario_id),
            request,
            scenario={
                "id": scenario_id,
                "status": current.status.value,
                "created_at": current.created_at,
            },
            payloads=merged_payloads(
                request, lambda n: tasks[n]["payload"] if n in tasks else None
            ),
            now=now,
            kept=self.expanded.get(scenario_id, {}),
        )
        self._apply(scenario_id, plan.cancels, now)
        for name in plan.archive:
            fields = tasks[name]
            runs = self.history.setdefault(fields["id"], [])
            runs.insert(0, run_record(fields, payload=fields["payload"], result=fields["result"]))
            del runs[request.history_limit :]
        for change in plan.removed:  # row remove_instance: no event
            self.history.pop(tasks.pop(change.name)["id"], None)
        for restore in plan.restored:  # row collapse_group
            group = self.expanded[scenario_id].pop(restore.name)
            group.update(
                status=TaskStatus.PENDING, waiting=restore.waiting, no_cache=restore.no_cache
            )
            tasks[restore.name] = group
            self._event(scenario_id, now, restore.name, "pending", group["attempt"])
        self._apply(scenario_id, plan.changes, now)
        self.scenarios[scenario_id]["cancelled"] = False
        self._settle(now)
        return self._scenario(scenario_id), plan.tasks

    async def task_history(self, task_id: str) -> list[RunRecord]:
        self._task(task_id)
        return list(self.history.get(task_id, []))
