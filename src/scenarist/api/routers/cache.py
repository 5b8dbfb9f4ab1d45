"""DELETE /cache: empty the step cache (core/step_cache.py), of one service or all."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from scenarist.api.deps import Admin, Services
from scenarist.api.problems import problem_responses

router = APIRouter(tags=["operations"])


@router.delete(
    "/cache",
    operation_id="clearCache",
    summary="Empty the step cache (admin): every entry, or one service's",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 422, 503),
)
async def clear_cache(
    services: Services,
    _: Admin,
    service: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="only this service's entries (all when omitted)",
        ),
    ] = None,
) -> Response:
    await services.orchestrator.clear_cache(service=service)
    return Response(status_code=204)
