"""A rerun (decision 60): the named tasks and their transitive dependents start a new run,
every other task keeps its result. Built from rows `cancel`, `rerun_ready`,
`rerun_waiting` and `override_payload` of `core/transitions.py` (and, for the expanded
`for_each` groups a rerun brings back, those of `core/rerun_groups.py`); a store applies
the plan in one atomic step: the cancels, then each ending run into the task's history,
then the removed instances and the groups back, then the changes.

What runs again: a named task, and every task below one, except a dependent whose join
a lost parent outside the rerun already put out of reach: it stays as it is (skipped),
and does not pull its own dependents in. A rerun that reaches the parents of an expanded
group brings the group back, to expand again from the new results (decision 63).
Refused (409, nothing changes): a named task in that position, or a group coming back (or
a task waiting for it) in that position; an instance reached from outside its group when
the group cannot come back (it zips with a group that stays expanded, or it expanded
before its record was kept); a processing task, unless `cancel_running` cancels its lease
first.

A task's `waiting` counts its distinct parents that run again or are not final yet; the
parents that stay final (successes, and losses the task survived) are counted off. A run
that began (an attempt was made, or it ended) is kept in history and the task starts run
`run + 1`; a task whose run never began keeps its run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scenarist.core.errors import ConflictError, ParamError
from scenarist.core.model import JSON, RunRecord, TaskStatus
from scenarist.core.rerun_groups import (
    Restore,
    collapsing,
    dependents_of,
    instance_of,
    rewire_parents,
    rewired_depends_on,
)
from scenarist.core.transitions import NON_FINAL, Change, apply_rule

Fields = Mapping[str, Any]
_LOSSES = frozenset({TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class RerunRequest:
    """What a rerun asks for: the named tasks, per named task the payload keys to replace,
    whether processing tasks are cancelled first, whether the new runs may come from a
    cache, and how many ended runs each task keeps."""

    tasks: tuple[str, ...]
    payloads: Mapping[str, Mapping[str, JSON]] = field(default_factory=dict)
    cancel_running: bool = False
    no_cache: bool = False
    history_limit: int = 20


@dataclass(frozen=True, slots=True)
class RerunPlan:
    tasks: tuple[str, ...]  # the tasks that run again, in plan order
    cancels: tuple[Change, ...]  # processing tasks of the rerun, cancelled first
    archive: tuple[str, ...]  # tasks whose run (after the cancels) goes into history
    changes: tuple[Change, ...]  # the new runs and the payload overrides
    # Groups that come back (core/rerun_groups.py), applied after the archive and before
    # the changes: their instances removed (with their history), then the groups restored.
    removed: tuple[Change, ...] = ()
    restored: tuple[Restore, ...] = ()


def check_request(names: Sequence[str], payloads: Mapping[str, object]) -> None:
    """The request's own shape: at least one task, overrides only for named tasks."""
    if not names:
        raise ParamError("name at least one task to rerun", field="tasks")
    stray = [name for name in payloads if name not in names]
    if stray:
        raise ParamError(
            f"payload overrides for tasks that are not rerun: {', '.join(stray)}",
            field=f"payload.{stray[0]}",
        )


def merged_payload(current: Mapping[str, JSON], override: Mapping[str, JSON]) -> dict[str, JSON]:
    """An override replaces the payload's top-level keys it names; the others stay."""
    return {**current, **override}


def merged_payloads(
    request: RerunRequest, payload_of: Callable[[str], Mapping[str, JSON] | None]
) -> dict[str, Mapping[str, JSON]]:
    """Each overridden task's whole new payload (`payload_of`: its current payload, None
    for an unknown task, whose override stays as given: the plan reports the name)."""
    merged: dict[str, Mapping[str, JSON]] = {}
    for name, override in request.payloads.items():
        current = payload_of(name)
        merged[name] = override if current is None else merged_payload(current, override)
    return merged


