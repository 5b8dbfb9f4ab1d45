"""Big groups on the scenario page: the copies of one template task (`count`, and
`for_each` instances, named alike) drawn as ONE node with per-status counts once there
are more than a few dozen of them; the node opens into its instances a page at a time.

Pure functions over domain records (no HTTP, no templates). A drawing of thousands of
nodes is megabytes of SVG that neither a browser nor a person can use; a group node
stays the same size whatever the group's size, so the page does too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scenarist.core.groups import TaskPage, group_of, page_tasks
from scenarist.core.model import Task, TaskStatus

COLLAPSE_ABOVE = 24  # a group with more instances than this is drawn as one node
GROUP_PAGE_SIZE = 50  # instances per page of an opened group

# The one status a group node is coloured by: the most pressing one present (a single
# failure shows even among thousands of successes), `success` only when all succeeded.
STATUS_PRECEDENCE = (
    TaskStatus.FAILED,
    TaskStatus.PROCESSING,
    TaskStatus.QUEUED,
    TaskStatus.PENDING,
    TaskStatus.CANCELLED,
    TaskStatus.SKIPPED,
    TaskStatus.SUCCESS,
)


@dataclass(frozen=True, slots=True)
class StatusShare:
    status: TaskStatus
    count: int
    x: float  # where its segment of the node's bar starts, 0..1
    width: float  # its share of the bar, 0..1


@dataclass(frozen=True, slots=True)
class GroupSummary:
    name: str  # the template task id: "slide_image"
    service: str
    size: int
    counts: Mapping[TaskStatus, int]  # every status, zeros included, lifecycle order

    @property
    def status(self) -> TaskStatus:
        return next((s for s in STATUS_PRECEDENCE if self.counts[s]), TaskStatus.PENDING)

    @property
    def shares(self) -> tuple[StatusShare, ...]:
        """The non-zero statuses as consecutive segments of a bar (for the node)."""
        shares, start = [], 0.0
        for status, count in self.counts.items():
            if count:
                width = count / self.size
                shares.append(StatusShare(status, count, start, width))
                start += width
        return tuple(shares)

    @property
    def description(self) -> str:
        """e.g. "120 success, 3 failed, 4875 pending" (non-zero counts)."""
        return ", ".join(f"{s.count} {s.status}" for s in self.shares) or "no instances"

    def as_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "status": self.status.value,
            "counts": {s.value: n for s, n in self.counts.items()},
            "description": self.description,
        }


def summarise(name: str, members: Sequence[Task]) -> GroupSummary:
    counts = dict.fromkeys(TaskStatus, 0)
    for task in members:
        counts[task.status] += 1
    service = members[0].service if members else ""
    return GroupSummary(name, service, len(members), counts)


def big_groups(tasks: Sequence[Task]) -> dict[str, list[Task]]:
    """The groups drawn as one node: more than COLLAPSE_ABOVE members, plan order."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        member = group_of(task.name)
        if member is not None:
            groups.setdefault(member.group, []).append(task)
    return {name: members for name, members in groups.items() if len(members) > COLLAPSE_ABOVE}


def group_summaries(tasks: Sequence[Task]) -> dict[str, GroupSummary]:
    return {name: summarise(name, members) for name, members in big_groups(tasks).items()}


@dataclass(frozen=True, slots=True)
class GroupPanel:
    """An opened group: its counts and one page of its instances."""

    scenario_id: str
    summary: GroupSummary
    page: TaskPage
    cursor: str | None  # the cursor this page was read with (None: the first page)


def group_panel(
    tasks: Sequence[Task], scenario_id: str, name: str, cursor: str | None
) -> GroupPanel | None:
    """None when `name` is no group of these tasks (the caller answers 404)."""
    members = [t for t in tasks if (m := group_of(t.name)) is not None and m.group == name]
    if not members:
        return None
    page = page_tasks(members, group=name, cursor=cursor, limit=GROUP_PAGE_SIZE)
    return GroupPanel(scenario_id, summarise(name, members), page, cursor)
