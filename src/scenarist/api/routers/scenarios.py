"""Scenarios: list, read, cancel, retry, rerun, and the live event stream."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse

from scenarist.api.deps import Client, Services
from scenarist.api.problems import problem_responses
from scenarist.api.rerun_schemas import RerunCreate, RerunPublic
from scenarist.api.scenario_bodies import ScenarioPublic, ScenarioTaskPage, TasksDetail
from scenarist.api.schemas import ScenarioPage, ScenarioSummary
from scenarist.api.sse import SSE_EVENT_SCHEMA, SSE_STREAM_SCHEMA, scenario_stream
from scenarist.core.errors import ParamError
from scenarist.core.groups import page_tasks
from scenarist.core.model import ScenarioStatus
from scenarist.service.policy import Limits
from scenarist.service.timing import attempts_of, eta_seconds

router = APIRouter(prefix="/scenarios", tags=["scenarios"])

ScenarioId = Annotated[str, Path(min_length=1, max_length=200, description="scenario id")]
EventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=200)]


@router.get(
    "",
    operation_id="listScenarios",
    summary="List scenarios, newest first",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_scenarios(
    services: Services,
    _: Client,
    status: ScenarioStatus | None = None,
    scenario: Annotated[str | None, Query(max_length=200, description="template name")] = None,
    limit: Annotated[int, Query(ge=1, le=Limits().max_batch)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ScenarioPage:
    page, next_cursor = await services.orchestrator.list_scenarios(
        status=status, template=scenario, cursor=cursor, limit=limit
    )
    return ScenarioPage(items=[ScenarioSummary.of(s) for s in page], next_cursor=next_cursor)


@router.get(
    "/{scenario_id}",
    operation_id="getScenario",
    summary="A scenario's status, progress and tasks",
    responses=problem_responses(401, 403, 404, 503),
)
async def get_scenario(
    scenario_id: ScenarioId,
    services: Services,
    _: Client,
    tasks: Annotated[
        TasksDetail,
        Query(
            description="`all` (the default): every task and the failures; `none`: neither, "
            "so a scenario of thousands of tasks answers in constant size (page its tasks "
            "with `GET /scenarios/{id}/tasks`)"
        ),
    ] = TasksDetail.ALL,
) -> ScenarioPublic:
    orchestrator = services.orchestrator
    scenario = await orchestrator.get_scenario(scenario_id)
    if tasks is TasksDetail.NONE:
        # A running scenario's ETA reads its tasks here, server side: the answer stays
        # constant in size, which is what `none` is for.
        eta = None
        if not scenario.status.is_final:
            every = await orchestrator.list_tasks(scenario_id)
            eta = await eta_seconds(orchestrator, scenario, every)
        return ScenarioPublic.with_tasks(scenario, None, eta_seconds=eta)
    every = await orchestrator.list_tasks(scenario_id)
    return ScenarioPublic.with_tasks(
        scenario,
        every,
        attempts=await attempts_of(orchestrator, scenario_id, every),
        eta_seconds=await eta_seconds(orchestrator, scenario, every),
    )


@router.get(
    "/{scenario_id}/tasks",
    operation_id="listScenarioTasks",
    summary="A scenario's tasks, a page at a time (plan order)",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def list_scenario_tasks(
    scenario_id: ScenarioId,
    services: Services,
    _: Client,
    group: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="only the copies of one template task: `slide_image` lists "
            "`slide_image_1 .. slide_image_N` (a `count` or `for_each` group)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=Limits().max_batch)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page")
    ] = None,
) -> ScenarioTaskPage:
    orchestrator = services.orchestrator
    everything = await orchestrator.list_tasks(scenario_id)
    page = page_tasks(everything, group=group, cursor=cursor, limit=limit)
    # A page's task is the full body's task, attempts included.
    attempts = await attempts_of(orchestrator, scenario_id, page.tasks)
    return ScenarioTaskPage.of(everything, page, attempts)


@router.post(
    "/{scenario_id}/cancel",
    operation_id="cancelScenario",
    summary="Cancel every unfinished task of a scenario",
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def cancel_scenario(
    scenario_id: ScenarioId, services: Services, _: Client
) -> ScenarioSummary:
    return ScenarioSummary.of(await services.orchestrator.cancel(scenario_id))


@router.post(
    "/{scenario_id}/retry",
    operation_id="retryScenario",
    summary="Requeue failed, skipped and cancelled tasks (successes are kept)",
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def retry_scenario(scenario_id: ScenarioId, services: Services, _: Client) -> ScenarioSummary:
    return ScenarioSummary.of(await services.orchestrator.retry(scenario_id))


@router.post(
    "/{scenario_id}/rerun",
    operation_id="rerunScenario",
    summary="Run the named tasks and every task below them again (other results are kept)",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def rerun_scenario(
    scenario_id: ScenarioId, body: RerunCreate, services: Services, _: Client
) -> RerunPublic:
    scenario, again = await services.orchestrator.rerun(
        scenario_id,
        body.tasks,
        payloads=body.payload,
        cancel_running=body.cancel_running,
        no_cache=body.no_cache,
    )
    return RerunPublic.answer(scenario, again)


@router.get(
    "/{scenario_id}/events",
    operation_id="streamScenarioEvents",
    summary="Server-Sent Events: status changes and progress until the scenario ends",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "an event stream (`status`, `progress`, `end` events)",
            "content": {
                "text/event-stream": {
                    "schema": SSE_STREAM_SCHEMA,
                    "x-event-schema": SSE_EVENT_SCHEMA,
                }
            },
        },
        **problem_responses(401, 403, 404, 503),
    },
)
async def scenario_events(
    scenario_id: ScenarioId,
    services: Services,
    _: Client,
    last_event_id: EventId = None,
    after: Annotated[
        str | None, Query(max_length=200, description="like Last-Event-ID, for EventSource")
    ] = None,
) -> StreamingResponse:
    orchestrator = services.orchestrator
    resume_after = last_event_id or after
    # Errors (unknown scenario, malformed event id) become a problem before streaming.
    try:
        await orchestrator.read_events(scenario_id, after=resume_after, limit=1)
    except ParamError as exc:
        if last_event_id and exc.field == "after":
            raise ParamError(exc.message, field="Last-Event-ID") from None
        raise
    stream = scenario_stream(
        orchestrator,
        scenario_id,
        after=resume_after,
        heartbeat=services.settings.sse_heartbeat_seconds,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
