"""POST /generate/batch: the request (items validated one by one) and the per-item answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scenarist.api.problems import Problem
from scenarist.api.schemas import LIMITS, SEED_GENERATE_EXAMPLE, GenerateCreate, ShortText
from scenarist.core.model import ScenarioStatus


class GenerateBatchItem(GenerateCreate):
    """One item: a POST /generate body, plus the Idempotency-Key header as a field."""

    idempotency_key: ShortText | None = Field(
        default=None,
        description="as POST /generate's Idempotency-Key: a repeat (in this batch or any "
        "later request) answers with the first submission; with a different request, 422",
    )


class GenerateBatchCreate(BaseModel):
    """Items are documented as objects, not as GenerateBatchItem: each item is validated
    on its own, so one bad item gets its own problem in the answer and the others are
    still submitted. Their shape is GenerateBatchItem's."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {**SEED_GENERATE_EXAMPLE, "idempotency_key": "video-1"},
                        {"scenario": "CreateVoice", "params": {"description": "Hi", "count": 2}},
                    ]
                }
            ]
        },
    )

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=LIMITS.max_submit_batch,
        description="POST /generate bodies (GenerateBatchItem: the template's parameters at "
        "the top level or under `params`, `callback_url`, `priority`, `idempotency_key`); the "
        "whole body is capped by SCENARIST_MAX_BODY_BYTES",
    )


class BatchItemPublic(BaseModel):
    index: int = Field(description="the item's position in `items`, from 0")
    status: int = Field(
        description="201 created, 200 an idempotency replay, else the problem's status"
    )
    scenario_id: str | None = Field(default=None, description="on success")
    scenario: str | None = Field(default=None, description="template name, on success")
    scenario_status: ScenarioStatus | None = None
    task_count: int | None = None
    created: bool | None = Field(default=None, description="false on a replay")
    problem: Problem | None = Field(default=None, description="why this item was refused")


class GenerateBatchPublic(BaseModel):
    created: int = Field(description="items that created a scenario")
    replayed: int = Field(description="items answered by an earlier submission (same key)")
    failed: int = Field(description="items refused (each has a problem)")
    items: list[BatchItemPublic]
