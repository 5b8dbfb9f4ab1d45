"""The dashboard's routes under `/ui`: pages, the fragments their scripts refresh, the
live feed, the two actions (actions.py), sign-in, and the packaged static files.

`create_dashboard_router()` is included by the app factory; the routes read the
orchestrator and settings from `app.state` (see context.py).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute

from scenarist.core.errors import (
    ConflictError,
    NotFoundError,
    ParamError,
    ScenaristError,
    StoreUnavailableError,
)
from scenarist.core.model import RunRecord, Scenario, Task
from scenarist.dashboard.access import (
    LOGIN_PATH,
    AccessDeniedError,
    LoginRequiredError,
    forget_token,
    match_token,
    parse_login_form,
    remember_token,
    require_same_origin,
)
from scenarist.dashboard.actions import add_action_routes
from scenarist.dashboard.context import Ctx, DashboardContext, DashboardUnavailableError, Seen
from scenarist.dashboard.group_routes import add_group_routes, require_group
from scenarist.dashboard.groups import GROUP_PAGE_SIZE
from scenarist.dashboard.live import scenario_feed
from scenarist.dashboard.previews import Preview, add_artefact_routes, preview_of
from scenarist.dashboard.rendering import Renderer
from scenarist.dashboard.rerun_action import add_rerun_route
from scenarist.dashboard.timing import add_timing_routes, scenario_timing
from scenarist.dashboard.views import (
    NOTICES,
    ListFilters,
    dag_view,
    parse_filters,
    service_counts,
    task_details,
)
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.streams import newest_event_id
from scenarist.service.timing import attempts_of, eta_seconds

OptionalText = Annotated[str | None, Query(max_length=500)]


def create_dashboard_router() -> APIRouter:
    renderer = Renderer()
    router = APIRouter(prefix="/ui", route_class=guarded_route(renderer), include_in_schema=False)
    add_list_routes(router, renderer)
    add_scenario_routes(router, renderer)
    add_queue_routes(router, renderer)
    add_session_routes(router, renderer)
    return router


def guarded_route(renderer: Renderer) -> type[APIRoute]:
    """Routes whose errors become HTML pages (sign-in form, 403, 404) instead of the
    API's problem+json, since a person reads them."""

    class DashboardRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handle(request)
                except (
                    LoginRequiredError,
                    AccessDeniedError,
                    DashboardUnavailableError,
                    ScenaristError,
                ) as exc:
                    return error_page(renderer, request, exc)

            return guarded

    return DashboardRoute


def error_page(renderer: Renderer, request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequiredError):
        return renderer.page(
            request, "login.html", status_code=401, problem=str(exc), next=current_address(request)
        )
    status = 500
    if isinstance(exc, AccessDeniedError):
        status = 403
    elif isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, ParamError):
        status = 400
    elif isinstance(exc, ConflictError):
        status = 409
    elif isinstance(exc, DashboardUnavailableError | StoreUnavailableError):
        status = 503
    message = exc.message if isinstance(exc, ScenaristError) else str(exc)
    return renderer.page(request, "error.html", status_code=status, status=status, message=message)


def get_filters(
    status: OptionalText = None,
    template: OptionalText = None,
    cursor: OptionalText = None,
    limit: OptionalText = None,
) -> ListFilters:
    return parse_filters(status, template, cursor, limit)


Filters = Annotated[ListFilters, Depends(get_filters)]


async def list_page(
    ctx: DashboardContext, filters: ListFilters
) -> tuple[list[Scenario], str | None]:
    return await ctx.orchestrator.list_scenarios(
        status=filters.status, template=filters.template, cursor=filters.cursor, limit=filters.limit
    )


def add_list_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("")
    async def scenario_list(request: Request, ctx: Ctx, viewer: Seen, filters: Filters) -> Response:
        scenarios, next_cursor = await list_page(ctx, filters)
        return renderer.page(
            request,
            "scenarios.html",
            viewer=viewer,
            templates=ctx.template_names,
            filters=filters,
            scenarios=scenarios,
            next_cursor=next_cursor,
        )

    @router.get("/fragments/scenarios")
    async def scenario_rows(request: Request, ctx: Ctx, _: Seen, filters: Filters) -> Response:
        scenarios, _next = await list_page(ctx, filters)
        return renderer.page(request, "_scenario_rows.html", filters=filters, scenarios=scenarios)


