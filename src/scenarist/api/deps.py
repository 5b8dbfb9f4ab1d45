"""What routers depend on: the app's services (built in the lifespan) and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.base import SecurityBase

from scenarist.api.auth import Authenticator, Principal, require_role
from scenarist.api.metrics import PrometheusObserver
from scenarist.api.problems import ProblemError
from scenarist.api.tracing_config import Tracing
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
    tracing: Tracing | None = None  # decision 43; None: traces off


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


class CallerScheme(SecurityBase):
    """The caller, authenticated (and, with `roles`, authorized) in one dependency.

    It is documented in OpenAPI as the `HTTPBearer` scheme it wraps, and reads the app's
    services itself: FastAPI solves each sub-dependency with a full (and costly) pass of
    its own, which the services, the bearer header and the role check used to take apart.
    The Authenticator decides (and explains) 401s itself, the role check 403s.
    """

    def __init__(self, *roles: Role) -> None:
        self.bearer = HTTPBearer(auto_error=False, description="a token from SCENARIST_TOKENS")
        self.model = self.bearer.model
        self.scheme_name = self.bearer.scheme_name
        self.roles = roles

    async def __call__(self, request: Request) -> Principal:
        services = await get_services(request)
        credentials = await self.bearer(request)
        caller = services.authenticator.authenticate(
            credentials.credentials if credentials else None
        )
        return require_role(caller, *self.roles) if self.roles else caller


# The client role's check, by name: the lean /generate handler (decision 74) calls it too.
CLIENT_SCHEME = CallerScheme(Role.CLIENT)

Caller = Annotated[Principal, Depends(CallerScheme())]
Client = Annotated[Principal, Depends(CLIENT_SCHEME)]
Admin = Annotated[Principal, Depends(CallerScheme(Role.ADMIN))]
