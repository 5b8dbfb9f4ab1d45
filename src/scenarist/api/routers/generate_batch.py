"""POST /generate/batch: many scenarios in one request and one store call, one outcome per
item. An item is refused on its own (its problem in the answer); the others are submitted."""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import ExitStack
from typing import Any

import orjson
from fastapi import APIRouter, Response
from pydantic import ValidationError

from scenarist.api.auth import Principal
from scenarist.api.batch_schemas import GenerateBatchCreate, GenerateBatchItem, GenerateBatchPublic
from scenarist.api.callback_policy import check_callback_url
from scenarist.api.deps import Client, Services
from scenarist.api.problems import Problem, problem_of, problem_responses, validation_problem
from scenarist.api.routers.generate import TraceParentHeader, tenant_of
from scenarist.api.tracing_config import SubmitSpan
from scenarist.core.errors import ScenaristError
from scenarist.core.tenants import Tenants
from scenarist.service.submission import Outcome, Submission, SubmitRequest
from scenarist.settings import Settings

router = APIRouter(tags=["scenarios"])


@router.post(
    "/generate/batch",
    operation_id="generateScenarios",
    status_code=200,
    response_model=GenerateBatchPublic,
    summary="Submit many scenarios at once, with one outcome per item",
    response_description="per item: the scenario created (or replayed), or why it was refused",
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
)
async def generate_batch(
    body: GenerateBatchCreate,
    services: Services,
    client: Client,
    traceparent: TraceParentHeader = None,
) -> Response:
    tenants = services.orchestrator.tenants
    answers: list[Outcome | Problem | SubmitRequest] = [
        checked_item(i, client, tenants) for i in body.items
    ]
    with_callback = [
        (i, a.callback_url)
        for i, a in enumerate(answers)
        if isinstance(a, SubmitRequest) and a.callback_url is not None
    ]
    if with_callback:  # only these need to wait (DNS); the others cost no task each
        refusals = await asyncio.gather(
            *(callback_refusal(url, services.settings) for _, url in with_callback)
        )
        for (i, _url), refusal in zip(with_callback, refusals, strict=True):
            if refusal is not None:
                answers[i] = refusal
    valid = [(i, a) for i, a in enumerate(answers) if isinstance(a, SubmitRequest)]
    with ExitStack() as open_spans:
        spans: list[SubmitSpan | None] = [None] * len(valid)
        if services.tracing is not None:  # a trace per scenario, as for POST /generate
            for k, (i, request) in enumerate(valid):
                opened = open_spans.enter_context(
                    services.tracing.submit_span(request.template, traceparent)
                )
                spans[k] = opened
                valid[k] = (i, dataclasses.replace(request, traceparent=opened.header))
        submitted = await services.orchestrator.submit_many([request for _, request in valid])
        for (i, _request), outcome, span in zip(valid, submitted, spans, strict=True):
            answers[i] = outcome
            if span is not None and isinstance(outcome, Submission):
                span.scenario(outcome.scenario.id, outcome.created)
    return Response(batch_body(answers), media_type="application/json")


def checked_item(
    item: dict[str, Any], client: Principal, tenants: Tenants
) -> SubmitRequest | Problem:
    """The item as a SubmitRequest, or the problem that refuses it (its fields named
    relative to the item; the answer says which item)."""
    try:
        parsed = GenerateBatchItem.model_validate(item)
    except ValidationError as exc:
        return validation_problem(exc.errors())
    try:
        params = parsed.merged_params()
    except ScenaristError as error:
        return problem_of(error)
    callback = str(parsed.callback_url) if parsed.callback_url is not None else None
    return SubmitRequest(
        parsed.scenario,
        params,
        parsed.idempotency_key,
        callback,
        lane=parsed.priority,
        tenant=tenant_of(parsed.tenant, client, tenants),
    )


async def callback_refusal(url: str, settings: Settings) -> Problem | None:
    """The callback address policy's answer for one item (None: allowed)."""
    try:
        await check_callback_url(url, settings)
    except ScenaristError as error:
        return problem_of(error)
    return None


def batch_body(answers: list[Outcome | Problem | SubmitRequest]) -> bytes:
    """GenerateBatchPublic as JSON, written directly (tests/api hold it to the model)."""
    items: list[dict[str, Any]] = []
    counts = {"created": 0, "replayed": 0, "failed": 0}
    for index, answer in enumerate(answers):
        if isinstance(answer, Submission):
            counts["created" if answer.created else "replayed"] += 1
            items.append(submission_item(index, answer))
            continue
        problem = problem_of(answer) if isinstance(answer, ScenaristError) else answer
        if not isinstance(problem, Problem):  # a SubmitRequest left unanswered: a bug
            raise TypeError(f"item {index} has no outcome")
        counts["failed"] += 1
        items.append(
            {
                "index": index,
                "status": problem.status,
                "problem": problem.model_dump(exclude_none=True),
            }
        )
    return orjson.dumps({**counts, "items": items})


def submission_item(index: int, submission: Submission) -> dict[str, Any]:
    scenario = submission.scenario
    return {
        "index": index,
        "status": 201 if submission.created else 200,
        "scenario_id": scenario.id,
        "scenario": scenario.template,
        "scenario_status": scenario.status.value,
        "task_count": len(submission.tasks),
        "created": submission.created,
    }
