"""The one place that turns errors into RFC 9457 `application/problem+json` responses.

Every `type` is `https://scenarist.dev/problems/<code>`, where `<code>` is the stable
machine code of the error class (core/errors.py) or of an HTTP-level problem below.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenarist.core.errors import (
    BadGroupResultError,
    CatalogError,
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    NotRunnableError,
    ParamError,
    RenderError,
    ScenaristError,
    StoreUnavailableError,
    UnknownScenarioError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://scenarist.dev/problems/"
RETRY_AFTER_SECONDS = 5
# A 422 lists every invalid field up to this many (a body is capped, but can still hold
# thousands of unknown keys).
MAX_LISTED_ERRORS = 50
log = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
ERROR_STATUS: tuple[tuple[type[ScenaristError], int], ...] = (
    (UnknownScenarioError, 404),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ParamError, 422),
    (IdempotencyKeyReusedError, 422),
    (RenderError, 422),
    (NotRunnableError, 422),
    (BadGroupResultError, 422),
    (StoreUnavailableError, 503),
    (CatalogError, 500),
)

# Codes of problems raised by the HTTP layer itself (not by core).
HTTP_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    500: "internal-error",
    503: "unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details, with scenarist's extension members."""

    type: str = Field(examples=["https://scenarist.dev/problems/illegal-transition"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["task '01J...:video' is success; cannot change it to failed"])
    field: str | None = Field(default=None, description="the offending field, when one is")
    fields: list[str] | None = Field(
        default=None, description="every offending field, on 422 (the first is `field`)"
    )
    current_status: str | None = Field(
        default=None, description="the task's or scenario's status, on 409"
    )
    scenario_id: str | None = Field(
        default=None, description="the scenario an Idempotency-Key belongs to, on its reuse"
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="every validation error, on 422"
    )


class ProblemError(Exception):
    """An HTTP-level problem raised by the API layer (auth, limits, malformed bodies)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or HTTP_CODES.get(status, "error")
        self.field = field
        self.fields = fields
        self.headers = headers or {}


def build_problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    fields: list[str] | None = None,
    current_status: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Problem:
    return Problem(
        type=PROBLEM_BASE + code,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        field=field,
        fields=fields,
        current_status=current_status,
        errors=errors,
    )


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    fields: list[str] | None = None,
    current_status: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    problem = build_problem(
        status,
        code,
        detail,
        field=field,
        fields=fields,
        current_status=current_status,
        errors=errors,
    )
    return render_problem(problem, headers)


def render_problem(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def status_of(error: ScenaristError) -> int:
    return next((status for cls, status in ERROR_STATUS if isinstance(error, cls)), 400)


def problem_of(error: ScenaristError) -> Problem:
    current = error.current_status if isinstance(error, ConflictError) else None
    problem = build_problem(
        status_of(error), error.code, error.message, field=error.field, current_status=current
    )
    if isinstance(error, IdempotencyKeyReusedError):
        problem.scenario_id = error.scenario_id
    if isinstance(error, ParamError) and len(error.fields) > 1:
        problem.fields = list(error.fields)
    return problem


def scenarist_error_response(error: ScenaristError) -> JSONResponse:
    problem = problem_of(error)
    if problem.status >= 500:
        log.error("request failed: %s", error.message)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if problem.status == 503 else None
    return render_problem(problem, headers)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        first = errors[0]
        return problem_response(400, "malformed-json", f"body is not valid JSON: {first['msg']}")
    return render_problem(validation_problem(errors))


def validation_problem(errors: Sequence[Any]) -> Problem:
    """A 422 naming every invalid field (up to MAX_LISTED_ERRORS) of pydantic `errors`."""
    listed = list(errors[:MAX_LISTED_ERRORS])
    fields = list(dict.fromkeys(f for e in listed if (f := field_name(e["loc"])) is not None))
    detail = "; ".join(f"{field_name(e['loc']) or 'body'}: {e['msg']}" for e in listed)
    if len(errors) > len(listed):
        detail += f"; and {len(errors) - len(listed)} more"
    cleaned = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in listed]
    return build_problem(
        422,
        "validation-failed",
        detail,
        field=fields[0] if fields else None,
        fields=fields or None,
        errors=jsonable_encoder(cleaned),
    )


def field_name(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """`("body", "items", 0, "lease_token")` -> `items.0.lease_token`."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_problem_handlers(app: FastAPI) -> None:
    async def on_scenarist_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ScenaristError)
        return scenarist_error_response(exc)

    async def on_api_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            field=exc.field,
            fields=exc.fields,
            headers=exc.headers,
        )

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, "error")
        return problem_response(
            exc.status_code,
            code,
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "internal-error", "internal error; see the server log")

    app.add_exception_handler(ScenaristError, on_scenarist_error)
    app.add_exception_handler(ProblemError, on_api_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json for `statuses`."""
    return {
        status: {"description": HTTPStatus(status).phrase, "model": Problem} for status in statuses
    }
