"""Service info, health and the template catalog.

`/` and `/health` also answer HEAD (status and headers, no body): load balancers and
uptime probes often send HEAD, and FastAPI routes only the methods they declare."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
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


@router.head(
    "/", operation_id="headServiceInfo", summary="Service info headers (no body), for probes"
)
async def service_info_head() -> Response:
    return Response(status_code=200, media_type="application/json")


async def check_store(services: Services) -> None:
    try:
        await services.orchestrator.store.ping()
    except StoreUnavailableError as exc:
        raise ProblemError(
            503,
            f"store unreachable: {exc.message}",
            code="store-unavailable",
            headers={"Retry-After": "5"},
        ) from exc


@router.get(
    "/health",
    operation_id="getHealth",
    summary="Liveness and store reachability",
    responses=problem_responses(503),
)
async def health(services: Services) -> HealthPublic:
    await check_store(services)
    return HealthPublic(status="healthy", store="ok", version=__version__)


@router.head(
    "/health",
    operation_id="headHealth",
    summary="Liveness and store reachability, as status only (for probes)",
    responses=problem_responses(503),
)
async def health_head(services: Services) -> Response:
    await check_store(services)
    return Response(status_code=200, media_type="application/json")


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
