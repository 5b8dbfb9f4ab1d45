"""A big group is one bar on the timeline too: its envelope, not thousands of rows."""

from __future__ import annotations

from dataclasses import replace

from scenarist.core.durations import AttemptSpan
from scenarist.core.model import Progress, Scenario, ScenarioStatus, Task, TaskStatus
from scenarist.dashboard.groups import COLLAPSE_ABOVE
from scenarist.dashboard.timeline import LABEL_WIDTH, timeline_view
from tests.dashboard.test_groups import fan

T0 = 1_000.0


def scenario(status: ScenarioStatus) -> Scenario:
    progress = Progress(total=0, by_status={}, by_service={})
    return Scenario("s", "Fan", {}, status, progress, created_at=T0)


def finished_fan(n: int) -> tuple[list[Task], dict[str, list[AttemptSpan]]]:
    attempts: dict[str, list[AttemptSpan]] = {
        "root": [AttemptSpan(1, T0, T0 + 1, T0 + 2, "success")]
    }
    for i in range(1, n + 1):  # copies queued at 2, started one after another, end by 2+i
        attempts[f"shot_{i}"] = [AttemptSpan(1, T0 + 2, T0 + 2 + i / n, T0 + 3 + i / n, "success")]
    attempts["cut"] = [AttemptSpan(1, T0 + 4, T0 + 5, T0 + 9, "success")]
    tasks = [
        replace(t, status=TaskStatus.SUCCESS, finished_at=attempts[t.name][0].ended_at)
        for t in fan(n)
    ]
    return tasks, attempts


def test_a_big_group_is_one_bar_spanning_its_copies() -> None:
    n = COLLAPSE_ABOVE + 6
    tasks, attempts = finished_fan(n)
    view = timeline_view(scenario(ScenarioStatus.SUCCESS), tasks, attempts, now=T0 + 20)
    bars = [bar for group in view.groups for bar in group.bars]
    assert [(b.name, b.copies) for b in bars] == [("root", 0), ("shot", n), ("cut", 0)]
    shot = bars[1]
    assert shot.status is TaskStatus.SUCCESS
    assert f"{n} copies: {n} success" in shot.description
    wait, run = shot.segments
    scale = (view.chart_width) / 9.0  # the chart spans creation .. the last end (T0+9)
    assert wait.kind == "wait"
    assert wait.x == round(LABEL_WIDTH + 2 * scale, 1)  # the first copy queued
    assert run.kind == "run"
    assert run.x == round(LABEL_WIDTH + (2 + 1 / n) * scale, 1)  # the first copy started
    assert run.width == round((2 - 1 / n) * scale, 1)  # ... to the last copy's end, T0+4
    assert run.outcome == "success"


def test_a_small_group_keeps_a_bar_per_copy() -> None:
    tasks, attempts = finished_fan(COLLAPSE_ABOVE)
    view = timeline_view(scenario(ScenarioStatus.SUCCESS), tasks, attempts, now=T0 + 20)
    bars = [bar for group in view.groups for bar in group.bars]
    assert len(bars) == COLLAPSE_ABOVE + 2
    assert all(b.copies == 0 for b in bars)


def test_a_running_group_bar_runs_to_now_and_is_on_the_critical_path() -> None:
    n = COLLAPSE_ABOVE + 1
    tasks, attempts = finished_fan(n)
    tasks = [
        replace(t, status=TaskStatus.PROCESSING, finished_at=None) if t.name == "shot_1" else t
        for t in tasks
    ]
    tasks = [
        replace(t, status=TaskStatus.PENDING, finished_at=None) if t.name == "cut" else t
        for t in tasks
    ]
    attempts["shot_1"] = [AttemptSpan(1, T0 + 2, T0 + 2.5)]
    del attempts["cut"]
    view = timeline_view(
        scenario(ScenarioStatus.RUNNING),
        tasks,
        attempts,
        now=T0 + 6,
        forecast={"shot_1": T0 + 7, "cut": T0 + 8},
    )
    shot = next(b for g in view.groups for b in g.bars if b.name == "shot")
    assert shot.status is TaskStatus.PROCESSING
    assert shot.segments[-1].outcome == "running"
    assert shot.segments[-1].x + shot.segments[-1].width == LABEL_WIDTH + view.chart_width
    assert shot.critical
    assert "shot_1" in view.critical
