"""A rerun that reaches a `for_each` group's parents brings the group back (decision 63):
its instances leave the live graph, the group's record (as every store kept it when it
expanded) is pending again, its parents and dependents name the group instead of the
instances, and the parents' next completion expands it again, maybe to another count.
Rows `remove_instance`, `collapse_group`, `rewire_parent` and `rewire_dependent` of
`core/transitions.py`.

A group comes back when one of its parents runs again; a zipped group comes back with
the group it zips with (and only then). Its instances are removed whatever
their status (processing ones are cancelled first, or the rerun refused, as for any task
of the rerun), and so is their history: the new expansion's instances are new tasks that
start at run 1, even where they reuse a name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scenarist.core.transitions import Change, apply_rule

Fields = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Restore:
    """Row `collapse_group`: the group's kept record back in the graph, pending, waiting
    for `waiting` parents; everything else as it was when it expanded."""

    name: str
    seq: int
    waiting: int
    no_cache: bool


def instance_of(t: Fields, kept: Mapping[str, Fields], created_at: float) -> str | None:
    """The expanded group `t` is an instance of (`<group>_<index>`, created after the
    scenario), or None."""
    if not t["created_at"] > created_at:
        return None
    group, _, index = str(t["name"]).rpartition("_")
    return group if index.isdigit() and group in kept else None


def collapsing(kept: Mapping[str, Fields], members: set[str]) -> list[str]:
    """The kept groups a rerun of `members` brings back, in plan order: one of its parents
    runs again, or, for a zipped group, the group it zips with comes back (a zipped group
    whose upstream group stays expanded cannot wait for it again: its instances stay, and
    a rerun reaching them from outside is refused)."""
    back: list[str] = []
    grew = True
    while grew:
        grew = False
        for name, record in sorted(kept.items(), key=lambda item: item[1]["seq"]):
            if name in back:
                continue
            spec = record["group_spec"] or {}
            zipped = spec.get("zip")
            if zipped in back if zipped else any(p in members for p in record["depends_on"]):
                back.append(name)
                grew = True
    return sorted(back, key=lambda name: kept[name]["seq"])


def dependents_of(kept: Mapping[str, Fields], groups: Sequence[str]) -> list[str]:
    """The tasks that wait for a group coming back (groups zipped below it come back
    themselves)."""
    return list(dict.fromkeys(d for g in groups for d in kept[g]["dependents"] if d not in groups))


def renamed(names: Sequence[str], group: str, instances: set[str]) -> list[str]:
    """`names` with `group` instead of its instances (where the first one was; at the end
    when the group had none)."""
    out: list[str] = []
    for name in names:
        if name not in instances:
            out.append(name)
        elif group not in out:
            out.append(group)
    if group not in out:
        out.append(group)
    return out


def rewired_depends_on(
    t: Fields, kept: Mapping[str, Fields], groups: Sequence[str], instances: Mapping[str, set[str]]
) -> list[str] | None:
    """A dependent's `depends_on` once the groups it waits for are back (None: it waits
    for none of them)."""
    mine = [g for g in groups if t["name"] in kept[g]["dependents"]]
    if not mine:
        return None
    depends_on = list(t["depends_on"])
    for group in mine:
        depends_on = renamed(depends_on, group, instances[group])
    return depends_on


def rewire_parents(
    by_name: Mapping[str, Fields],
    kept: Mapping[str, Fields],
    groups: Sequence[str],
    instances: Mapping[str, set[str]],
) -> list[Change]:
    """Each parent of a group coming back (not itself a group coming back) names the
    group again instead of its instances; one change per parent, in plan order."""
    current: dict[str, list[str]] = {}
    for group in groups:
        for parent in dict.fromkeys(kept[group]["depends_on"]):
            if parent in groups or parent not in by_name:
                continue
            dependents = current.get(parent, list(by_name[parent]["dependents"]))
            current[parent] = renamed(dependents, group, instances[group])
    ordered = sorted(current, key=lambda name: by_name[name]["seq"])
    return [
        apply_rule("rewire_parent", by_name[name], dependents=current[name]) for name in ordered
    ]
