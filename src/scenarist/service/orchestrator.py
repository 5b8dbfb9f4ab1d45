"""Use cases: the only place that decides task and scenario state transitions.

Stores apply each decision atomically and re-check its preconditions (storage/base.py);
this module chooses retry-or-fail, backoff delays, lease lengths, ids and timestamps.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from scenarist.core.affinity import unreachable
from scenarist.core.errors import (
    BadGroupResultError,
    ConflictError,
    ExpansionRequiredError,
    NotFoundError,
    ParamError,
    RenderError,
    ScenaristError,
)
from scenarist.core.gates import NO_GATES, Gates, with_gates
from scenarist.core.model import (
    JSON,
    Completion,
    Event,
    Lane,
    QueueStats,
    RunRecord,
    Scenario,
    ScenarioPlan,
    ScenarioStatus,
    Task,
    TaskStatus,
)
from scenarist.core.rerun import RerunRequest
from scenarist.core.step_cache import CacheCount, served_at_submit
from scenarist.core.tenants import (
    DEFAULT_TENANT,
    NO_TENANTS,
    Tenants,
    TenantView,
    known_tenant,
    tenant_views,
)
from scenarist.core.usage import Usage, UsageTotal
from scenarist.service.attempt_spans import AttemptSpans
from scenarist.service.group_render import GroupRenderer
from scenarist.service.observer import FinishedScenarios, NullObserver, Observer
from scenarist.service.policy import Limits, RetryPolicy
from scenarist.service.records import build_records, new_scenario_id
from scenarist.service.run_stats import RunStats
from scenarist.service.submission import (
    Outcome,
    Submission,
    SubmitRequest,
    replay_of,
    submit_batch,
)
from scenarist.service.workers import WorkerRegistry
from scenarist.storage import base
from scenarist.storage.base import Store
from scenarist.storage.watch import Watch

CompletionItem = base.CompletionItem  # what the edges build for complete_many
# Has the caller of a long poll gone away (its connection closed)? Asked before and
# after each wait, never on an immediate answer (the hot path).
CallerGone = Callable[[], Awaitable[bool]]
log = logging.getLogger(__name__)
GATE_RECHECK_SECONDS = 0.2  # a long poll held back by a service's cap looks again this often
PREFER_RECHECK_MIN_SECONDS = 0.05  # ... and one that waits out a preferred task's wait


class Planner(Protocol):
    """What the service needs of a scenario catalog."""

    def plan(self, name: str, params: Mapping[str, Any]) -> ScenarioPlan: ...


class Orchestrator:
    def __init__(
        self,
        store: Store,
        catalog: Planner,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        retry_policy: RetryPolicy | None = None,
        limits: Limits | None = None,
        observer: Observer | None = None,
        new_id: Callable[[], str] = new_scenario_id,
        gates: Gates | None = None,
        tenants: Tenants | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        # The services' caps and rate limits, checked by the store inside every lease.
        self.gates: Gates = gates if gates is not None else getattr(catalog, "gates", NO_GATES)
        # The catalog's tenants: their weights share each service out (core/tenants.py).
        self.tenants: Tenants = (
            tenants if tenants is not None else getattr(catalog, "tenants", NO_TENANTS)
        )
        self.clock = clock
        self.rng = rng or random.Random()
        self.retry_policy = retry_policy or RetryPolicy()
        self.limits = limits or Limits()
        self.observer: Observer = observer or NullObserver()
        self.new_id = new_id
        self.spans: AttemptSpans | None = None  # set when tracing is on (decision 43)
        self.finished = FinishedScenarios()
        self.run_stats = RunStats()  # run times and worker slots seen here, for the ETA
        self._draining = False
        self._waiting: set[Watch] = set()  # the watches long polls are waiting on now
        self.groups = GroupRenderer(store)
        self.workers = WorkerRegistry(store, clock)

    # --- submit -------------------------------------------------------------------------

    def known_tenant(self, tenant: str, *, field: str) -> str:
        """`tenant` when the catalog names it (or it is `default`), else a ParamError."""
        if known_tenant(self.tenants, tenant):
            return tenant
        named = ", ".join([DEFAULT_TENANT, *sorted(self.tenants)])
        raise ParamError(f"unknown tenant {tenant!r}; the catalog's tenants: {named}", field=field)

    def plan(self, template: str, params: Mapping[str, Any]) -> ScenarioPlan:
        """Validate and expand without storing anything (dry run)."""
        return self.catalog.plan(template, params)

    async def submit(
        self,
        template: str,
        params: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        traceparent: str | None = None,
        lane: Lane = Lane.NORMAL,
        tenant: str = DEFAULT_TENANT,
    ) -> Submission:
        plan = self.catalog.plan(template, params)
        scenario, tasks = build_records(
            plan,
            scenario_id=self.new_id(),
            now=self.clock(),
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            traceparent=traceparent,
            lane=lane,
            tenant=self.known_tenant(tenant, field="tenant"),
        )
        stored, created = await self.store.create_scenario(scenario, tasks)
        if not created:
            if (error := replay_of(stored, scenario, idempotency_key)) is not None:
                raise error
            return Submission(stored, await self.store.list_tasks(stored.id), created=False)
        self.observer.scenario_submitted(stored)
        self.finished.report(stored, self.observer)  # a scenario without tasks ends at once
        if served_at_submit(tasks):  # the answer shows what the cache served
            return Submission(stored, await self.store.list_tasks(stored.id), created=True)
        return Submission(stored, tasks, created=True)

    async def submit_many(
        self,
        requests: Sequence[SubmitRequest],
    ) -> list[Outcome]:
        """Submit a batch in one store call: one outcome per request, in order (a
        Submission, or the ScenaristError that refused that item alone)."""
        return await submit_batch(self, requests)

    # --- worker protocol ----------------------------------------------------------------

    async def lease(
        self,
        service: str | Sequence[str],
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
        caller_gone: CallerGone | None = None,
        labels: Mapping[str, str] | None = None,
        sdk_version: str | None = None,
    ) -> list[Task]:
        """Take up to `max_tasks` ready tasks of `service` (or of any of several services,
        best first across them: see Store.lease_services); with `wait_seconds`, wait
        (without polling the store in a loop) until one is ready or the time is up.

        A long poll ends empty when `caller_gone` says its caller left before or during
        the wait, and tasks leased in the moment the caller was found gone are handed
        back at once (Store.hand_back: queued again, the attempt unused) instead of
        sitting out a lease nobody holds. `stop_waiting` (shutdown) ends every wait.
        The call records its worker (`labels`, `sdk_version`) in the workers registry."""
        services = [service] if isinstance(service, str) else list(dict.fromkeys(service))
        if not services:
            raise ParamError("services must name at least one service", field="services")
        self._check_batch(max_tasks, "max_tasks")
        lease_seconds = self._check_lease_seconds(lease_seconds)
        wait = min(max(wait_seconds, 0.0), self.limits.max_wait_seconds)
        await self.workers.leased(
            worker_id, services, labels=labels, sdk_version=sdk_version, poll_seconds=wait
        )
        deadline = time.monotonic() + wait
        labels = dict(labels or {})
        tasks = await self._lease_now(services, max_tasks, lease_seconds, worker_id, labels)
        while not tasks and (remaining := deadline - time.monotonic()) > 0:
            if self._draining or await is_gone(caller_gone):
                return []
            # Watch before re-checking: a task queued between the check and the wait
            # fires the watch, so the wait cannot sleep through it.
            with await self.store.watch_ready(services) as ready:
                tasks = await self._lease_now(services, max_tasks, lease_seconds, worker_id, labels)
                if not tasks:
                    timeout = min(remaining, self._recheck_seconds(services))
                    if (prefer := self._prefer_recheck(services)) is not None:
                        timeout = min(timeout, prefer)
                    await self.wait_unless_stopping(ready, timeout)
            if tasks and await is_gone(caller_gone):
                await self._hand_back(tasks)
                return []
        return tasks

    def _recheck_seconds(self, services: Sequence[str]) -> float:
        """How long a long poll waits before looking again. Room under a cap or a bucket
        comes back without a ready event (the end of an attempt wakes nobody: waking every
        waiter of a service at each end would cost ungated services a herd of empty
        leases), so a gated service is looked at again soon: at its next token, or every
        GATE_RECHECK_SECONDS under a cap (decision 69)."""
        wait = self.limits.recheck_seconds
        for service in services:
            gate = self.gates.get(service)
            if gate is None:
                continue
            if gate.max_in_flight is not None:
                wait = min(wait, GATE_RECHECK_SECONDS)
            if gate.rate_limit is not None:
                wait = min(wait, 1.0 / gate.rate_limit.per_second)
        return wait

    def _prefer_recheck(self, services: Sequence[str]) -> float | None:
        """A task preferring other workers' labels becomes this worker's when its wait
        runs out, with no ready event: the long poll looks again by then (decision 78)."""
        waits: Mapping[str, float] = getattr(self.catalog, "prefer_waits", {})
        found = [waits[s] for s in services if s in waits]
        if not found:
            return None
        return max(min(GATE_RECHECK_SECONDS, *found), PREFER_RECHECK_MIN_SECONDS)

    async def wait_unless_stopping(self, watch: Watch, timeout: float) -> None:
        """`watch.wait(timeout)`, cut short by `stop_waiting` (long polls, event streams)."""
        if self._draining:
            return
        self._waiting.add(watch)
        try:
            await watch.wait(timeout)
        finally:
            self._waiting.discard(watch)

    @property
    def stopping(self) -> bool:
        return self._draining

    def stop_waiting(self) -> None:
        """Shutdown: every long poll waiting now or starting later answers at once, with
        what is ready or with nothing, and every event stream ends, so no request is cut
        off mid-wait."""
        self._draining = True
        for watch in self._waiting:
            watch.fire()

    async def _hand_back(self, tasks: Sequence[Task]) -> None:
        now = self.clock()
        for task in tasks:
            if task.lease_token is None:
                continue
            await self.store.hand_back(task.id, task.lease_token, now=now)
            log.info(
                "handed back %s: the long poll's caller left before the answer",
                task.id,
                extra={"task_id": task.id, "scenario_id": task.scenario_id},
            )

    async def _lease_now(
        self,
        services: list[str],
        max_tasks: int,
        lease_seconds: float | None,
        worker_id: str | None,
        labels: Mapping[str, str],
    ) -> list[Task]:
        now = self.clock()
        options: dict[str, Any] = {
            "max_tasks": max_tasks,
            "lease_seconds": lease_seconds,
            "worker_id": worker_id,
            "now": now,
            "nonce": secrets.token_hex(8),
            "gates": self.gates,
            "labels": labels,
            "tenants": self.tenants,
        }
        if len(services) == 1:
            tasks = await self.store.lease(services[0], **options)
        else:
            tasks = await self.store.lease_services(services, **options)
        if tasks:
            self.observer.tasks_leased(tasks, now)
        return tasks

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None = None
    ) -> Task:
        lease_seconds = self._check_lease_seconds(lease_seconds)
        task = await self.store.heartbeat(
            task_id, lease_token, lease_seconds=lease_seconds, now=self.clock()
        )
        await self.workers.heartbeat(task.worker_id)
        return task

    async def complete(
        self,
        task_id: str,
        lease_token: str | None,
        *,
        result_ref: str | None,
        result: Mapping[str, JSON] | None = None,
        usage: Usage | None = None,
    ) -> Completion:
        spans = self.spans
        befores = await spans.read_before([task_id]) if spans else {}
        now = self.clock()
        done = await self.groups.complete(
            task_id, lease_token, result_ref=result_ref, result=result, usage=usage, now=now
        )
        if not done.duplicate:
            if spans is not None:
                await spans.completed(befores.get(task_id), now=now)
            self.observer.task_completed(done.task)
            self._attempt_ended(done.task, now)
            if not done.released:  # releasing a dependent means it goes on
                self.finished.suspect(done.task.scenario_id)
        return done

    async def complete_many(
        self, items: Sequence[base.CompletionItem]
    ) -> list[Completion | ScenaristError]:
        """Each item on its own: one stale item does not fail the others. The store
        applies them in order (the Redis store in one call per shard), so a repeated item
        reads as a duplicate."""
        self._check_batch(len(items), "items")
        spans = self.spans
        befores = await spans.read_before([i.task_id for i in items]) if spans else {}
        now = self.clock()
        outcomes = await self.store.complete_many(items, now=now)
        for i, item in enumerate(items):
            refused = outcomes[i]
            if isinstance(refused, ExpansionRequiredError):  # the item expands a group
                try:
                    outcomes[i] = await self.groups.complete(
                        item.task_id,
                        item.lease_token,
                        result_ref=item.result_ref,
                        result=item.result,
                        usage=item.usage,
                        now=now,
                        first_group=refused.group,
                    )
                except (ConflictError, NotFoundError, BadGroupResultError, RenderError) as exc:
                    outcomes[i] = exc
        for outcome in outcomes:
            if isinstance(outcome, Completion) and not outcome.duplicate:
                if spans is not None:
                    await spans.completed(befores.get(outcome.task.id), now=now)
                self.observer.task_completed(outcome.task)
                self._attempt_ended(outcome.task, now)
                if not outcome.released:
                    self.finished.suspect(outcome.task.scenario_id)
        return outcomes

    async def fail(
        self,
        task_id: str,
        lease_token: str | None,
        *,
        error: str,
        retryable: bool = True,
        usage: Usage | None = None,
    ) -> Task:
        """Retry with backoff while attempts remain (and the error is retryable), else
        fail for good and skip everything downstream."""
        # The store re-checks the lease (core.transitions.check_fail) in its atomic step,
        # including that the attempt read here is still current.
        task = await self.store.get_task(task_id)
        now = self.clock()
        retry_at = self._retry_at(task, now) if retryable else None
        failed = await self.store.fail(
            task_id,
            lease_token,
            attempt=task.attempt,
            error=error,
            retry_at=retry_at,
            now=now,
            usage=usage,
        )
        if self.spans is not None:
            await self.spans.ended(task, now=now, error=error, retry_at=retry_at)
        self.observer.task_failed(failed, final=retry_at is None)
        self._attempt_ended(task, now)
        if retry_at is None:
            self.finished.suspect(failed.scenario_id)
        return failed

    async def reap_expired(self) -> int:
        """Requeue (or fail for good) every task whose lease ran out; counts an attempt."""
        now = self.clock()
        expired = await self.store.find_expired(now=now, limit=self.limits.reap_batch)
        reaped = 0
        for task in expired:
            if task.lease_token is None:
                continue
            retry_at = self._retry_at(task, now)
            changed = await self.store.expire_lease(
                task.id, task.lease_token, retry_at=retry_at, now=now
            )
            if changed is not None:
                reaped += 1
                self._attempt_ended(task, now)
                if self.spans is not None:
                    await self.spans.expired(task, now=now, retry_at=retry_at)
                if changed.status is TaskStatus.FAILED:
                    self.observer.task_failed(changed, final=True)
                    self.finished.suspect(changed.scenario_id)
        if reaped:
            self.observer.leases_expired(reaped)
        return reaped

    # --- scenario control and reads -----------------------------------------------------

    async def cancel(self, scenario_id: str) -> Scenario:
        scenario = await self.store.cancel_scenario(scenario_id, now=self.clock())
        self.finished.report(scenario, self.observer)
        return scenario

    async def retry(self, scenario_id: str) -> Scenario:
        return await self.store.retry_scenario(scenario_id, now=self.clock())

    async def rerun(
        self,
        scenario_id: str,
        tasks: Sequence[str],
        *,
        payloads: Mapping[str, Mapping[str, JSON]],
        cancel_running: bool = False,
        no_cache: bool = False,
    ) -> tuple[Scenario, tuple[str, ...]]:
        """The named tasks and their dependents start a new run (decision 60)."""
        request = RerunRequest(
            tuple(tasks), payloads, cancel_running, no_cache, self.limits.history_limit
        )
        return await self.store.rerun_scenario(scenario_id, request, now=self.clock())

    async def task_history(self, task_id: str) -> list[RunRecord]:
        return await self.store.task_history(task_id)

    async def get_scenario(self, scenario_id: str) -> Scenario:
        return await self.store.get_scenario(scenario_id)

    async def list_tasks(self, scenario_id: str) -> list[Task]:
        return await self.store.list_tasks(scenario_id)

    async def get_task(self, task_id: str) -> Task:
        return await self.store.get_task(task_id)

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """Many tasks in one store read; absent ids are left out."""
        return await self.store.get_tasks(task_ids)

    async def list_scenarios(
        self,
        *,
        status: ScenarioStatus | None = None,
        template: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Scenario], str | None]:
        if not 1 <= limit <= self.limits.max_batch:
            raise ParamError(f"limit must be 1..{self.limits.max_batch}", field="limit")
        return await self.store.list_scenarios(
            status=status, template=template, cursor=cursor, limit=limit
        )

    async def read_events(
        self, scenario_id: str, *, after: str | None = None, limit: int = 500
    ) -> list[Event]:
        return await self.store.read_events(scenario_id, after=after, limit=limit)

    async def report_ended(self) -> int:
        """Tell the observer about scenarios that ended since the last call (see
        FinishedScenarios); the maintenance loop calls it every round."""
        return await self.finished.flush(self.store.get_scenario, self.observer)

    async def lease_traceparents(self, tasks: Sequence[Task]) -> dict[str, str]:
        """Each leased task's attempt `traceparent` (empty when tracing is off)."""
        return {} if self.spans is None else await self.spans.lease_traceparents(tasks)

    async def queue_stats(self) -> list[QueueStats]:
        """The store's statistics with each service's gates as they stand now: its cap,
        the tokens left, and the ready tasks the cap or the bucket holds back."""
        now = self.clock()
        stats = await self.store.queue_stats(now=now)
        return [with_gates(s, self.gates.get(s.service), now) for s in stats]

    async def tenant_stats(self) -> list[TenantView]:
        """Each tenant's ready and processing tasks with its weight and cap (decision 79);
        empty when the catalog has no tenants."""
        if not self.tenants:
            return []
        return tenant_views(await self.store.tenant_stats(now=self.clock()), self.tenants)

    async def affinity_warnings(self, stats: Sequence[QueueStats]) -> dict[str, list[str]]:
        """Per service with queued tasks: the task templates whose `requires` no live
        worker of the service has (decision 78), from the workers registry."""
        requirements: Mapping[str, Any] = getattr(self.catalog, "requirements", {})
        queued = [s.service for s in stats if s.ready + s.delayed > 0 and s.service in requirements]
        if not queued:
            return {}
        live = [
            (v.record.services, v.record.labels) for v in await self.workers.list() if not v.stale
        ]
        return unreachable(requirements, live, queued)

    async def usage_totals(self, *, since: float | None = None) -> list[UsageTotal]:
        return await self.store.usage_totals(since=since)

    async def cache_counts(self) -> list[CacheCount]:
        return await self.store.cache_counts()

    async def clear_cache(self, *, service: str | None = None) -> None:
        await self.store.clear_cache(service=service)

    # --- helpers ------------------------------------------------------------------------

    def _attempt_ended(self, task: Task, now: float) -> None:
        """An attempt this process ended: its run time (from `task` as leased) goes to
        the metrics and the ETA's statistics, counted once, by the process that ended it."""
        if task.started_at is None:
            return
        seconds = max(0.0, now - task.started_at)
        self.observer.attempt_ended(task.service, seconds)
        self.run_stats.observe_run(task.service, seconds)

    def _retry_at(self, task: Task, now: float) -> float | None:
        if task.attempt >= task.max_attempts:
            return None
        return now + self.retry_policy.delay(task.attempt, self.rng)

    def _check_batch(self, n: int, field: str) -> None:
        if not 1 <= n <= self.limits.max_batch:
            raise ParamError(f"{field} must be 1..{self.limits.max_batch}, got {n}", field=field)

    def _check_lease_seconds(self, lease_seconds: float | None) -> float | None:
        if lease_seconds is None:
            return None
        low, high = self.limits.min_lease_seconds, self.limits.max_lease_seconds
        if not low <= lease_seconds <= high:
            raise ParamError(
                f"lease_seconds must be {low:g}..{high:g}, got {lease_seconds:g}",
                field="lease_seconds",
            )
        return lease_seconds


async def is_gone(caller_gone: CallerGone | None) -> bool:
    return caller_gone is not None and await caller_gone()
