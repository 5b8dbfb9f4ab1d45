"""What routers depend on: the app's services (built in the lifespan) and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scenarist.api.auth import Authenticator, Principal, require_role
from scenarist.api.metrics import PrometheusObserver
from scenarist.api.problems import ProblemError
from scenarist.core.catalog import Catalog
from scenarist.service.orchestrator import Orchestrator
from scenarist.settings import Role, Settings


@dataclass(frozen=True, slots=True)
class AppServices:
    settings: Settings
    orchestrator: Orchestrator
    catalog: Catalog
    authenticator: Authenticator
    metrics: PrometheusObserver


# The dependencies are `async def` although they never await: FastAPI runs a plain `def`
# dependency on the thread pool, and three thread hops per request cost more CPU (and GIL
# hand-offs) than the whole worker-protocol call they guard.
async def get_services(request: Request) -> AppServices:
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, AppServices):
        # Only before the lifespan ran (or after it ended): the store is not open.
        raise ProblemError(503, "the service is starting or stopping", code="unavailable")
    return services


Services = Annotated[AppServices, Depends(get_services)]


# Documents the scheme in OpenAPI; the Authenticator decides (and explains) 401s itself.
bearer_scheme = HTTPBearer(auto_error=False, description="a token from SCENARIST_TOKENS")


async def get_caller(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    return services.authenticator.authenticate(credentials.credentials if credentials else None)


Caller = Annotated[Principal, Depends(get_caller)]


async def get_client(caller: Caller) -> Principal:
    return require_role(caller, Role.CLIENT)


Client = Annotated[Principal, Depends(get_client)]
