"""The task lifecycle, written once: a table of rules and the pure functions that apply it.

Each `Rule` is one row: the statuses a task may be in, the status it moves to, the fields
the move sets and the fields it clears, whether it appends an event, and the cascade it
starts. The functions below turn a rule and a task's current fields into a `Change`; a
store applies changes in the order given, inside one atomic step, and for every change
that moves a status it moves the scenario's counters (-1 old status, +1 new status, per
service too) and appends one event `(task, new status, attempt after the change)`. After
the step the scenario's status is re-derived (`lifecycle.derive_scenario_status`) and,
when it changed, one scenario event follows.

The SQLite store applies these functions directly; each Lua script names the rows it
implements in its header and mirrors them; `tests/storage/test_lockstep.py` runs the same
operations on a model of this table and on every store and compares all they store and
emit. A task's fields are read from a mapping with the stores' column names (see
`TASK_FIELDS`); `depends_on`/`dependents` are sequences of names, `seq` is the plan index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from scenarist.core.errors import ConflictError, IllegalTransitionError, StaleLeaseError
from scenarist.core.model import FINAL_TASK_STATUSES, JSON, MAX_PRIORITY, TaskStatus


class TaskFields(Protocol):
    """A task's fields by name: a dict, an SQLite row, a decoded Redis record."""

    def __getitem__(self, key: str, /) -> Any: ...


Lookup = Callable[[str], TaskFields | None]  # task name -> its fields (None when absent)

LEASE_EXPIRED_ERROR = "lease expired"

# Fields a transition may write (columns in SQLite; codec.py names their Redis keys).
TASK_FIELDS = frozenset(
    {
        "attempt",
        "available_at",
        "queued_at",
        "started_at",
        "finished_at",
        "lease_token",
        "lease_expires_at",
        "lease_seconds",
        "worker_id",
        "result_ref",
        "result",
        "error",
        "waiting",
    }
)


class Cascade(StrEnum):
    NONE = ""
    # Count the parent's success off every dependent (`waiting`, distinct dependents in
    # `dependents` order); each pending dependent reaching 0 is released.
    RELEASE = "release dependents"
    # Every transitive non-final dependent is skipped, in plan order (`seq`).
    SKIP = "skip dependents"


NON_FINAL = frozenset({TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING})
RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})
NEW: frozenset[TaskStatus] = frozenset()  # `sources` of a task that does not exist yet