def rerun_plan(
    tasks: Sequence[Fields],
    request: RerunRequest,
    *,
    scenario: Fields,
    payloads: Mapping[str, Mapping[str, JSON]],
    now: float,
    kept: Mapping[str, Fields] | None = None,
) -> RerunPlan:
    """`tasks`: the scenario's tasks in plan order; `scenario`: its `id`, `status` and
    `created_at`; `payloads`: each overridden task's whole new payload (merged_payloads);
    `kept`: the records of its expanded groups as kept when they expanded (decision 63)."""
    names = request.tasks
    kept = kept or {}
    check_request(names, payloads)
    by_name = {t["name"]: t for t in tasks}
    unknown = [name for name in dict.fromkeys(names) if name not in by_name]
    if unknown:
        raise unknown_tasks(str(scenario["id"]), unknown)
    named = set(names)
    created_at = scenario["created_at"]
    chosen, groups = _rerun_set(tasks, by_name, named, kept, created_at)
    instances: dict[str, set[str]] = {g: set() for g in groups}
    for t in chosen:
        group = instance_of(t, kept, created_at)
        if group in instances:
            instances[group].add(t["name"])
    gone = set().union(*instances.values())
    _refuse(chosen, by_name, named, scenario, cancel_running=request.cancel_running, gone=gone)
    _refuse_groups(chosen, by_name, kept, groups, str(scenario["status"]))
    cancels, current = [], {}
    for t in chosen:
        if t["status"] == TaskStatus.PROCESSING:
            cancel = apply_rule("cancel", t, finished_at=now)
            cancels.append(cancel)
            current[t["name"]] = {**t, **cancel.fields, "status": TaskStatus.CANCELLED}
    removed = [
        apply_rule("remove_instance", current.get(n, by_name[n])) for n in _names(chosen, gone)
    ]
    members = {t["name"] for t in chosen} | set(groups)
    statuses = {name: TaskStatus(t["status"]) for name, t in by_name.items()}

    def waiting_for(depends_on: Sequence[str]) -> int:
        return sum(
            1
            for p in dict.fromkeys(depends_on)
            if p in members or (p in statuses and statuses[p] in NON_FINAL)
        )

    restored = [
        Restore(g, kept[g]["seq"], waiting_for(kept[g]["depends_on"]), request.no_cache)
        for g in groups
    ]
    # A parent's status as the cancels left it (a rewiring keeps the status it finds).
    archive, changes = [], rewire_parents({**by_name, **current}, kept, groups, instances)
    for task in chosen:
        if task["name"] in gone:
            continue
        t = current.get(task["name"], task)
        began = t["attempt"] > 0 or TaskStatus(t["status"]) not in NON_FINAL
        if began:
            archive.append(t["name"])
        depends_on = rewired_depends_on(t, kept, groups, instances)
        waiting = waiting_for(t["depends_on"] if depends_on is None else depends_on)
        run = {
            "attempt": 0,
            "waiting": waiting,
            "run": t["run"] + 1 if began else t["run"],
            "runs": min(t["runs"], request.history_limit) + 1 if began else t["runs"],
            "no_cache": request.no_cache,
        }
        if waiting == 0:
            change = apply_rule("rerun_ready", t, queued_at=now, **run)
        else:
            change = apply_rule("rerun_waiting", t, **run)
        changes.append(change)
        after = {"name": t["name"], "status": change.after}
        if depends_on is not None:
            # Below a group that is back: it waits for the group, whose join is computed
            # again when the group expands (as at submit).
            changes.append(
                apply_rule(
                    "rewire_dependent", after, depends_on=depends_on, waiting=waiting, need=None
                )
            )
        if t["name"] in payloads:
            changes.append(apply_rule("override_payload", after, payload=payloads[t["name"]]))
    again = [(t["seq"], t["name"]) for t in chosen if t["name"] not in gone]
    again += [(r.seq, r.name) for r in restored]
    return RerunPlan(
        tuple(name for _, name in sorted(again)),
        tuple(cancels),
        tuple(archive),
        tuple(changes),
        tuple(removed),
        tuple(restored),
    )


def _names(chosen: Sequence[Fields], among: set[str]) -> list[str]:
    return [t["name"] for t in chosen if t["name"] in among]


def _rerun_set(
    tasks: Sequence[Fields],
    by_name: Mapping[str, Fields],
    named: set[str],
    kept: Mapping[str, Fields],
    created_at: float,
) -> tuple[list[Fields], list[str]]:
    """Passes in plan order until nothing joins: an expansion's instances come after every
    planned task in plan order, though tasks below them come before (a task joins once a
    parent is a member, and more members only ever let more tasks in). A group that comes
    back brings its instances (they go) and the tasks that waited for it (they wait for
    it again)."""
    members: set[str] = set()
    groups: list[str] = []
    grew = True
    while grew:
        grew = False
        groups = collapsing(kept, members)
        below_group = set(dependents_of(kept, groups))
        for t in tasks:
            if t["name"] in members:
                continue
            below = t["name"] in below_group or any(p in members for p in t["depends_on"])
            if (
                t["name"] in named
                or instance_of(t, kept, created_at) in groups
                or (below and not _out_of_reach(t, by_name, members))
            ):
                members.add(t["name"])
                grew = True
    return [t for t in tasks if t["name"] in members], collapsing(kept, members)


