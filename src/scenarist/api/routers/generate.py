"""POST /generate: validate, expand and submit a scenario (or only expand, on dry run)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Query, Response

from scenarist.api.callback_policy import check_callback_url
from scenarist.api.deps import Client, Services
from scenarist.api.problems import problem_responses
from scenarist.api.schemas import (
    SEED_GENERATE_EXAMPLE,
    DryRunPublic,
    GenerateCreate,
    GeneratePublic,
    PlannedTask,
)
from scenarist.core.model import ScenarioPlan, Task
from scenarist.service.submission import Submission

router = APIRouter(tags=["scenarios"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a repeat of the same request with the same key returns the first "
        "submission (200); the key with a different request is refused (422)",
    ),
]

TraceParentHeader = Annotated[
    str | None,
    Header(
        description="W3C trace context: with tracing on, the scenario's trace continues it "
        "(an invalid one is ignored and a new trace starts)",
    ),
]


@router.post(
    "/generate",
    operation_id="generateScenario",
    status_code=201,
    response_model=GeneratePublic | DryRunPublic,
    summary="Generate a scenario's task graph and queue its tasks",
    response_description="the stored scenario and its tasks",
    responses={
        200: {
            "description": "an Idempotency-Key replay (same scenario), or a dry run",
            "model": GeneratePublic | DryRunPublic,
        },
        **problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
    },
)
async def generate(
    body: Annotated[
        GenerateCreate, Body(openapi_examples={"seed": {"value": SEED_GENERATE_EXAMPLE}})
    ],
    services: Services,
    _: Client,
    response: Response,
    *,
    idempotency_key: IdempotencyKey = None,
    traceparent: TraceParentHeader = None,
    dry_run: Annotated[bool, Query(description="expand only; store nothing")] = False,
) -> Response | DryRunPublic:
    params = body.merged_params()
    if body.callback_url is not None:
        await check_callback_url(str(body.callback_url), services.settings)
    orchestrator = services.orchestrator
    if dry_run:
        response.status_code = 200
        return dry_run_public(orchestrator.plan(body.scenario, params))
    callback_url = str(body.callback_url) if body.callback_url else None
    if services.tracing is None:
        submission = await orchestrator.submit(
            body.scenario, params, idempotency_key=idempotency_key, callback_url=callback_url
        )
    else:  # a trace per scenario (decision 43), continuing the caller's when it sent one
        with services.tracing.submit_span(body.scenario, traceparent) as span:
            submission = await orchestrator.submit(
                body.scenario,
                params,
                idempotency_key=idempotency_key,
                callback_url=callback_url,
                traceparent=span.header,
            )
            span.scenario(submission.scenario.id, submission.created)
    headers = {} if submission.created else {"Idempotent-Replayed": "true"}
    return Response(
        generated_body(submission),
        status_code=201 if submission.created else 200,
        headers=headers,
        media_type="application/json",
    )


def generated_body(submission: Submission) -> bytes:
    """GeneratePublic as JSON, written directly: the submit path is the benchmark's
    critical path, and building then validating one pydantic model per task cost more
    than the JSON itself. tests/api check it equals GeneratePublic's own dump."""
    scenario = submission.scenario
    body: dict[str, Any] = {
        "scenario_id": scenario.id,
        "scenario": scenario.template,
        "status": scenario.status.value,
        "task_count": len(submission.tasks),
        "created": submission.created,
        "tasks": [task_summary(t) for t in submission.tasks],
    }
    return orjson.dumps(body)


def task_summary(task: Task) -> dict[str, Any]:
    """TaskSummary's fields, in its order."""
    return {
        "id": task.id,
        "name": task.name,
        "service": task.service,
        "level": task.level,
        "depends_on": list(task.depends_on),
        "status": task.status.value,
        "cached": task.cached,
        "cached_from": task.cached_from,
    }


def dry_run_public(plan: ScenarioPlan) -> DryRunPublic:
    return DryRunPublic(
        scenario=plan.template,
        params=dict(plan.params),
        task_count=len(plan.tasks),
        levels=plan.levels,
        tasks=[
            PlannedTask(
                name=t.name,
                service=t.service,
                level=t.level,
                depends_on=list(t.depends_on),
                payload=dict(t.payload),
                dynamic=t.dynamic,
                for_each=t.for_each,
            )
            for t in plan.tasks
        ],
    )