# Cleared whenever a task starts over (scenario retry): nothing of the old run survives.
_RUN_FIELDS = (
    "available_at",
    "started_at",
    "finished_at",
    "lease_token",
    "lease_expires_at",
    "lease_seconds",
    "worker_id",
    "result_ref",
    "result",
    "error",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the lifecycle table. `target` None keeps the status (no event)."""

    name: str
    sources: frozenset[TaskStatus]
    target: TaskStatus | None
    sets: frozenset[str]
    clears: frozenset[str]
    cascade: Cascade = Cascade.NONE
    doc: str = ""

    @property
    def emits_event(self) -> bool:
        return self.target is not None


def _rule(  # noqa: PLR0917 (positional: one argument per column of the table)
    name: str,
    sources: Iterable[TaskStatus],
    target: TaskStatus | None,
    sets: Iterable[str] = (),
    clears: Iterable[str] = (),
    cascade: Cascade = Cascade.NONE,
    doc: str = "",
) -> Rule:
    rule = Rule(name, frozenset(sources), target, frozenset(sets), frozenset(clears), cascade, doc)
    unknown = (rule.sets | rule.clears) - TASK_FIELDS
    assert not unknown, f"rule {name}: unknown fields {sorted(unknown)}"
    assert not rule.sets & rule.clears, f"rule {name}: sets and clears a field"
    return rule


_LEASE_SETS = (
    "attempt",
    "lease_token",
    "started_at",
    "lease_expires_at",
    "lease_seconds",
    "worker_id",
)
_ENDS_LEASE = ("lease_token", "lease_expires_at", "lease_seconds")
_LEASE_SETS_CLEARED = (*_ENDS_LEASE, "worker_id")

RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        _rule("submit_root", NEW, TaskStatus.QUEUED, ["queued_at"], doc="a root task"),
        _rule("submit_child", NEW, TaskStatus.PENDING, ["waiting"], doc="waits for its parents"),
        _rule(
            "parent_succeeded",
            TaskStatus,
            None,
            ["waiting"],
            doc="one parent fewer to wait for (any status: a retry recounts from it)",
        ),
        _rule(
            "release",
            [TaskStatus.PENDING],
            TaskStatus.QUEUED,
            ["queued_at"],
            doc="its last parent succeeded",
        ),
        _rule(
            "lease",
            [TaskStatus.QUEUED],
            TaskStatus.PROCESSING,
            _LEASE_SETS,
            ["available_at"],
            doc="ready (available_at <= now), in ready order; token = nonce.attempt",
        ),
        _rule(
            "claim",
            [TaskStatus.QUEUED],
            TaskStatus.PROCESSING,
            _LEASE_SETS,
            ["available_at"],
            doc="the seed's PATCH processing: one named task, also during its backoff",
        ),
        _rule(
            "hand_back",
            [TaskStatus.PROCESSING],
            TaskStatus.QUEUED,
            ["attempt", "started_at"],
            [*_LEASE_SETS_CLEARED, "available_at"],
            doc="the lease's caller left before it got the task: as if never leased "
            "(attempt back, same queued_at; started_at None once no attempt is left)",
        ),
        _rule(
            "heartbeat",
            [TaskStatus.PROCESSING],
            None,
            ["lease_expires_at", "lease_seconds"],
            doc="same token; without lease_seconds the lease length last asked for",
        ),
        _rule(
            "complete",
            [TaskStatus.PROCESSING],
            TaskStatus.SUCCESS,
            ["result_ref", "result", "finished_at"],
            ["lease_expires_at", "lease_seconds", "error"],
            Cascade.RELEASE,
            doc="keeps lease_token (a repeat is a duplicate) and worker_id",
        ),
        _rule(
            "requeue",
            [TaskStatus.PROCESSING],
            TaskStatus.QUEUED,
            ["error", "available_at", "queued_at"],
            [*_ENDS_LEASE, "worker_id"],
            doc="a retryable failure (or an expired lease) with attempts left",
        ),
        _rule(
            "fail",
            [TaskStatus.PROCESSING],
            TaskStatus.FAILED,
            ["error", "finished_at"],
            _ENDS_LEASE,
            Cascade.SKIP,
            doc="for good; keeps worker_id (who ran the last attempt)",
        ),
        _rule(
            "skip",
            NON_FINAL,
            TaskStatus.SKIPPED,
            ["finished_at"],
            [*_ENDS_LEASE, "available_at"],
            doc="an upstream task failed for good",
        ),
        _rule(
            "cancel",
            NON_FINAL,
            TaskStatus.CANCELLED,
            ["finished_at"],
            [*_ENDS_LEASE, "available_at"],
            doc="scenario cancel, every non-final task in plan order",
        ),
        _rule(
            "retry_ready",
            RETRYABLE,
            TaskStatus.QUEUED,
            ["attempt", "waiting", "queued_at"],
            _RUN_FIELDS,
            doc="scenario retry: every parent succeeded",
        ),
        _rule(
            "retry_waiting",
            RETRYABLE,
            TaskStatus.PENDING,
            ["attempt", "waiting"],
            [*_RUN_FIELDS, "queued_at"],
            doc="scenario retry: waits for parents (recounted from their statuses)",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Change:
    """One task's move: the fields to write (cleared ones as None) and, when the status
    moves, `before` and `after` for the counters and the event."""

    name: str
    rule: str
    before: TaskStatus
    after: TaskStatus
    fields: Mapping[str, Any]

    @property
    def moves(self) -> bool:
        return RULES[self.rule].emits_event

    def event_attempt(self, task: TaskFields) -> int:
        attempt = self.fields.get("attempt", task["attempt"])
        assert isinstance(attempt, int)
        return attempt


def apply_rule(rule_name: str, task: TaskFields, **values: Any) -> Change:
    """The change `rule_name` makes to `task`; refuses a source status or a field set
    that is not the rule's row (the table is the only definition)."""
    rule = RULES[rule_name]
    before = TaskStatus(task["status"])
    if before not in rule.sources:
        raise IllegalTransitionError(task["name"], before, rule.target or before)
    if set(values) != rule.sets:
        raise AssertionError(f"rule {rule_name} sets {sorted(rule.sets)}, got {sorted(values)}")
    fields = {**values, **dict.fromkeys(rule.clears)}
    return Change(task["name"], rule_name, before, rule.target or before, fields)


# --- guards: what each operation requires before its rule applies ------------------------


def check_lease(task: TaskFields, lease_token: str | None, requested: TaskStatus) -> None:
    """The task must be processing under `lease_token` (any lease when None: the seed's
    PATCH). A wrong token is StaleLeaseError; a token-less misuse IllegalTransitionError."""
    status = task["status"]
    if status == TaskStatus.PROCESSING and lease_token in (None, task["lease_token"]):
        return
    if lease_token is None:
        raise IllegalTransitionError(task["id"], status, requested)
    raise StaleLeaseError(task["id"], status)


def is_duplicate_completion(task: TaskFields, lease_token: str | None) -> bool:
    """A repeat of the completion that already happened (decision 2)."""
    return (
        lease_token is not None
        and task["status"] == TaskStatus.SUCCESS
        and task["lease_token"] == lease_token
    )


def check_heartbeat(task: TaskFields, lease_token: str) -> None:
    if task["status"] != TaskStatus.PROCESSING or task["lease_token"] != lease_token:
        raise StaleLeaseError(task["id"], task["status"])


def check_fail(task: TaskFields, lease_token: str | None, attempt: int) -> None:
    """As check_lease, and the attempt the service decided on must still be current."""
    check_lease(task, lease_token, TaskStatus.FAILED)
    if task["attempt"] != attempt:
        raise StaleLeaseError(task["id"], task["status"])


def check_claim(task: TaskFields) -> None:
    if task["status"] != TaskStatus.QUEUED:
        raise IllegalTransitionError(task["id"], task["status"], TaskStatus.PROCESSING)


def can_expire(task: TaskFields | None, lease_token: str, now: float) -> bool:
    """The reaper's compare-and-set: still processing under the token it saw, and run out."""
    return (
        task is not None
        and task["status"] == TaskStatus.PROCESSING
        and task["lease_token"] == lease_token
        and task["lease_expires_at"] <= now
    )


def check_cancel(scenario_id: str, status: str, cancelled: bool) -> bool:
    """True when there is something to cancel; False when already cancelled (unchanged);
    ConflictError when the scenario already ended some other way."""
    if cancelled:
        return False
    if status in ("success", "failed"):
        raise ConflictError(
            f"scenario {scenario_id!r} is {status}; only an unfinished scenario can be cancelled",
            current_status=status,
            field="status",
        )
    return True


def check_retry(scenario_id: str, status: str, tasks: Iterable[TaskFields]) -> None:
    if not any(TaskStatus(t["status"]) in RETRYABLE for t in tasks):
        raise ConflictError(
            f"scenario {scenario_id!r} has no failed, skipped or cancelled task to retry",
            current_status=status,
            field="status",
        )


# --- ready order: the one definition every backend follows ------------------------------


def priority(level: int) -> int:
    """Queue priority inside a service: deeper tasks first (started scenarios finish
    first), capped at the seed's 0-4 levels."""
    return min(level, MAX_PRIORITY)


def ready_at(task: TaskFields) -> float:
    """When the task became (or becomes) leasable: its backoff end, else when queued."""
    available = task["available_at"]
    return float(available if available is not None else task["queued_at"])


ReadyRank = tuple[int, float, str]


def ready_rank(task_priority: int, task_ready_at: float, task_id: str) -> ReadyRank:
    """Ready order, smallest first: higher priority, then older, then task id (bytewise).
    SQLite's `ORDER BY priority DESC, ready_at, id`, Redis's per-priority sorted sets
    (score = ready_at, ties by member, merged by lease_many.lua) and the cluster's merge
    of shard heads (shard_lease.py, with this function) implement it; the lockstep test
    holds them to it."""
    return (-task_priority, task_ready_at, task_id)


def ready_key(task: TaskFields) -> ReadyRank:
    return ready_rank(priority(task["level"]), ready_at(task), task["id"])


def is_ready(task: TaskFields, now: float) -> bool:
    available = task["available_at"]
    return task["status"] == TaskStatus.QUEUED and (available is None or available <= now)


# --- the changes of each operation -------------------------------------------------------


def lease_change(
    task: TaskFields,
    *,
    rule: str = "lease",
    lease_seconds: float | None,
    worker_id: str | None,
    now: float,
    nonce: str,
) -> Change:
    attempt = task["attempt"] + 1
    seconds = lease_seconds if lease_seconds is not None else task["timeout_seconds"]
    return apply_rule(
        rule,
        task,
        attempt=attempt,
        lease_token=f"{nonce}.{attempt}",
        started_at=now,
        lease_expires_at=now + seconds,
        lease_seconds=seconds,
        worker_id=worker_id,
    )


def hand_back_change(task: TaskFields) -> Change:
    attempt = task["attempt"] - 1
    return apply_rule(
        "hand_back", task, attempt=attempt, started_at=task["started_at"] if attempt else None
    )


def can_hand_back(task: TaskFields | None, lease_token: str) -> bool:
    return (
        task is not None
        and task["status"] == TaskStatus.PROCESSING
        and task["lease_token"] == lease_token
    )


def heartbeat_change(task: TaskFields, *, lease_seconds: float | None, now: float) -> Change:
    seconds = lease_seconds if lease_seconds is not None else lease_length(task)
    return apply_rule("heartbeat", task, lease_expires_at=now + seconds, lease_seconds=seconds)


def lease_length(task: TaskFields) -> float:
    """The lease length the worker last asked for (a lease from before the field
    existed falls back to the task's timeout)."""
    seconds = task["lease_seconds"]
    return float(seconds if seconds is not None else task["timeout_seconds"])


def complete_changes(
    task: TaskFields,
    lookup: Lookup,
    *,
    result_ref: str | None,
    result: Mapping[str, JSON] | None,
    now: float,
) -> list[Change]:
    changes = [apply_rule("complete", task, result_ref=result_ref, result=result, finished_at=now)]
    for name in dict.fromkeys(task["dependents"]):
        child = lookup(name)
        if child is None:
            continue
        waiting = child["waiting"] - 1
        changes.append(apply_rule("parent_succeeded", child, waiting=waiting))
        if waiting <= 0 and child["status"] == TaskStatus.PENDING:
            changes.append(apply_rule("release", child, queued_at=now))
    return changes


def fail_changes(
    task: TaskFields,
    lookup: Lookup,
    *,
    error: str,
    retry_at: float | None,
    now: float,
) -> list[Change]:
    """A failed attempt (or an expired lease): back to the queue until `retry_at`, or
    failed for good with every transitive non-final dependent skipped in plan order."""
    if retry_at is not None:
        return [apply_rule("requeue", task, error=error, available_at=retry_at, queued_at=now)]
    failed = apply_rule("fail", task, error=error, finished_at=now)
    return [failed, *skip_changes(task, lookup, now=now)]


def skip_changes(task: TaskFields, lookup: Lookup, *, now: float) -> list[Change]:
    found: dict[str, TaskFields] = {}
    frontier = list(task["dependents"])
    while frontier:
        name = frontier.pop()
        if name in found:
            continue
        child = lookup(name)
        if child is None:
            continue
        found[name] = child
        frontier.extend(child["dependents"])
    doomed = sorted(
        (c for c in found.values() if TaskStatus(c["status"]) in NON_FINAL),
        key=lambda c: c["seq"],
    )
    return [apply_rule("skip", child, finished_at=now) for child in doomed]


def cancel_changes(tasks: Sequence[TaskFields], *, now: float) -> list[Change]:
    """`tasks` in plan order."""
    return [
        apply_rule("cancel", t, finished_at=now)
        for t in tasks
        if TaskStatus(t["status"]) in NON_FINAL
    ]


def retry_changes(tasks: Sequence[TaskFields], *, now: float) -> list[Change]:
    """Scenario retry over `tasks` in plan order. Parents' statuses are read before any
    change (a retried parent is not a success), and each retried task's `waiting` is
    recounted from them."""
    succeeded = {t["name"] for t in tasks if t["status"] == TaskStatus.SUCCESS}
    changes = []
    for t in tasks:
        if TaskStatus(t["status"]) not in RETRYABLE:
            continue
        waiting = len(set(t["depends_on"]) - succeeded)
        if waiting == 0:
            changes.append(apply_rule("retry_ready", t, attempt=0, waiting=0, queued_at=now))
        else:
            changes.append(apply_rule("retry_waiting", t, attempt=0, waiting=waiting))
    return changes


def is_final(status: str) -> bool:
    return TaskStatus(status) in FINAL_TASK_STATUSES
