"""The dashboard's two actions on a scenario: cancel (after a confirmation page) and
retry, which on a cancelled scenario reads as "resume".

Cancelling cannot be undone as such (a retry queues the cancelled tasks again, but work
in flight is lost), so the button on the scenario page only opens a confirmation page;
its form posts with `confirmed=true`, and a post without it is sent to that page too.
Plain links and forms: it works without scripts and under the strict CSP.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from scenarist.core.errors import ConflictError
from scenarist.core.model import ScenarioStatus, TaskStatus
from scenarist.dashboard.access import require_action, require_same_origin
from scenarist.dashboard.context import Ctx, Seen
from scenarist.dashboard.rendering import Renderer

RETRYABLE = frozenset({ScenarioStatus.FAILED, ScenarioStatus.CANCELLED})
Confirmed = Annotated[bool, Query(description="set by the confirmation page's form")]


def add_action_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("/scenarios/{scenario_id}/cancel")
    async def confirm_cancel(
        request: Request, scenario_id: str, ctx: Ctx, viewer: Seen
    ) -> Response:
        require_action(viewer)
        scenario = await ctx.orchestrator.get_scenario(scenario_id)
        if scenario.status.is_final:
            return back_to(scenario_id, "not-cancellable")
        by_status = scenario.progress.by_status
        return renderer.page(
            request,
            "confirm_cancel.html",
            scenario=scenario,
            unfinished=sum(n for status, n in by_status.items() if not status.is_final),
            processing=by_status.get(TaskStatus.PROCESSING, 0),
        )

    @router.post("/scenarios/{scenario_id}/cancel")
    async def cancel(
        request: Request, scenario_id: str, ctx: Ctx, viewer: Seen, confirmed: Confirmed = False
    ) -> Response:
        require_same_origin(request)
        require_action(viewer)
        if not confirmed:
            return RedirectResponse(f"/ui/scenarios/{scenario_id}/cancel", status_code=303)
        if (await ctx.orchestrator.get_scenario(scenario_id)).status.is_final:
            return back_to(scenario_id, "not-cancellable")
        try:
            await ctx.orchestrator.cancel(scenario_id)
        except ConflictError:
            return back_to(scenario_id, "not-cancellable")
        return back_to(scenario_id, "cancelled")

    @router.post("/scenarios/{scenario_id}/retry")
    async def retry(request: Request, scenario_id: str, ctx: Ctx, viewer: Seen) -> Response:
        require_same_origin(request)
        require_action(viewer)
        before = (await ctx.orchestrator.get_scenario(scenario_id)).status
        if before not in RETRYABLE:
            return back_to(scenario_id, "not-retryable")
        try:
            await ctx.orchestrator.retry(scenario_id)
        except ConflictError:
            return back_to(scenario_id, "not-retryable")
        return back_to(scenario_id, "resumed" if before is ScenarioStatus.CANCELLED else "retried")


def back_to(scenario_id: str, notice: str) -> Response:
    # 303: the browser follows with a GET, so reloading the page does not post again.
    return RedirectResponse(f"/ui/scenarios/{scenario_id}?notice={notice}", status_code=303)
