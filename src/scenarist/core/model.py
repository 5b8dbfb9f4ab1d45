"""Immutable domain types shared by every layer.

`TaskSpec`/`ScenarioPlan` are what the scenario engine produces from a template and its
parameters (nothing stored yet). `Task`/`Scenario` are the persisted records a store
returns. Times are POSIX seconds (float) taken from the service's injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scenarist.core.affinity import Affinity

JSON = Any  # a value that round-trips through json.dumps/json.loads

LEVEL_PRIORITIES = 5  # the seed's "0-4 priority levels": a task's level, capped
DEFAULT_TENANT = "default"  # the tenant of a scenario submitted without one (core/tenants.py)


class Lane(StrEnum):
    """A scenario's priority lane (`POST /generate`'s `priority`): a lease takes a higher
    lane's ready tasks first, then the level order inside the lane (decision 77)."""

    INTERACTIVE = "interactive"
    NORMAL = "normal"
    BATCH = "batch"

    @property
    def offset(self) -> int:
        """Added to the level priority: the normal lane keeps the seed's 0-4, so queues
        and rows stored before lanes existed are the normal lane's as they stand."""
        return LANE_OFFSETS[self]


LANE_OFFSETS = {Lane.INTERACTIVE: LEVEL_PRIORITIES, Lane.NORMAL: 0, Lane.BATCH: -LEVEL_PRIORITIES}
MAX_PRIORITY = LEVEL_PRIORITIES * 2 - 1  # the interactive lane's deepest level
MIN_PRIORITY = -LEVEL_PRIORITIES  # the batch lane's roots
QUEUE_PRIORITIES = MAX_PRIORITY - MIN_PRIORITY + 1  # a service's ready queues (Redis)


def queue_priority(level: int, lane: Lane) -> int:
    """A task's place in its service's ready order: its lane, then deeper tasks first
    (started scenarios finish first), the level capped at the seed's 0-4."""
    return lane.offset + min(level, LEVEL_PRIORITIES - 1)


def lane_of_priority(priority: int) -> Lane:
    """The lane a stored queue priority belongs to (inverse of `queue_priority`)."""
    if priority >= LEVEL_PRIORITIES:
        return Lane.INTERACTIVE
    return Lane.NORMAL if priority >= 0 else Lane.BATCH


class TaskStatus(StrEnum):
    PENDING = "pending"  # waiting for dependencies
    QUEUED = "queued"  # ready (or waiting out a retry backoff), in its service queue
    PROCESSING = "processing"  # leased by a worker
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream task failed or was cancelled
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_TASK_STATUSES


