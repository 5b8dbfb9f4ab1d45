"""GET /metrics: Prometheus text exposition, queue gauges read from the store on scrape."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from scenarist.api.deps import Caller, Services
from scenarist.api.problems import problem_responses

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 503),
    },
)
async def metrics(services: Services, _: Caller) -> Response:
    queues = await services.orchestrator.queue_stats()
    usage = await services.orchestrator.usage_totals()
    live = await services.orchestrator.workers.live_per_service()
    cache = await services.orchestrator.cache_counts()
    tenants = await services.orchestrator.tenant_stats()
    return Response(
        services.metrics.exposition(queues, usage, live_workers=live, cache=cache, tenants=tenants),
        media_type=CONTENT_TYPE_LATEST,
    )
