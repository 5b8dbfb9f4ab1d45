"""The scenario page's big groups: one group's panel (its counts and a page of its
instances) and every group's counts as JSON, which the page's script reads to keep the
group nodes current while the scenario runs (see groups.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from scenarist.core.errors import NotFoundError
from scenarist.core.model import Task
from scenarist.dashboard.context import Ctx, Seen
from scenarist.dashboard.groups import GROUP_PAGE_SIZE, GroupPanel, group_panel, group_summaries
from scenarist.dashboard.rendering import Renderer

Cursor = Annotated[str | None, Query(max_length=500)]


def require_group(
    tasks: Sequence[Task], scenario_id: str, name: str, cursor: str | None
) -> GroupPanel:
    panel = group_panel(tasks, scenario_id, name, cursor or None)
    if panel is None:
        raise NotFoundError(f"scenario {scenario_id} has no group named {name!r}")
    return panel


def add_group_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("/scenarios/{scenario_id}/groups")
    async def group_counts(scenario_id: str, ctx: Ctx, _: Seen) -> Response:
        tasks = await ctx.orchestrator.list_tasks(scenario_id)
        groups = {name: g.as_json() for name, g in group_summaries(tasks).items()}
        return JSONResponse({"groups": groups}, headers={"Cache-Control": "no-store"})

    @router.get("/scenarios/{scenario_id}/groups/{name}")
    async def group_fragment(
        request: Request, scenario_id: str, name: str, ctx: Ctx, _: Seen, cursor: Cursor = None
    ) -> Response:
        tasks = await ctx.orchestrator.list_tasks(scenario_id)
        panel = require_group(tasks, scenario_id, name, cursor)
        return renderer.page(request, "_group_panel.html", group=panel, page_size=GROUP_PAGE_SIZE)
