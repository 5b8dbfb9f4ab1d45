"""The timeline of a scenario: one bar per task on a time axis, grouped by service.

Each attempt of a task is a waiting segment (queued, retry backoff included) followed by
a running segment, so retries show as several run segments on one bar. The critical path
is the chain that decides when the scenario ends (`core/eta.py`): for a finished
scenario from the actual ends, for a running one with the ETA's forecast ends of the
unfinished tasks. Coordinates are computed here; the template only draws them.

A big group (the copies the DAG draws as one node, `dashboard/groups.py`) is one bar
too: its envelope, from the first copy queued to the first started (waiting) and on to
the last one ended (running). Thousands of bars would be megabytes no one can read, and
the group's panel lists each copy's attempts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scenarist.core.durations import AttemptSpan
from scenarist.core.eta import critical_path
from scenarist.core.model import Scenario, Task, TaskStatus
from scenarist.dashboard.groups import GroupSummary, big_groups, summarise

LABEL_WIDTH = 190
CHART_WIDTH = 760
RIGHT_MARGIN = 20
AXIS_HEIGHT = 28
GROUP_HEIGHT = 24
ROW_HEIGHT = 24
BAR_HEIGHT = 14
TICKS = 6


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # "wait" or "run"
    x: float
    width: float
    attempt: int
    outcome: str  # the run's end status; "running" / "waiting" while it goes on


@dataclass(frozen=True, slots=True)
class TimelineBar:
    name: str  # the task's name, or the group's for a big group's one bar
    service: str
    status: TaskStatus
    copies: int  # how many copies a big group's one bar stands for; 0 for a task
    y: float
    segments: tuple[Segment, ...]
    critical: bool
    description: str  # what a screen reader says (and the tooltip shows)


@dataclass(frozen=True, slots=True)
class ServiceGroup:
    service: str
    y: float
    bars: tuple[TimelineBar, ...]


@dataclass(frozen=True, slots=True)
class TimelineView:
    width: int
    height: int
    label_width: int
    chart_width: int
    bar_height: int
    groups: tuple[ServiceGroup, ...]
    ticks: tuple[tuple[float, float], ...]  # (x, seconds since the scenario was created)
    critical: tuple[str, ...]  # the critical path, root first
    live: bool


def timeline_view(
    scenario: Scenario,
    tasks: Sequence[Task],
    attempts: Mapping[str, list[AttemptSpan]],
    *,
    now: float,
    forecast: Mapping[str, float] | None = None,
) -> TimelineView:
    live = not scenario.status.is_final
    start = scenario.created_at
    end = max(
        [
            start,
            *(_span_end(s, now if live else None) for spans in attempts.values() for s in spans),
        ]
    )
    if live:
        end = max(end, now)
    scale = CHART_WIDTH / max(end - start, 1e-3)
    axis = _Axis(start, scale)
    path = critical_path(tasks, _ends(tasks, forecast or {}))
    on_path = set(path)
    collapsed = big_groups(tasks)
    group_of_task = {t.name: name for name, members in collapsed.items() for t in members}
    frame = _Frame(axis, on_path, now if live else None)
    groups, y = [], float(AXIS_HEIGHT)
    for service in dict.fromkeys(t.service for t in tasks):
        group_y, y = y, y + GROUP_HEIGHT
        bars: list[TimelineBar] = []
        drawn: set[str] = set()
        for task in (t for t in tasks if t.service == service):
            group = group_of_task.get(task.name)
            if group in drawn:
                continue
            if group is None:
                bars.append(_task_bar(task, y, attempts.get(task.name, []), frame))
            else:
                drawn.add(group)
                members = collapsed[group]
                bars.append(_group_bar(summarise(group, members), members, y, attempts, frame))
            y += ROW_HEIGHT
        groups.append(ServiceGroup(service, group_y, tuple(bars)))
    step = (end - start) / TICKS
    ticks = tuple((LABEL_WIDTH + i * step * scale, i * step) for i in range(TICKS + 1))
    return TimelineView(
        width=LABEL_WIDTH + CHART_WIDTH + RIGHT_MARGIN,
        height=int(y) + 8,
        label_width=LABEL_WIDTH,
        chart_width=CHART_WIDTH,
        bar_height=BAR_HEIGHT,
        groups=tuple(groups),
        ticks=ticks,
        critical=tuple(path),
        live=live,
    )


def _task_bar(
    task: Task,
    y: float,
    spans: Sequence[AttemptSpan],
    frame: _Frame,
) -> TimelineBar:
    critical = task.name in frame.on_path
    return TimelineBar(
        name=task.name,
        service=task.service,
        status=task.status,
        copies=0,
        y=y,
        segments=tuple(_segments(spans, frame.axis, frame.now)),
        critical=critical,
        description=_describe(task, spans, critical),
    )


def _group_bar(
    summary: GroupSummary,
    members: Sequence[Task],
    y: float,
    attempts: Mapping[str, list[AttemptSpan]],
    frame: _Frame,
) -> TimelineBar:
    """One bar for a big group: waiting from its first copy queued to its first started,
    running from there to its last copy's end (to now while one still runs)."""
    spans = [s for t in members for s in attempts.get(t.name, [])]
    queued = [s.queued_at for s in spans if s.queued_at is not None]
    started = [s.started_at for s in spans if s.started_at is not None]
    ends = [_span_end(s, frame.now) for s in spans if s.started_at is not None]
    segments = []
    first_start = min(started, default=None)
    if queued:
        wait_end = first_start if first_start is not None else frame.now
        if wait_end is not None:
            outcome = "waited" if first_start is not None else "waiting"
            segments.append(frame.axis.segment("wait", min(queued), wait_end, 1, outcome))
    if first_start is not None and ends:
        outcome = summary.status.value if summary.status.is_final else "running"
        segments.append(frame.axis.segment("run", first_start, max(ends), 1, outcome))
    critical = any(t.name in frame.on_path for t in members)
    text = f"{summary.name}, {summary.service}, {summary.size} copies: {summary.description}"
    return TimelineBar(
        name=summary.name,
        service=summary.service,
        status=summary.status,
        copies=summary.size,
        y=y,
        segments=tuple(segments),
        critical=critical,
        description=text + ("; on the critical path" if critical else ""),
    )


