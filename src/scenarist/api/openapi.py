"""The OpenAPI document, post-processed so that every error response is documented as
what it really is: an RFC 9457 problem (FastAPI would describe 422 as its own shape)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from scenarist.api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Any operation may meet these: the store can be down, and the validation of path, query
# and header parameters happens before the operation runs.
ALWAYS_POSSIBLE = (422, 503)
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problem_content() -> dict[str, Any]:
    return {
        PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF},
        "application/json": {"schema": PROBLEM_REF},
    }


def document_problems(spec: dict[str, Any], *, auth_enabled: bool) -> dict[str, Any]:
    """Problem content on every error response; bearer security only when tokens are
    configured (an open server's document must not claim it checks credentials)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not auth_enabled:
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
                operation.get("responses", {}).pop("403", None)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code in ALWAYS_POSSIBLE:
                responses.setdefault(str(code), {"description": HTTPStatus(code).phrase})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = problem_content()
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if not auth_enabled:
        spec["components"].pop("securitySchemes", None)
    return spec


def install_openapi(app: FastAPI, *, auth_enabled: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document_problems(spec, auth_enabled=auth_enabled)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
