"""The scenario page's timeline and ETA, and the fragment its script refreshes while the
scenario runs (dashboard/timeline.py draws, service/timing.py derives)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from scenarist.core.durations import AttemptSpan
from scenarist.core.eta import eta_from
from scenarist.core.model import Scenario, Task
from scenarist.dashboard.context import Ctx, Seen
from scenarist.dashboard.rendering import Renderer
from scenarist.dashboard.timeline import TimelineView, timeline_view
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.timing import attempts_of, forecast


@dataclass(frozen=True, slots=True)
class ScenarioTiming:
    timeline: TimelineView
    eta_seconds: float | None
    attempts: dict[str, list[AttemptSpan]]


async def scenario_timing(
    orchestrator: Orchestrator, scenario: Scenario, tasks: Sequence[Task]
) -> ScenarioTiming:
    attempts = await attempts_of(orchestrator, scenario.id, tasks)
    ends = await forecast(orchestrator, scenario, tasks)
    now = orchestrator.clock()
    view = timeline_view(scenario, tasks, attempts, now=now, forecast=ends)
    return ScenarioTiming(view, None if ends is None else eta_from(ends, now), attempts)


def add_timing_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("/scenarios/{scenario_id}/timeline")
    async def timeline_fragment(request: Request, scenario_id: str, ctx: Ctx, _: Seen) -> Response:
        scenario = await ctx.orchestrator.get_scenario(scenario_id)
        tasks = await ctx.orchestrator.list_tasks(scenario_id)
        timing = await scenario_timing(ctx.orchestrator, scenario, tasks)
        return renderer.page(request, "_timeline.html", timeline=timing.timeline)
