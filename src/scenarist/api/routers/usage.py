"""GET /usage: what workers reported (core/usage.py), added up per tenant, service or
template over the hours since a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from scenarist.api.deps import Caller, Services
from scenarist.api.problems import problem_responses
from scenarist.api.usage_schemas import (
    TENANT_TEXT,
    UsageGroup,
    UsageGroupBy,
    UsagePublic,
)
from scenarist.core.usage import group_totals, sum_usage, usage_hour

router = APIRouter(tags=["usage"])


@router.get(
    "/usage",
    operation_id="getUsage",
    summary="Reported usage (every attempt) added up per tenant, service or template",
    responses=problem_responses(401, 422, 503),
)
async def usage(
    services: Services,
    _: Caller,
    group_by: Annotated[UsageGroupBy, Query(description=TENANT_TEXT)] = UsageGroupBy.SERVICE,
    since: Annotated[
        float | None,
        Query(
            ge=0,
            allow_inf_nan=False,
            description="POSIX seconds; counted from the start of its hour (all when omitted)",
        ),
    ] = None,
) -> UsagePublic:
    totals = await services.orchestrator.usage_totals(since=since)
    groups = group_totals(totals, group_by.value)
    return UsagePublic(
        group_by=group_by,
        since=None if since is None else usage_hour(since),
        groups=[UsageGroup(key=key, usage=usage) for key, usage in groups.items()],
        total=sum_usage(groups.values()),
    )
