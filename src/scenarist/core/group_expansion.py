"""A `for_each` group expanding into its instances, in the atomic step of the completion
that makes its parents final (rows expand_group, instance_ready, instance_waiting,
rewire_parent, rewire_dependent of `core/transitions.py`).

The service renders every instance's payload before it calls the store (templates do not
run inside a store's atomic step, and never in Lua); the store hands the rendered payloads
to `complete_steps`, which turns the completion into an ordered list of steps: the
table's changes plus the instances to create. A group `shot` with N payloads becomes
`shot_1 .. shot_N`; a group downstream that says `for_each: shot` becomes `upscale_i`
depending on `shot_i` in the same step; every other dependent waits for the instances
instead of the group (N = 0: for none) and its join's `need` is computed once no parent
is an unexpanded group. A join that N instances cannot reach is skipped at once, with
the usual loss cascade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scenarist.core.errors import ExpansionRequiredError
from scenarist.core.model import JSON, Task, TaskStatus, lane_of_priority, task_id
from scenarist.core.transition_changes import LossCascade, complete_changes
from scenarist.core.transitions import NON_FINAL, RULES, Change, Lookup, TaskFields, apply_rule
from scenarist.core.usage import Usage


@dataclass(frozen=True, slots=True)
class Instance:
    """A task an expansion creates: its row (`instance_ready` or `instance_waiting`) and
    every field a store writes for a new task."""

    rule: str
    fields: Mapping[str, Any]

    @property
    def name(self) -> str:
        name = self.fields["name"]
        assert isinstance(name, str)
        return name

    @property
    def status(self) -> TaskStatus:
        target = RULES[self.rule].target
        assert target is not None
        return target

    def task(self, scenario_id: str, now: float) -> Task:
        """The new task a store writes for this instance, created at `now`."""
        f = self.fields
        return Task(
            id=task_id(scenario_id, self.name),
            scenario_id=scenario_id,
            name=self.name,
            service=f["service"],
            payload=f["payload"],
            depends_on=tuple(f["depends_on"]),
            dependents=tuple(f["dependents"]),
            level=f["level"],
            status=self.status,
            attempt=0,
            max_attempts=f["max_attempts"],
            timeout_seconds=f["timeout_seconds"],
            created_at=now,
            queued_at=f["queued_at"],
            need=f["need"],
            optional=f["optional"],
            max_parallel=f["max_parallel"],
            parallel_group=f["parallel_group"],
            concurrency_key=f["concurrency_key"],
            concurrency_limit=f["concurrency_limit"],
            lane=lane_of_priority(f["priority"]),
            tenant=f["tenant"],
            affinity=f["affinity"],
        )


Step = Change | Instance
Payloads = Mapping[str, Sequence[JSON]]  # group name -> one rendered payload per instance


def complete_steps(
    task: TaskFields,
    lookup: Lookup,
    *,
    result_ref: str | None,
    result: Mapping[str, JSON] | None,
    now: float,
    payloads: Payloads,
    next_seq: int,
    usage: Usage | None = None,
) -> list[Step]:
    """`complete_changes`, with every `for_each` group the completion releases expanded
    (`payloads[group]`; a released group without payloads raises ExpansionRequiredError,
    payloads for a group that is not released are ignored). `next_seq` is the plan index
    the first instance takes."""
    changes = complete_changes(
        task, lookup, result_ref=result_ref, result=result, now=now, usage=usage
    )
    expansion = _Expansion(lookup, payloads, now, next_seq, task["name"])
    steps: list[Step] = []
    groups: list[str] = []
    for change in changes:
        group = lookup(change.name) if change.rule == "release" else None
        if group is not None and group["group_spec"] is not None:
            groups.append(change.name)
            continue
        steps.append(change)
        if change.rule == "parent_succeeded" and lookup(change.name) is not None:
            # An expansion below reads the count after this step (a zipped group that
            # also waited for the completed task).
            expansion.current(change.name)["waiting"] = change.fields["waiting"]
    # Expansions last: every count-off of this completion is applied before a group's
    # record is removed or its dependents rewired.
    for name in groups:
        steps.extend(expansion.expand(expansion.current(name), None))
    return steps


def released_names(steps: Sequence[Step]) -> list[str]:
    """The tasks a completion made ready, in step order: released dependents and the
    instances of an expanded group that wait for nothing."""
    return [s.name for s in steps if s.rule in ("release", "instance_ready")]


def join_need(join: JSON, parents: int) -> int | None:
    """`need` from a join as the template described it (`Join.describe`)."""
    if join in (None, "all"):
        return None
    if join == "any":
        return min(1, parents)
    assert isinstance(join, Mapping)
    ((kind, value),) = join.items()
    if kind == "min_success":
        return int(value)
    return math.ceil(float(value) * parents - 1e-9)


class _Expansion:
    """The groups one completion expands; `overlay` holds the fields this step rewrote,
    so a dependent of two groups expanded in the same step sees both rewirings."""

    def __init__(
        self, lookup: Lookup, payloads: Payloads, now: float, next_seq: int, task: str
    ) -> None:
        self.base = lookup
        self.payloads = payloads
        self.now = now
        self.next_seq = next_seq
        self.task = task
        self.overlay: dict[str, dict[str, Any]] = {}

    def lookup(self, name: str) -> TaskFields | None:
        return self.overlay.get(name) or self.base(name)

    def current(self, name: str) -> dict[str, Any]:
        if name not in self.overlay:
            found = self.base(name)
            assert found is not None, name
            self.overlay[name] = {key: found[key] for key in _KEYS}
        return self.overlay[name]

    def expand(self, group: TaskFields, zipped: tuple[str, list[str]] | None) -> list[Step]:
        name = group["name"]
        rendered = self.payloads.get(name)
        if rendered is None or (zipped is not None and len(rendered) != len(zipped[1])):
            raise ExpansionRequiredError(self.task, name)
        names = [f"{name}_{i}" for i in range(1, len(rendered) + 1)]
        dependents = list(dict.fromkeys(group["dependents"]))
        zips = [d for d in dependents if _zips_with(self.lookup(d), name)]
        steps: list[Step] = [apply_rule("expand_group", group)]
        for i, payload in enumerate(rendered):
            steps.append(self._instance(group, names[i], payload, zipped, i, zips, dependents))
        steps.extend(self._rewire_parents(group, names, zipped))
        for dependent in dependents:
            child = self.lookup(dependent)
            if child is None or TaskStatus(child["status"]) not in NON_FINAL:
                continue
            if dependent in zips:
                steps.extend(self.expand(child, (name, names)))
            else:
                steps.extend(self._rewire_dependent(child, name, names))
        return steps

    def _instance(  # noqa: PLR0917 (one argument per part of the new record)
        self,
        group: TaskFields,
        name: str,
        payload: JSON,
        zipped: tuple[str, list[str]] | None,
        i: int,
        zips: list[str],
        dependents: list[str],
    ) -> Instance:
        depends_on = list(group["depends_on"])
        if zipped is not None:
            depends_on = [zipped[1][i] if p == zipped[0] else p for p in depends_on]
        waiting = group["waiting"]
        fields = {
            "name": name,
            "seq": self.next_seq,
            "service": group["service"],
            "payload": payload,
            "depends_on": depends_on,
            "dependents": [f"{d}_{i + 1}" if d in zips else d for d in dependents],
            "level": group["level"],
            "max_attempts": group["max_attempts"],
            "timeout_seconds": group["timeout_seconds"],
            "need": group["need"],
            "max_parallel": group["max_parallel"],
            "parallel_group": group["parallel_group"],
            "concurrency_key": group["concurrency_key"],
            "concurrency_limit": group["concurrency_limit"],
            "priority": group["priority"],  # its lane's: instances keep the scenario's lane
            "affinity": group["affinity"],
            "tenant": group["tenant"],
            "optional": bool(group["optional"]),
            "waiting": waiting,
            "queued_at": self.now if waiting <= 0 else None,
            "index": i + 1,
        }
        self.next_seq += 1
        return Instance("instance_ready" if waiting <= 0 else "instance_waiting", fields)

    def _rewire_parents(
        self, group: TaskFields, names: list[str], zipped: tuple[str, list[str]] | None
    ) -> list[Change]:
        """Every parent but the zipped group's instances (created already knowing their
        zipped dependent) names the instances instead of the group."""
        changes = []
        for parent_name in dict.fromkeys(group["depends_on"]):
            if zipped is not None and parent_name == zipped[0]:
                continue
            parent = self.current(parent_name)
            dependents = _replace(parent["dependents"], group["name"], names)
            changes.append(apply_rule("rewire_parent", parent, dependents=dependents))
            parent["dependents"] = dependents
        return changes

    def _rewire_dependent(self, child: TaskFields, group: str, names: list[str]) -> list[Step]:
        current = self.current(child["name"])
        depends_on = _replace(current["depends_on"], group, names)
        waiting = current["waiting"] - 1 + len(set(names))
        parents = list(dict.fromkeys(depends_on))
        instances = set(names)
        unexpanded = any(
            (p := self.lookup(n)) is not None and p["group_spec"] is not None
            for n in parents
            if n not in instances
        )
        need = None if unexpanded else join_need(current["join"], len(parents))
        steps: list[Step] = [
            apply_rule(
                "rewire_dependent", current, depends_on=depends_on, waiting=waiting, need=need
            )
        ]
        current.update(depends_on=depends_on, waiting=waiting, need=need)
        cascade = LossCascade(self.lookup, {})
        moves: list[Change] = []
        if need is not None and cascade.out_of_reach(current):
            cascade.doom(current)
            moves = cascade.changes(self.now)
        elif waiting <= 0:
            moves = [apply_rule("release", current, queued_at=self.now)]
        self._note(moves)
        steps.extend(moves)
        return steps

    def _note(self, moves: Sequence[Change]) -> None:
        """The rest of the expansion sees what these moves did: a task this step skipped
        is final (a zipped group below it does not expand; a later cascade counts it
        lost), a count-off or a release is current."""
        for move in moves:
            current = self.current(move.name)
            current.update({k: v for k, v in move.fields.items() if k in current})
            current["status"] = move.after


_KEYS = (
    "name",
    "service",
    "level",
    "max_attempts",
    "timeout_seconds",
    "status",
    "seq",
    "attempt",
    "depends_on",
    "dependents",
    "waiting",
    "need",
    "optional",
    "join",
    "group_spec",
    "tolerated",
    "max_parallel",
    "parallel_group",
    "concurrency_key",
    "concurrency_limit",
    "priority",
    "affinity",
    "tenant",
)


def _zips_with(child: TaskFields | None, group: str) -> bool:
    spec = None if child is None else child["group_spec"]
    return spec is not None and spec.get("zip") == group


def _replace(names: Sequence[str], group: str, instances: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        out.extend(instances if name == group else [name])
    return out