def _span_end(span: AttemptSpan, now: float | None) -> float:
    for at in (span.ended_at, span.started_at if now is None else now, span.queued_at):
        if at is not None:
            return at
    return 0.0


def _ends(tasks: Sequence[Task], forecast: Mapping[str, float]) -> dict[str, float]:
    """Actual ends of the tasks that ran to success or failure, forecast ends of the rest."""
    ends = {
        t.name: t.finished_at
        for t in tasks
        if t.finished_at is not None and t.status in (TaskStatus.SUCCESS, TaskStatus.FAILED)
    }
    ends.update((name, at) for name, at in forecast.items() if name not in ends)
    return ends


@dataclass(frozen=True, slots=True)
class _Axis:
    start: float  # the scenario's creation, at the left of the chart
    scale: float  # pixels per second

    def segment(self, kind: str, begin: float, end: float, attempt: int, outcome: str) -> Segment:
        x = round(LABEL_WIDTH + (begin - self.start) * self.scale, 1)
        return Segment(kind, x, round(max(1.0, (end - begin) * self.scale), 1), attempt, outcome)


@dataclass(frozen=True, slots=True)
class _Frame:
    """What every bar is drawn against."""

    axis: _Axis
    on_path: set[str]  # the critical path's tasks
    now: float | None  # while the scenario runs: where the unfinished segments end


def _segments(spans: Sequence[AttemptSpan], axis: _Axis, now: float | None) -> list[Segment]:
    """Wait and run segments of every attempt; `now` (live) extends the one going on."""
    segments = []
    for span in spans:
        wait_end = span.started_at if span.started_at is not None else now
        if span.queued_at is not None and wait_end is not None:
            outcome = "waited" if span.started_at is not None else "waiting"
            segments.append(axis.segment("wait", span.queued_at, wait_end, span.attempt, outcome))
        if span.started_at is not None:
            run_end = span.ended_at if span.ended_at is not None else now
            if run_end is not None:
                outcome = span.outcome or "running"
                segments.append(
                    axis.segment("run", span.started_at, run_end, span.attempt, outcome)
                )
    return segments


def _describe(task: Task, spans: Sequence[AttemptSpan], critical: bool) -> str:
    parts = [f"{task.name}, {task.service}, {task.status.value}"]
    if critical:
        parts.append("on the critical path")
    for span in spans:
        wait, run = span.wait_seconds, span.run_seconds
        text = f"attempt {span.attempt}"
        text += f" waited {wait:.2f}s" if wait is not None else " waiting"
        if span.started_at is not None:
            text += f", ran {run:.2f}s ({span.outcome})" if run is not None else ", running"
        parts.append(text)
    return "; ".join(parts)
