"""What the templates show, computed from domain records (no HTTP, no templates here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from scenarist.core.errors import ParamError, TaskNotFoundError
from scenarist.core.model import JSON, Progress, ScenarioStatus, Task, TaskStatus, task_id
from scenarist.dashboard.groups import GroupSummary, big_groups, summarise
from scenarist.dashboard.layout import DagLayout, NodeBox, NodeInput, layout_dag

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
MAX_FILTER_LENGTH = 200

# Notices an action redirect may ask the page to show; fixed texts, so a crafted link
# cannot make the dashboard display words of someone else's choosing.
NOTICES: Mapping[str, str] = {
    "cancelled": "Scenario cancelled: unfinished tasks will not run.",
    "retried": "Retry requested: failed, skipped and cancelled tasks are queued again.",
    "resumed": "Scenario resumed: its cancelled tasks are queued again.",
    "not-cancellable": "Nothing to cancel: the scenario has already ended.",
    "not-retryable": "Nothing to retry: no task failed or was cancelled.",
    "rerun": "Rerun requested: the task and every task below it run again.",
    "rerun-processing": "Rerun refused: a task it would run again is processing; tick "
    '"cancel running tasks" to cancel them first.',
    "rerun-refused": "Rerun refused: a parent it needs failed, or it reaches an expanded group.",
    "rerun-bad-override": "Rerun refused: the payload override must be a JSON object.",
    "rerun-unknown": "Rerun refused: the scenario has no such task.",
}


@dataclass(frozen=True, slots=True)
class ListFilters:
    status: ScenarioStatus | None = None
    template: str | None = None
    cursor: str | None = None
    limit: int = DEFAULT_PAGE_SIZE

    def query(self, **changes: Any) -> str:
        """The query string for these filters with `changes` applied (for links)."""
        merged = replace(self, **changes)
        pairs = [
            ("status", merged.status.value if merged.status else None),
            ("template", merged.template),
            ("cursor", merged.cursor),
            ("limit", str(merged.limit) if merged.limit != DEFAULT_PAGE_SIZE else None),
        ]
        query = urlencode([(k, v) for k, v in pairs if v])
        return f"?{query}" if query else ""


def parse_filters(
    status: str | None, template: str | None, cursor: str | None, limit: str | None
) -> ListFilters:
    """Empty values mean "any" (what an untouched filter form submits)."""
    try:
        parsed_status = ScenarioStatus(status) if status else None
    except ValueError:
        known = ", ".join(s.value for s in ScenarioStatus)
        raise ParamError(f"unknown status {status!r}; one of {known}", field="status") from None
    try:
        size = int(limit) if limit else DEFAULT_PAGE_SIZE
    except ValueError:
        raise ParamError(f"limit must be a whole number, got {limit!r}", field="limit") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ParamError(f"limit must be 1..{MAX_PAGE_SIZE}, got {size}", field="limit")
    for name, value in (("template", template), ("cursor", cursor)):
        if value and len(value) > MAX_FILTER_LENGTH:
            raise ParamError(f"{name} is longer than {MAX_FILTER_LENGTH} characters", field=name)
    return ListFilters(parsed_status, template or None, cursor or None, size)


@dataclass(frozen=True, slots=True)
class ServiceCounts:
    service: str
    counts: Mapping[TaskStatus, int]
    total: int
    finished: int


def service_counts(progress: Progress) -> list[ServiceCounts]:
    rows = []
    for service, counts in sorted(progress.by_service.items()):
        full = {status: counts.get(status, 0) for status in TaskStatus}
        finished = sum(n for status, n in full.items() if status.is_final)
        rows.append(ServiceCounts(service, full, sum(full.values()), finished))
    return rows


@dataclass(frozen=True, slots=True)
class DagNode:
    """A task, or a big group of copies drawn as one node (exactly one of the two)."""

    box: NodeBox
    task: Task | None
    group: GroupSummary | None = None


@dataclass(frozen=True, slots=True)
class DagView:
    layout: DagLayout
    nodes: tuple[DagNode, ...]
    tasks: int  # how many tasks the drawing stands for, groups included


def dag_view(tasks: Sequence[Task]) -> DagView:
    """The drawing: every task, except that each big group becomes one node, and edges
    to or from its members become one edge to or from that node."""
    groups = big_groups(tasks)
    node_of = {t.name: name for name, members in groups.items() for t in members}
    inputs: list[NodeInput] = []
    drawn: set[str] = set()
    for task in tasks:
        node = node_of.get(task.name, task.name)
        if node in drawn:
            continue
        drawn.add(node)
        members = groups.get(node, [task])
        parents = dict.fromkeys(node_of.get(p, p) for m in members for p in m.depends_on)
        level = min(m.level for m in members)
        inputs.append(NodeInput(node, level, tuple(p for p in parents if p != node)))
    layout = layout_dag(inputs)
    by_name = {t.name: t for t in tasks}
    summaries = {name: summarise(name, members) for name, members in groups.items()}
    nodes = tuple(
        DagNode(box, None, summaries[box.name])
        if box.name in summaries
        else DagNode(box, by_name[box.name])
        for box in layout.nodes
    )
    return DagView(layout, nodes, len(tasks))


@dataclass(frozen=True, slots=True)
class TaskDetails:
    task: Task
    inputs: tuple[Mapping[str, JSON], ...]  # what the task receives from its parents


def task_details(tasks: Sequence[Task], scenario_id: str, name: str) -> TaskDetails:
    by_name = {t.name: t for t in tasks}
    task = by_name.get(name)
    if task is None:
        raise TaskNotFoundError(task_id(scenario_id, name))
    if task.inputs:
        return TaskDetails(task, task.inputs)
    # Inputs are only attached to a leased task; rebuild them from the parents' results,
    # so the panel shows them (or that a parent has not produced one yet) at any time.
    inputs = tuple(
        {
            "task": parent.name,
            "status": parent.status.value,
            "result_ref": parent.result_ref,
            "result": dict(parent.result) if parent.result is not None else None,
        }
        for parent in (by_name[p] for p in task.depends_on if p in by_name)
    )
    return TaskDetails(task, inputs)