def add_scenario_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("/scenarios/{scenario_id}")
    async def scenario_page(
        request: Request,
        scenario_id: str,
        *,
        ctx: Ctx,
        viewer: Seen,
        task: OptionalText = None,
        group: OptionalText = None,
        cursor: OptionalText = None,
        notice: OptionalText = None,
    ) -> Response:
        orchestrator = ctx.orchestrator
        # The newest event first: the feed then starts after it, and anything that changes
        # while the page is built is streamed (replaying a status is harmless).
        after = await newest_event_id(orchestrator, scenario_id)
        scenario = await orchestrator.get_scenario(scenario_id)
        tasks = await orchestrator.list_tasks(scenario_id)
        timing = await scenario_timing(orchestrator, scenario, tasks)
        return renderer.page(
            request,
            "scenario.html",
            viewer=viewer,
            scenario=scenario,
            services=service_counts(scenario.progress),
            eta_seconds=timing.eta_seconds,
            timeline=timing.timeline,
            dag=dag_view(tasks),
            details=task_details(tasks, scenario_id, task) if task else None,
            group=require_group(tasks, scenario_id, group, cursor) if group and not task else None,
            page_size=GROUP_PAGE_SIZE,
            attempts=timing.attempts.get(task, []) if task else [],
            runs=await ended_runs(orchestrator, scenario_id, tasks, task),
            preview=task_preview(ctx, tasks, task),
            media_origins=ctx.settings.preview_origins,
            notice=NOTICES.get(notice or ""),
            after=after or "",
        )

    @router.get("/scenarios/{scenario_id}/summary")
    async def scenario_summary(
        request: Request, scenario_id: str, ctx: Ctx, viewer: Seen
    ) -> Response:
        scenario = await ctx.orchestrator.get_scenario(scenario_id)
        tasks = await ctx.orchestrator.list_tasks(scenario_id)
        return renderer.page(
            request,
            "_scenario_summary.html",
            viewer=viewer,
            scenario=scenario,
            services=service_counts(scenario.progress),
            eta_seconds=await eta_seconds(ctx.orchestrator, scenario, tasks),
        )

    @router.get("/scenarios/{scenario_id}/tasks/{name}")
    async def task_panel(
        request: Request, scenario_id: str, name: str, ctx: Ctx, viewer: Seen
    ) -> Response:
        tasks = await ctx.orchestrator.list_tasks(scenario_id)
        details = task_details(tasks, scenario_id, name)
        attempts = await attempts_of(ctx.orchestrator, scenario_id, [details.task])
        return renderer.page(
            request,
            "_task_panel.html",
            viewer=viewer,
            details=details,
            attempts=attempts[name],
            runs=await ended_runs(ctx.orchestrator, scenario_id, tasks, name),
            preview=preview_of(
                details.task, ctx.settings.artefacts_dir, ctx.settings.preview_origins
            ),
        )

    @router.get("/scenarios/{scenario_id}/events")
    async def scenario_events(
        scenario_id: str,
        ctx: Ctx,
        _: Seen,
        after: OptionalText = None,
        last_event_id_header: Annotated[
            str | None, Header(alias="Last-Event-ID", max_length=200)
        ] = None,
    ) -> Response:
        resume = last_event_id_header or after or None
        # Unknown scenario or malformed id: an error page now, not a broken stream.
        await ctx.orchestrator.read_events(scenario_id, after=resume, limit=1)
        feed = scenario_feed(
            ctx.orchestrator,
            scenario_id,
            after=resume,
            heartbeat=ctx.settings.sse_heartbeat_seconds,
        )
        return StreamingResponse(
            feed,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    add_action_routes(router, renderer)
    add_rerun_route(router)
    add_group_routes(router, renderer)
    add_artefact_routes(router)
    add_timing_routes(router, renderer)


def add_queue_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("/queues")
    async def queues_page(request: Request, ctx: Ctx, viewer: Seen) -> Response:
        stats = await ctx.orchestrator.queue_stats()
        warnings = await ctx.orchestrator.affinity_warnings(stats)
        tenants = await ctx.orchestrator.tenant_stats()
        return renderer.page(
            request, "queues.html", viewer=viewer, queues=stats, warnings=warnings, tenants=tenants
        )

    @router.get("/fragments/queues")
    async def queue_rows(request: Request, ctx: Ctx, _: Seen) -> Response:
        stats = await ctx.orchestrator.queue_stats()
        warnings = await ctx.orchestrator.affinity_warnings(stats)
        return renderer.page(request, "_queue_rows.html", queues=stats, warnings=warnings)

    @router.get("/workers")
    async def workers_page(request: Request, ctx: Ctx, viewer: Seen) -> Response:
        workers = await ctx.orchestrator.workers.list()
        now = ctx.orchestrator.clock()
        return renderer.page(request, "workers.html", viewer=viewer, workers=workers, now=now)

    @router.get("/fragments/workers")
    async def worker_rows(request: Request, ctx: Ctx, _: Seen) -> Response:
        workers = await ctx.orchestrator.workers.list()
        now = ctx.orchestrator.clock()
        return renderer.page(request, "_worker_rows.html", workers=workers, now=now)


def add_session_routes(router: APIRouter, renderer: Renderer) -> None:
    @router.get("/login")
    async def login_form(request: Request, ctx: Ctx, next: OptionalText = None) -> Response:
        target = safe_next(next)
        if not ctx.settings.tokens:
            return RedirectResponse(target, status_code=303)
        return renderer.page(request, "login.html", problem="", next=target)

    @router.post("/login")
    async def login(request: Request, ctx: Ctx) -> Response:
        """The form posts the token in the body (never in the address, which access logs
        keep); a valid one goes into the HttpOnly cookie and the browser returns to
        `next` with a GET (303), so reloading does not post the token again."""
        require_same_origin(request)
        try:
            fields = parse_login_form(await request.body())
        except ValueError as exc:
            return renderer.page(
                request, "login.html", status_code=400, problem=str(exc), next="/ui"
            )
        target = safe_next(fields.get("next"))
        if not ctx.settings.tokens:
            return RedirectResponse(target, status_code=303)
        token = fields.get("token", "").strip()
        if not token or match_token(ctx.settings.tokens, token) is None:
            problem = "that token is not valid" if token else "enter a token"
            return renderer.page(
                request, "login.html", status_code=401, problem=problem, next=target
            )
        redirect = RedirectResponse(target, status_code=303)
        remember_token(redirect, request, token)
        return redirect

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        require_same_origin(request)
        redirect = RedirectResponse(LOGIN_PATH, status_code=303)
        forget_token(redirect)
        return redirect

    @router.get("/static/{name}")
    async def static_file(name: str, v: OptionalText = None) -> Response:
        """`v` is the content hash the pages put in asset URLs to bust caches."""
        asset = renderer.assets.get(name)
        if asset is None:
            raise NotFoundError(f"no dashboard asset named {name!r}")
        return Response(
            asset.body,
            media_type=asset.media_type,
            headers={"Cache-Control": "public, max-age=86400", "ETag": f'"{asset.version}"'},
        )


async def ended_runs(
    orchestrator: Orchestrator, scenario_id: str, tasks: list[Task], name: str | None
) -> list[RunRecord]:
    """The runs reruns ended of the selected task (none selected, or unknown: none)."""
    if name is None or not any(t.name == name for t in tasks):
        return []
    return await orchestrator.task_history(f"{scenario_id}:{name}")


def task_preview(ctx: DashboardContext, tasks: list[Task], name: str | None) -> Preview | None:
    task = next((t for t in tasks if t.name == name), None)
    if task is None:
        return None
    return preview_of(task, ctx.settings.artefacts_dir, ctx.settings.preview_origins)


def current_address(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(target: str | None) -> str:
    """Only paths inside the dashboard: a sign-in link must not redirect off-site."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"