FINAL_TASK_STATUSES = frozenset(
    {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
)


class ScenarioStatus(StrEnum):
    PENDING = "pending"  # nothing leased yet
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {ScenarioStatus.SUCCESS, ScenarioStatus.FAILED, ScenarioStatus.CANCELLED}


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One expanded task of a plan. `name` is unique inside its scenario."""

    name: str  # expanded template id: "slide_image_2", or the bare id without count
    template_id: str  # the template task id it came from: "slide_image"
    index: int | None  # 1-based copy number for multiplied tasks, else None
    service: str
    payload: Mapping[str, JSON]
    depends_on: tuple[str, ...]  # names of parent tasks, in dependency (index) order
    level: int  # longest dependency path from a root (roots are 0)
    max_attempts: int
    timeout_seconds: float  # lease duration used when a worker does not ask for one
    need: int | None = None  # successes among its parents it needs (join); None: all
    optional: bool = False  # its failure fails nothing and skips nothing
    # An unexpanded dynamic group (one node until its parents' results are known): the
    # template's `for_each`; its instances are not known at plan time.
    for_each: str | None = None
    max_parallel: int | None = None  # instances processing at once, all workers together
    # `concurrency`: tasks sharing the rendered key processing at once, all scenarios and
    # workers together (core/gates.py).
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    affinity: Affinity | None = None  # rendered `requires` / `prefers` (core/affinity.py)
    # The group's unrendered spec (`for_each`, payload sources, `max_items`, the group it
    # zips with), stored with the scenario so a catalog reload cannot change it.
    group_spec: Mapping[str, JSON] | None = None
    # Below a dynamic group: the template's join, turned into `need` at expansion.
    join: JSON = None
    cache_ttl: int | None = None  # step cache: an entry's lifetime; None: not cached

    @property
    def dynamic(self) -> bool:
        return self.for_each is not None

    @property
    def priority(self) -> int:
        """Level priority inside the normal lane: deeper tasks first, capped."""
        return queue_priority(self.level, Lane.NORMAL)


@dataclass(frozen=True, slots=True)
class ScenarioPlan:
    """A template rendered with validated parameters: tasks in topological order."""

    template: str  # scenario template name, e.g. "CreateVideo"
    params: Mapping[str, JSON]  # validated parameters, defaults filled in
    tasks: tuple[TaskSpec, ...]

    @property
    def levels(self) -> int:
        return 1 + max((t.level for t in self.tasks), default=-1)


def task_id(scenario_id: str, name: str) -> str:
    """A task id names its scenario, so any task id locates the scenario without a lookup."""
    return f"{scenario_id}:{name}"


@dataclass(frozen=True, slots=True)
class Task:
    """A persisted task. `attempt` counts leases so far (0 before the first lease)."""

    id: str
    scenario_id: str
    name: str
    service: str
    payload: Mapping[str, JSON]
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]  # names of tasks that list this one in depends_on
    level: int
    status: TaskStatus
    attempt: int
    max_attempts: int
    timeout_seconds: float
    created_at: float
    available_at: float | None = None  # queued: not leasable before this (retry backoff)
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    lease_seconds: float | None = None  # the lease length asked for; heartbeats renew it
    worker_id: str | None = None
    result_ref: str | None = None
    result: Mapping[str, JSON] | None = None
    error: str | None = None
    # What every attempt reported (core/usage.py); None until something was reported.
    usage: Mapping[str, float] | None = None
    inputs: tuple[Mapping[str, JSON], ...] = ()  # filled on lease: upstream results
    need: int | None = None  # successes among its parents it needs (join); None: all
    optional: bool = False  # its failure fails nothing and skips nothing
    tolerated: bool = False  # failed or skipped, and a join or `optional` tolerates it
    # An unexpanded `for_each` group: its unrendered spec (see TaskSpec.group_spec).
    group_spec: Mapping[str, JSON] | None = None
    join: JSON = None  # below a dynamic group: the join, turned into `need` at expansion
    # At most `max_parallel` tasks of `parallel_group` (the template task id: its copies
    # or a group's instances) processing at once in the scenario, all workers together.
    max_parallel: int | None = None
    parallel_group: str | None = None
    # Runs (decision 60): a rerun starts a new one; `runs` counts the ones GET history
    # shows (this one and those kept); `no_cache`: this run may not be served from a cache.
    run: int = 1
    runs: int = 1
    no_cache: bool = False
    # Step cache (core/step_cache.py): the entry's lifetime (None: not cached), the key
    # computed when the task became ready, and whether its success came from an entry
    # (`cached_from`: the task whose run it copies).
    cache_ttl: int | None = None
    cache_key: str | None = None
    cached: bool = False
    cached_from: str | None = None
    # At most `concurrency_limit` processing tasks share `concurrency_key` (core/gates.py).
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    lane: Lane = Lane.NORMAL  # its scenario's priority lane
    tenant: str = DEFAULT_TENANT  # its scenario's tenant (core/tenants.py)
    # Which workers may lease it, by their labels (core/affinity.py); None: any.
    affinity: Affinity | None = None

    @property
    def priority(self) -> int:
        return queue_priority(self.level, self.lane)

    @property
    def dynamic(self) -> bool:
        return self.group_spec is not None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a task as its history keeps it: how it ended (or how far it got)."""

    run: int
    attempt: int  # attempts the run used
    status: TaskStatus
    payload: Mapping[str, JSON]  # the payload the run was given
    worker_id: str | None = None
    queued_at: float | None = None
    started_at: float | None = None  # its last attempt's lease
    finished_at: float | None = None
    result_ref: str | None = None
    result: Mapping[str, JSON] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    by_status: Mapping[TaskStatus, int]
    by_service: Mapping[str, Mapping[TaskStatus, int]]
    growing: bool = False  # a `for_each` group has not expanded yet: `total` will change

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.by_status.items() if s.is_final)

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else round(100.0 * self.finished / self.total, 2)


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    template: str
    params: Mapping[str, JSON]
    status: ScenarioStatus
    progress: Progress
    created_at: float
    started_at: float | None = None  # first lease
    finished_at: float | None = None
    cancelled: bool = False
    idempotency_key: str | None = None
    callback_url: str | None = None
    # With an idempotency key: a digest of the request (template, params, callback_url),
    # so a repeat of the key with another request is told apart from a retry.
    request_digest: str | None = None
    # W3C trace context of its submit span (core/trace_ids.py): every attempt's span is a
    # child of it, whichever process ends the attempt.
    traceparent: str | None = None
    tolerated_failures: int = 0  # failed or skipped tasks a join or `optional` tolerated
    lane: Lane = Lane.NORMAL  # `priority` of POST /generate (decision 77)
    tenant: str = DEFAULT_TENANT  # `tenant` of POST /generate (decision 79)


@dataclass(frozen=True, slots=True)
class Event:
    """One status change, as stored for the scenario's event stream (SSE)."""

    id: str  # monotonically increasing within a scenario; opaque to clients
    scenario_id: str
    at: float
    task: str | None  # task name, or None for a scenario-level event
    status: str  # a TaskStatus for task events, a ScenarioStatus for scenario events
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    service: str
    ready: int  # leasable now
    delayed: int  # queued but waiting out a retry backoff
    in_flight: int  # processing
    oldest_ready_age: float | None  # seconds the oldest ready task has waited
    held: int = 0  # ready, but held back: their group has max_parallel tasks processing
    # Ready, not held by a group, but held back: their concurrency key is at its limit.
    held_by_key: int = 0
    # The service's stored token bucket (core/gates.py Bucket): None before its first
    # rate-limited lease. `/queues` refills it to now.
    bucket_tokens: float | None = None
    bucket_at: float | None = None
    # Filled by the service from the catalog's gates (core/gates.py gate_view), not stored:
    max_in_flight: int | None = None  # the service's cap
    tokens: float | None = None  # left in its bucket now; None: no rate limit
    held_by_cap: int = 0  # ready, free of group and key, beyond the cap's room
    held_by_rate: int = 0  # ready, free of group, key and cap, beyond the whole tokens


@dataclass(frozen=True, slots=True)
class TenantStats:
    """A tenant's tasks now, every service together (core/tenants.py)."""

    tenant: str
    ready: int  # leasable now
    in_flight: int  # processing


@dataclass(frozen=True, slots=True)
class Completion:
    """What `complete` changed: the finished task and the dependents it released."""

    task: Task
    released: tuple[str, ...] = field(default=())  # task ids that became queued
    duplicate: bool = False  # a repeat of the completion that already happened
