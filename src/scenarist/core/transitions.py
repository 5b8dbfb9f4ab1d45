"""The task lifecycle, written once: a table of rules, one row per transition.

Each `Rule` is one row: the statuses a task may be in, the status it moves to, the fields
the move sets and the fields it clears, whether it appends an event, and the cascade it
starts. `apply_rule` turns a rule and a task's current fields into a `Change` and refuses
anything outside the row; `transition_changes.py` builds each operation's changes with it,
`transition_guards.py` says when an operation may act at all, and `ready_order.py` which
ready task a lease takes first. A store applies changes in the order given, inside one
atomic step, and for every change that moves a status it moves the scenario's counters
(-1 old status, +1 new status, per service too) and appends one event `(task, new status,
attempt after the change)`. After the step the scenario's status is re-derived
(`lifecycle.derive_scenario_status`) and, when it changed, one scenario event follows.

The SQLite store applies these functions directly; each Lua script names the rows it
implements in its header and mirrors them; `tests/storage/test_lockstep.py` runs the same
operations on a model of this table and on every store and compares all they store and
emit. A task's fields are read from a mapping with the stores' column names (see
`TASK_FIELDS`); `depends_on`/`dependents` are sequences of names, `seq` is the plan index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from scenarist.core.errors import IllegalTransitionError
from scenarist.core.model import TaskStatus


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
        "usage",
        "tolerated",
        "depends_on",
        "dependents",
        "need",
        "run",
        "runs",
        "no_cache",
        "payload",
        "cache_key",
        "cached",
        "cached_from",
    }
)


class Cascade(StrEnum):
    NONE = ""
    # Count the parent's success off every dependent (`waiting`, distinct dependents in
    # `dependents` order); each pending dependent reaching 0 is released.
    RELEASE = "release dependents"
    # Every dependent whose join can no longer be reached is skipped (and so on down),
    # in plan order (`seq`); the others count the loss off `waiting` and may be released.
    SKIP = "skip dependents"


NON_FINAL = frozenset({TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.PROCESSING})
RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})
# A rerun starts a new run of any task that is not processing (a processing one is refused,
# or cancelled first in the same step): finished ones, and dependents still waiting.
RERUNNABLE = frozenset(TaskStatus) - {TaskStatus.PROCESSING}
NEW: frozenset[TaskStatus] = frozenset()  # `sources` of a task that does not exist yet

# Cleared whenever a task starts over (scenario retry, rerun): nothing of the old run
# survives but what the rows set again, `usage` (what every attempt cost, see
# core/usage.py), the task's place in the graph (a group's expansion rewires it) and its
# run: a retry continues the run (its number, its payload, its `no_cache`), a rerun sets
# them anew.
_RUN_FIELDS = TASK_FIELDS - {
    "attempt",
    "queued_at",
    "waiting",
    "usage",
    "depends_on",
    "dependents",
    "need",
    "run",
    "runs",
    "no_cache",
    "payload",
}
_RERUN_SETS = ("attempt", "waiting", "run", "runs", "no_cache")


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
_ENDS_LEASE_AND_WORKER = (*_ENDS_LEASE, "worker_id")

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
            "parent_lost",
            NON_FINAL,
            None,
            ["waiting"],
            doc="a parent failed or was skipped and the task still runs: the parent is "
            "optional, or the task's join can still be reached",
        ),
        _rule(
            "release",
            [TaskStatus.PENDING],
            TaskStatus.QUEUED,
            ["queued_at"],
            doc="its last parent is final (and its join reached)",
        ),
        _rule(
            "expand_group",
            [TaskStatus.PENDING],
            None,
            doc="a for_each group whose parents are final becomes its instances: the "
            "group's record is removed (its counter goes, no event)",
        ),
        _rule(
            "instance_ready",
            NEW,
            TaskStatus.QUEUED,
            ["queued_at", "waiting"],
            doc="an instance of an expanded group whose parents are final",
        ),
        _rule(
            "instance_waiting",
            NEW,
            TaskStatus.PENDING,
            ["waiting"],
            doc="an instance of a zipped group: waits for its instance of the upstream group",
        ),
        _rule(
            "rewire_parent",
            TaskStatus,
            None,
            ["dependents"],
            doc="a parent of an expanded group names the instances as its dependents (or, "
            "when a rerun brings the group back, the group again)",
        ),
        _rule(
            "rewire_dependent",
            [TaskStatus.PENDING],
            None,
            ["depends_on", "waiting", "need"],
            doc="a dependent of an expanded group waits for its instances (need from its "
            "join once no parent is an unexpanded group); a rerun that brings the group "
            "back makes it wait for the group again (need None)",
        ),
        _rule(
            "remove_instance",
            RERUNNABLE,
            None,
            doc="rerun: an instance of a group the rerun brings back leaves the graph with "
            "its counter and its history (no event)",
        ),
        _rule(
            "collapse_group",
            NEW,
            TaskStatus.PENDING,
            ["waiting", "no_cache"],
            doc="rerun: an expanded group's kept record is a pending group again, to expand "
            "when its parents complete in the new run",
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
            [*_ENDS_LEASE_AND_WORKER, "available_at"],
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
            ["result_ref", "result", "finished_at", "usage"],
            ["lease_expires_at", "lease_seconds", "error"],
            Cascade.RELEASE,
            doc="keeps lease_token (a repeat is a duplicate) and worker_id; usage += reported",
        ),
        _rule(
            "cache_hit",
            [TaskStatus.QUEUED],
            TaskStatus.SUCCESS,
            ["cache_key", "cached", "cached_from", "result_ref", "result", "finished_at"],
            ["available_at", "error"],
            Cascade.RELEASE,
            doc="it just became ready, it is cached and an unexpired entry has its key: "
            "success at once with the entry's result, no worker (core/step_cache.py)",
        ),
        _rule(
            "cache_miss",
            [TaskStatus.QUEUED],
            None,
            ["cache_key"],
            doc="it just became ready and is cached, no entry has its key (or the run "
            "forces a miss): it keeps the key, and its completion writes the entry",
        ),
        _rule(
            "requeue",
            [TaskStatus.PROCESSING],
            TaskStatus.QUEUED,
            ["error", "available_at", "queued_at", "usage"],
            _ENDS_LEASE_AND_WORKER,
            doc="a retryable failure (or an expired lease) with attempts left; usage += reported",
        ),
        _rule(
            "fail",
            [TaskStatus.PROCESSING],
            TaskStatus.FAILED,
            ["error", "finished_at", "usage", "tolerated"],
            _ENDS_LEASE,
            Cascade.SKIP,
            doc="for good; keeps worker_id (who ran the last attempt); usage += reported",
        ),
        _rule(
            "skip",
            NON_FINAL,
            TaskStatus.SKIPPED,
            ["finished_at", "tolerated"],
            [*_ENDS_LEASE, "available_at"],
            Cascade.SKIP,
            doc="an upstream loss left its join out of reach",
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
        _rule(
            "rerun_ready",
            RERUNNABLE,
            TaskStatus.QUEUED,
            [*_RERUN_SETS, "queued_at"],
            _RUN_FIELDS,
            doc="rerun: a named task or a dependent whose parents are all final; a new "
            "run (run + 1, its old run kept in history) unless its run never began",
        ),
        _rule(
            "rerun_waiting",
            RERUNNABLE,
            TaskStatus.PENDING,
            _RERUN_SETS,
            [*_RUN_FIELDS, "queued_at"],
            doc="rerun: waits for parents that run again or have not finished",
        ),
        _rule(
            "override_payload",
            [TaskStatus.PENDING, TaskStatus.QUEUED],
            None,
            ["payload"],
            doc="rerun: the request's payload override merged into a named task's payload",
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


def parent_input(parent: TaskFields, result: Any) -> dict[str, Any]:
    """One entry of a leased task's `inputs`: a parent's outcome, with `result` decoded by
    the store. A parent that did not succeed (a join or `optional` let the task run
    anyway) carries its `error` and no result."""
    status = TaskStatus(parent["status"])
    if status is TaskStatus.SUCCESS:
        return {
            "task": parent["name"],
            "status": status.value,
            "result_ref": parent["result_ref"],
            "result": result,
        }
    return {
        "task": parent["name"],
        "status": status.value,
        "result_ref": None,
        "result": None,
        "error": parent["error"],
    }
