"""Service info, health and the template catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from scenarist import __version__
from scenarist.api.deps import Caller, Services
from scenarist.api.problems import ProblemError, problem_responses
from scenarist.core.errors import StoreUnavailableError

router = APIRouter()


class EndpointInfo(BaseModel):
    method: str
    path: str
    summary: str


class ServiceInfo(BaseModel):
    service: str = "scenarist"
    version: str
    description: str
    endpoints: list[EndpointInfo]


class HealthPublic(BaseModel):
    status: str = Field(examples=["healthy"])
    store: str = Field(examples=["ok"])
    version: str


class TemplateList(BaseModel):
    templates: list[dict[str, Any]] = Field(description="each template's description")


@router.get("/", operation_id="getServiceInfo", summary="Service info and endpoint list")
async def service_info(request: Request) -> ServiceInfo:
    # The OpenAPI document is the one complete (and cached) list of routes.
    paths: dict[str, dict[str, Any]] = request.app.openapi().get("paths", {})
    endpoints = [
        EndpointInfo(method=method.upper(), path=path, summary=operation.get("summary", ""))
        for path, operations in paths.items()
        for method, operation in operations.items()
    ]
    return ServiceInfo(
        version=__version__,
        description="Scenarios in, task graphs out, dispatched to HTTP workers",
        endpoints=endpoints,
    )


@router.get(
    "/health",
    operation_id="getHealth",
    summary="Liveness and store reachability",
    responses=problem_responses(503),
)
async def health(services: Services) -> HealthPublic:
    try:
        await services.orchestrator.store.ping()
    except StoreUnavailableError as exc:
        raise ProblemError(
            503,
            f"store unreachable: {exc.message}",
            code="store-unavailable",
            headers={"Retry-After": "5"},
        ) from exc
    return HealthPublic(status="healthy", store="ok", version=__version__)


@router.get(
    "/templates",
    operation_id="listTemplates",
    summary="Scenario templates in the catalog",
    responses=problem_responses(401),
)
async def list_templates(services: Services, _: Caller) -> TemplateList:
    catalog = services.catalog
    return TemplateList(templates=[catalog.get(name).describe() for name in catalog.names()])


@router.get(
    "/templates/{name}",
    operation_id="getTemplate",
    summary="One scenario template",
    responses=problem_responses(401, 404),
)
async def get_template(name: str, services: Services, _: Caller) -> dict[str, Any]:
    return services.catalog.get(name).describe()
