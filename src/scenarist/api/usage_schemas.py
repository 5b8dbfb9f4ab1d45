"""Edge models of usage (core/usage.py): the `usage` a worker reports with a completion or
failure, and the answer of `GET /usage`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from scenarist.core.usage import (
    DEFAULT_TENANT,
    MAX_USAGE_NAMES,
    MAX_USAGE_VALUE,
    USAGE_HOUR_SECONDS,
    USAGE_NAME,
)

UsageName = Annotated[str, StringConstraints(pattern=USAGE_NAME.pattern)]
UsageAmount = Annotated[float, Field(ge=0, le=MAX_USAGE_VALUE, allow_inf_nan=False)]
UsageReport = Annotated[
    dict[UsageName, UsageAmount],
    Field(
        max_length=MAX_USAGE_NAMES,
        description="what this attempt used, added to the task's and the totals: names of "
        f"lower-case letters, digits and _ (at most {MAX_USAGE_NAMES}), amounts >= 0",
        examples=[{"gpu_seconds": 12.5, "cost_usd": 0.031, "tokens": 812}],
    ),
]
USAGE_TEXT = "every attempt's reported usage added up (failed attempts too)"


class UsageGroupBy(StrEnum):
    TENANT = "tenant"
    SERVICE = "service"
    TEMPLATE = "template"


class UsageGroup(BaseModel):
    key: str = Field(description="the tenant, service or template")
    usage: dict[str, float]


class UsagePublic(BaseModel):
    group_by: UsageGroupBy
    since: float | None = Field(
        description="start of the first hour counted (`since` rounded down to its hour)"
    )
    resolution_seconds: float = Field(
        default=USAGE_HOUR_SECONDS, description="totals are kept per hour"
    )
    groups: list[UsageGroup] = Field(description="one per key, sorted by key")
    total: dict[str, float] = Field(description="every group added up")


TENANT_TEXT = (
    f"group_by=tenant: scenarios carry no tenant yet, so every total is tenant {DEFAULT_TENANT!r}"
)
