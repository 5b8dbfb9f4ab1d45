"""POST /generate: validate, expand and submit a scenario (or only expand, on dry run).

The route answers a plain submission through a lean handler (decision 74) and hands
every other request (a query string, a header or body FastAPI would refuse, a dry run) to
FastAPI's own handler for the same route, so the OpenAPI schema and every 4xx answer stay
FastAPI's.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from scenarist.api.auth import Principal
from scenarist.api.callback_policy import check_callback_url
from scenarist.api.deps import CLIENT_SCHEME, AppServices, Client, Services, get_services
from scenarist.api.limits import is_json_media_type
from scenarist.api.problems import problem_responses
from scenarist.api.schemas import (
    SEED_GENERATE_EXAMPLE,
    DryRunPublic,
    GenerateCreate,
    GeneratePublic,
    PlannedTask,
)
from scenarist.core.model import ScenarioPlan, Task
from scenarist.core.tenants import DEFAULT_TENANT, Tenants
from scenarist.service.submission import Submission

IDEMPOTENCY_KEY_MAX = 200


class GenerateRoute(APIRoute):
    """FastAPI's route for POST /generate, with a lean handler in front of its own.

    FastAPI's handler solves the declared dependencies and parameters generically on
    every request, which was a fifth of a submit's server CPU. The lean handler takes
    the common request (no query string, a JSON body the body model accepts, an
    Idempotency-Key within its bounds) and does the same steps directly: the services,
    the client check, the body model. Anything else goes to FastAPI's handler unchanged,
    which answers it exactly as before; tests/api/test_generate_lean.py checks that both
    handlers give the same answer to the same requests."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()

        async def handle_generate(request: Request) -> Response:
            headers = request.headers
            key = headers.get("idempotency-key")
            body = None
            if not request.scope["query_string"] and (
                key is None or 0 < len(key) <= IDEMPOTENCY_KEY_MAX
            ):
                body = parse_body(headers.get("content-type", ""), await request.body())
            if body is None:
                return await standard(request)
            services = await get_services(request)
            client = await CLIENT_SCHEME(request)
            return await submit_and_answer(
                services, body, client, idempotency_key=key, traceparent=headers.get("traceparent")
            )

        return handle_generate


def parse_body(content_type: str, raw: bytes) -> GenerateCreate | None:
    """The body model of a JSON body, or None when FastAPI's handler should judge it
    (any refusal is FastAPI's to word). Pydantic's own JSON parser, not orjson: orjson
    reads an integer past 64 bits as a float, which the model's JSON checks would then
    let through where FastAPI's handler refuses it."""
    if not raw or not is_json_media_type(content_type):
        return None
    try:
        return GenerateCreate.model_validate_json(raw)
    except ValidationError:
        return None


router = APIRouter(tags=["scenarios"], route_class=GenerateRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
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
    client: Client,
    response: Response,
    *,
    idempotency_key: IdempotencyKey = None,
    traceparent: TraceParentHeader = None,
    dry_run: Annotated[bool, Query(description="expand only; store nothing")] = False,
) -> Response | DryRunPublic:
    if dry_run:
        params = body.merged_params()
        if body.callback_url is not None:
            await check_callback_url(str(body.callback_url), services.settings)
        response.status_code = 200
        return dry_run_public(services.orchestrator.plan(body.scenario, params))
    return await submit_and_answer(
        services, body, client, idempotency_key=idempotency_key, traceparent=traceparent
    )


async def submit_and_answer(
    services: AppServices,
    body: GenerateCreate,
    client: Principal,
    *,
    idempotency_key: str | None,
    traceparent: str | None,
) -> Response:
    """The submission itself, for both handlers: 201 with the scenario, or 200 with the
    one an Idempotency-Key replay names."""
    params = body.merged_params()
    tenant = tenant_of(body.tenant, client, services.orchestrator.tenants)
    if body.callback_url is not None:
        await check_callback_url(str(body.callback_url), services.settings)
    orchestrator = services.orchestrator
    callback_url = str(body.callback_url) if body.callback_url else None
    if services.tracing is None:
        submission = await orchestrator.submit(
            body.scenario,
            params,
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            lane=body.priority,
            tenant=tenant,
        )
    else:  # a trace per scenario (decision 43), continuing the caller's when it sent one
        with services.tracing.submit_span(body.scenario, traceparent) as span:
            submission = await orchestrator.submit(
                body.scenario,
                params,
                idempotency_key=idempotency_key,
                callback_url=callback_url,
                traceparent=span.header,
                lane=body.priority,
                tenant=tenant,
            )
            span.scenario(submission.scenario.id, submission.created)
    headers = {} if submission.created else {"Idempotent-Replayed": "true"}
    return Response(
        generated_body(submission),
        status_code=201 if submission.created else 200,
        headers=headers,
        media_type="application/json",
    )


def tenant_of(asked: str | None, client: Principal, tenants: Tenants) -> str:
    """The tenant a submission named, else its token's name when the catalog has such a
    tenant, else `default` (decision 79)."""
    if asked is not None:
        return asked
    return client.name if client.name is not None and client.name in tenants else DEFAULT_TENANT


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
        "run": task.run,
        "runs": task.runs,
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
