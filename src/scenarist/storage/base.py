"""The `Store` protocol: what a backend must persist, atomically, for the service layer.

The service layer (`scenarist.service`) decides every transition that needs a decision
(retry or fail for good, backoff delays, lease lengths, ids, timestamps) and passes the
outcome in. A backend applies each call as ONE atomic step (one Lua script in Redis, one
transaction in SQLite) and re-checks the preconditions inside that step, so concurrent
calls cannot interleave. The dependency rule itself ("a pending task becomes queued when
every parent succeeded; a failed or cancelled parent skips its transitive dependents")
lives inside the atomic step too, because a fan-in must be released exactly once.

Conventions every backend follows (the conformance suite in tests/storage checks them):
- Lease tokens are `f"{nonce}.{attempt}"`; a lease increments `attempt`.
- Each state change appends an `Event` for the scenario and updates the scenario's
  per-status / per-service counters in the same atomic step.
- The scenario's status is derived after every change: `cancelled` once cancelled;
  otherwise while any task is non-final it is `running` if any task was ever leased
  (started_at set) else `pending`; once every task is final it is `success` when every
  task succeeded or its failure was tolerated (`tolerated_failures`: a failed or skipped
  task that is optional, or whose dependents all still run; see
  core/transition_changes.py LossCascade), or there are no tasks, else `failed`.
  `finished_at` is set when it becomes final, cleared again by `retry_scenario` and
  `rerun_scenario`.
- `inputs` of a leased task: one mapping per parent, in `depends_on` order,
  `{"task": name, "status": ..., "result_ref": ..., "result": ...}`; a parent that did
  not succeed (a join or `optional` let the task run) has `"error"` and no result
  (`core.transitions.parent_input`).
- A queued task with `available_at > now` (retry backoff) is not leasable yet.
- `usage` reported with a completion or failure is added to the task's `usage` and, in
  the same atomic step, to the store's hourly totals (`core/usage.py`); a duplicate
  completion adds nothing.
- Ready order inside a service: higher priority (the lane's offset + `min(level, 4)`,
  `core.model.queue_priority`: interactive, then normal, then batch) first, then older
  (`available_at`, else `queued_at`), then task id. A lease of several services
  (`lease_services`) uses the same order across all of them. With the catalog's tenants,
  a lane's ready tasks are shared out across tenants first (core/tenants.py), each
  tenant's in that order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from scenarist.core.errors import ScenaristError
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
from scenarist.storage.watch import Watch


@dataclass(frozen=True, slots=True)
class CompletionItem:
    """One completion of a batch (`Store.complete_many`); fields as in `Store.complete`."""

    task_id: str
    lease_token: str | None
    result_ref: str | None
    result: Mapping[str, JSON] | None = None
    # Keyword-only: two optional mappings after `result` are too easy to swap.
    usage: Usage | None = field(default=None, kw_only=True)
    # Rendered instances of the `for_each` groups this completion may release (see
    # core.group_expansion); empty for a task with no dynamic dependent.
    payloads: Mapping[str, Sequence[JSON]] = field(default_factory=dict, kw_only=True)


class Store(Protocol):
    """Persistence for scenarios and tasks. All methods may raise StoreUnavailableError."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailableError otherwise."""

    # --- submit and read ----------------------------------------------------------------

    async def create_scenario(
        self, scenario: Scenario, tasks: Sequence[Task]
    ) -> tuple[Scenario, bool]:
        """Persist a new scenario and all its tasks (statuses already decided: roots
        `queued` with `queued_at`, others `pending`). If `scenario.idempotency_key` is set
        and a scenario with that key exists, persist nothing and return (existing, False);
        otherwise return (stored, True). Atomic: either every task exists or none."""

    async def create_scenarios(
        self, batch: Sequence[tuple[Scenario, Sequence[Task]]]
    ) -> list[tuple[Scenario, bool]]:
        """`create_scenario` for every item, answered in order, in as few round trips as
        the store allows (one transaction; one script call per Redis shard). Each
        scenario is atomic on its own; an item whose idempotency key an earlier item of
        the same batch took answers (that scenario, False)."""

    async def get_scenario(self, scenario_id: str) -> Scenario:
        """Raise ScenarioNotFoundError when absent (or expired by retention)."""

    async def list_tasks(self, scenario_id: str) -> list[Task]:
        """Every task of the scenario in plan (topological) order; inputs left empty.
        Raise ScenarioNotFoundError when the scenario is absent."""

    async def get_task(self, task_id: str) -> Task:
        """Raise TaskNotFoundError when absent (a malformed id is simply absent)."""

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks of `task_ids` (of any scenarios) by id, read in one go; absent ones
        (malformed ids included) are left out, repeated ones appear once. Inputs empty."""

    async def list_scenarios(
        self,
        *,
        status: ScenarioStatus | None,
        template: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Scenario], str | None]:
        """Newest first. Returns (page, next_cursor); next_cursor is None on the last page.
        The cursor is opaque to callers; a malformed cursor raises ParamError(field=cursor)."""

    async def read_events(self, scenario_id: str, *, after: str | None, limit: int) -> list[Event]:
        """Events of the scenario with id greater than `after` (all when None), oldest
        first. Raise ScenarioNotFoundError when the scenario is absent."""

    async def queue_stats(self, *, now: float) -> list[QueueStats]:
        """One entry per service that has or had tasks, sorted by service name."""

    async def tenant_stats(self, *, now: float) -> list[TenantStats]:
        """Per tenant with ready (leasable at `now`) or processing tasks, every service
        together, sorted by tenant."""

    async def usage_totals(self, *, since: float | None) -> list[UsageTotal]:
        """The usage totals of every hour starting at or after `since` (all when None),
        sorted by (hour, template, service, name). Retention does not remove them."""

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
        """Atomically take up to `max_tasks` ready tasks of `service` (see ready order),
        mark them `processing` with attempt += 1, token `f"{nonce}.{attempt}"`,
        started_at=now, lease_expires_at = now + (lease_seconds or task.timeout_seconds),
        and return them with `inputs` filled. Sets the scenario's started_at (and status
        running) on its first lease.

        Lease-time gates (core/gates.py, decision 67) are checked inside the same step: a
        task is taken only while its service stays within `gates[service].max_in_flight`
        processing tasks and has a token in its bucket (`rate_limit`, refilled at `now`,
        one token a task), its group within `max_parallel` and its `concurrency_key`
        within `concurrency_limit` processing tasks, and only a task whose affinity
        admits a worker with `labels` (core/affinity.py: its `requires`, and its `prefers`
        until it waited `prefer_wait`), and its tenant within its `max_in_flight`. A task
        held back stays queued and the lease goes on in ready order.

        With `tenants`, the ready tasks of a lane are shared out across the tenants by
        weight (core/tenants.py fair_walk, the passes stored in the same step); without,
        nothing is charged and the order is the ready order."""

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
        """`lease` over several services in one atomic step (per shard): up to `max_tasks`
        ready tasks of any of `services`, in ready order across them (higher priority,
        then older, then task id; the order of `services` gives no precedence).
        A service listed twice counts once."""

    async def claim(
        self,
        task_id: str,
        *,
        lease_seconds: float | None,
        worker_id: str | None,
        now: float,
        nonce: str,
    ) -> Task:
        """Seed-compatible claim (PATCH status=processing) of one specific task: like a
        lease of that task alone. Raise IllegalTransitionError unless it is `queued`
        (a task still in retry backoff may be claimed early: the worker asked for it)."""

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None, now: float
    ) -> Task:
        """Extend the lease to now + (lease_seconds or timeout). Raise StaleLeaseError
        unless the task is processing under exactly this token."""

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
        """processing -> success, store the result, add `usage`, and in the same step
        queue every dependent whose parents have all succeeded (returned in `released`),
        and expand every `for_each` group it releases from `payloads` (group name -> the
        rendered payload of each instance; a released group without them raises
        ExpansionRequiredError and nothing changes).
        `lease_token=None` is the seed's PATCH: any current lease is accepted.
        A repeat with the token that already completed the task changes nothing and
        returns (task, released=(), duplicate=True). Otherwise a wrong token or a task
        not processing raises StaleLeaseError (IllegalTransitionError when token is None)."""

    async def complete_many(
        self, items: Sequence[CompletionItem], *, now: float
    ) -> list[Completion | ScenaristError]:
        """`complete` of every item, in order, each atomic on its own and with the
        outcome `complete` would give at its turn (a repeat of an earlier item is a
        duplicate). An item's TaskNotFoundError, StaleLeaseError or IllegalTransitionError
        is returned in its place and the other items go on; StoreUnavailableError fails
        the whole call (repeating it is safe: done items then read as duplicates)."""

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
        """`usage` is added as by `complete`. processing -> queued (available_at=retry_at)
        when `retry_at` is given, else
        -> failed, skipping every transitive non-final dependent in the same step.
        `attempt` must equal the task's current attempt (the service read it to decide),
        else StaleLeaseError. Token rules as in `complete`."""

    async def find_expired(self, *, now: float, limit: int) -> list[Task]:
        """Processing tasks whose lease_expires_at <= now, oldest expiry first."""

    async def expire_lease(
        self, task_id: str, lease_token: str, *, retry_at: float | None, now: float
    ) -> Task | None:
        """Reaper: like `fail` (error "lease expired") but only if the task is still
        processing under `lease_token` AND its lease has expired at `now`; else None
        (a heartbeat or completion won the race) and nothing changes."""

    async def hand_back(self, task_id: str, lease_token: str, *, now: float) -> Task | None:
        """Undo a lease whose caller is gone (a long-poll answered to a closed connection),
        in one atomic step and only while the task is processing under exactly
        `lease_token`: back to queued at its previous queued_at (its place in the ready
        order; available_at cleared), attempt decremented, lease_token, lease_expires_at
        and worker_id cleared, started_at cleared when the attempt returns to 0, one
        `queued` event with the restored attempt, counters and in-flight moved back.
        Else None and nothing changes."""

    # --- workers registry ---------------------------------------------------------------

    async def record_worker(self, sighting: WorkerSighting, *, now: float) -> None:
        """Upsert the worker's record from a lease: services, labels, SDK version and
        poll length replaced, `last_seen` = now (never moved back), `first_seen` kept."""

    async def touch_worker(self, worker_id: str, *, now: float) -> None:
        """A heartbeat: move a known worker's `last_seen` to now; an unknown id is ignored."""

    async def list_workers(
        self, *, forget_before: float, count_in_flight: bool = True
    ) -> list[WorkerRecord]:
        """Forget the workers last seen before `forget_before`, then every other one by
        worker id, `in_flight` counted from the processing tasks it holds now (left 0
        without `count_in_flight`: that count reads every processing task)."""

    # --- scenario control ---------------------------------------------------------------

    async def cancel_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        """Every non-final task -> cancelled (processing leases become stale; queued tasks
        leave their queues). Raise ConflictError(current_status) when the scenario is
        already final; cancelling an already-cancelled scenario returns it unchanged."""

    async def retry_scenario(self, scenario_id: str, *, now: float) -> Scenario:
        """failed/skipped/cancelled tasks go back: `queued` when all parents succeeded,
        else `pending`; attempt reset to 0, error/lease/result cleared; successes kept.
        Raise ConflictError when there is nothing to retry."""

    async def rerun_scenario(
        self, scenario_id: str, request: RerunRequest, *, now: float
    ) -> tuple[Scenario, tuple[str, ...]]:
        """`core.rerun.rerun_plan` in one atomic step: the named tasks and their
        dependents start a new run (`request.payloads`: overrides merged into the named
        tasks' payloads), each ended run kept in the task's history (the last
        `request.history_limit`), the scenario no longer cancelled. Returns the scenario
        and the tasks that run again, in plan order. ParamError for unknown names,
        ConflictError for what the plan refuses (nothing changes then)."""

    async def task_history(self, task_id: str) -> list[RunRecord]:
        """The runs a rerun ended, newest first (not the current one)."""

    # --- scenario-end callbacks (outbox) ------------------------------------------------

    async def claim_due_callbacks(
        self, *, now: float, limit: int, lease_seconds: float
    ) -> list[Scenario]:
        """Scenarios that became final with a callback_url and whose delivery is due;
        each returned one is not due again before now + lease_seconds (so one API process
        of several delivers it)."""

    async def finish_callback(self, scenario_id: str, *, retry_at: float | None) -> None:
        """Delivered (retry_at None) -> drop it from the outbox; else due again at retry_at."""

    # --- waiting and maintenance --------------------------------------------------------

    async def watch_ready(self, services: Sequence[str]) -> Watch:
        """Start watching for tasks of `services` becoming ready. Call it BEFORE checking
        with lease(), then wait on the watch: a task queued in between fires the watch, so
        no wake-up is lost. Spurious fires are allowed; callers re-check. Close it after."""

    async def watch_events(self, scenario_id: str) -> Watch:
        """Start watching for new events of the scenario (same contract as watch_ready)."""

    async def purge_finished(self, *, now: float, limit: int) -> int:
        """Delete scenarios that finished more than the retention ago (backends with native
        expiry may return 0). Returns how many were deleted."""

    # --- the step cache (core/step_cache.py) ---------------------------------------------

    async def cache_counts(self) -> list[CacheCount]:
        """Cache hits and misses so far, one entry per service that looked up, sorted."""

    async def clear_cache(self, *, service: str | None) -> None:
        """Delete every cache entry (of `service` only, when given)."""

    async def sweep_cache(self, *, now: float, limit: int) -> int:
        """Delete up to `limit` entries expired by `now` (backends with native expiry may
        return 0; a lookup ignores expired entries either way)."""