def _out_of_reach(t: Fields, by_name: Mapping[str, Fields], members: set[str]) -> bool:
    """Mirror of LossCascade.out_of_reach over the parents that stay as they are."""
    parents = list(dict.fromkeys(t["depends_on"]))
    group = t.get("group_spec") is not None
    lost = 0
    for name in parents:
        parent = by_name.get(name)
        if parent is None or name in members or (parent["optional"] and not group):
            continue
        if TaskStatus(parent["status"]) in _LOSSES:
            lost += 1
    need = None if group else t["need"]
    return lost > 0 if need is None else len(parents) - lost < need


def _refuse(
    chosen: Sequence[Fields],
    by_name: Mapping[str, Fields],
    named: set[str],
    scenario: Fields,
    *,
    cancel_running: bool,
    gone: set[str],
) -> None:
    status = str(scenario["status"])
    members = {t["name"] for t in chosen}

    # An expansion creates tasks after their scenario. An instance whose parent the
    # rerun reaches from outside the group would need its group back; the groups that
    # come back took theirs along (`gone`), any other is refused. An instance reached
    # only through instances (a zipped group below a rerun instance) is a task like any
    # other.
    def instance(name: str) -> bool:
        return bool(by_name[name]["created_at"] > scenario["created_at"])

    instances = [
        t["name"]
        for t in chosen
        if instance(t["name"])
        and t["name"] not in gone
        and any(p in members and not instance(p) for p in t["depends_on"] if p in by_name)
    ]
    if instances:
        raise refused(REFUSED_EXPANDED, instances, status)
    doomed = [
        t["name"] for t in chosen if t["name"] in named and _out_of_reach(t, by_name, members)
    ]
    if doomed:
        raise refused(REFUSED_LOST_PARENT, doomed, status)
    running = [t["name"] for t in chosen if t["status"] == TaskStatus.PROCESSING]
    if running and not cancel_running:
        raise refused(REFUSED_PROCESSING, running, status)


def _refuse_groups(
    chosen: Sequence[Fields],
    by_name: Mapping[str, Fields],
    kept: Mapping[str, Fields],
    groups: Sequence[str],
    status: str,
) -> None:
    """A group that comes back, or a task waiting for it again, whose join a lost parent
    outside the rerun put out of reach could not run: refused, as a named task would be."""
    members = {t["name"] for t in chosen} | set(groups)
    doomed = [g for g in groups if _out_of_reach(kept[g], by_name, members)]
    doomed += [d for d in dependents_of(kept, groups) if d not in members]
    if doomed:
        raise refused(REFUSED_LOST_PARENT, doomed, status)


# Why a rerun is refused (409); the Redis script reports the same reasons by these names.
REFUSED_EXPANDED = "expanded"
REFUSED_LOST_PARENT = "lost_parent"
REFUSED_PROCESSING = "processing"
_REASONS = {
    REFUSED_EXPANDED: "{names}: instances of an expanded for_each group would need their "
    "group again, and it cannot come back (it zips with a group that stays expanded); "
    "rerun the task the upstream group expanded from, or the instances themselves",
    REFUSED_LOST_PARENT: "{names} cannot run again: a parent it needs failed or was "
    "skipped; retry the scenario or rerun that parent too",
    REFUSED_PROCESSING: '{names} still processing; wait, or ask with "cancel_running": true',
}


def refused(reason: str, names: Sequence[str], status: str) -> ConflictError:
    return ConflictError(
        _REASONS[reason].format(names=", ".join(names)), current_status=status, field="tasks"
    )


def unknown_tasks(scenario_id: str, names: Sequence[str]) -> ParamError:
    return ParamError(
        f"scenario {scenario_id!r} has no task {', '.join(map(repr, names))}", field="tasks"
    )


def run_record(t: Fields, *, payload: Mapping[str, JSON], result: JSON) -> RunRecord:
    """A task's current run as its history keeps it (payload and result decoded by the
    store)."""
    return RunRecord(
        run=t["run"],
        attempt=t["attempt"],
        status=TaskStatus(t["status"]),
        payload=payload,
        worker_id=t["worker_id"],
        queued_at=t["queued_at"],
        started_at=t["started_at"],
        finished_at=t["finished_at"],
        result_ref=t["result_ref"],
        result=result,
        error=t["error"],
    )
