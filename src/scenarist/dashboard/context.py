"""What dashboard routes need from the running app, read from `app.state.services`.

The app factory (a layer above) stores its services object there during the lifespan;
the dashboard may not import it, so it reads the three attributes it needs by name and
checks their types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from scenarist.dashboard.access import Viewer, identify
from scenarist.service.orchestrator import Orchestrator
from scenarist.settings import Settings


class DashboardUnavailableError(Exception):
    """The app's services are not there: before its lifespan started or after it ended."""


@dataclass(frozen=True, slots=True)
class DashboardContext:
    settings: Settings
    orchestrator: Orchestrator
    template_names: tuple[str, ...]  # the catalog's scenario names, for the filter menu


def get_context(request: Request) -> DashboardContext:
    services = getattr(request.app.state, "services", None)
    settings = getattr(services, "settings", None)
    orchestrator = getattr(services, "orchestrator", None)
    if not isinstance(settings, Settings) or not isinstance(orchestrator, Orchestrator):
        raise DashboardUnavailableError("the service is starting or stopping")
    return DashboardContext(
        settings=settings,
        orchestrator=orchestrator,
        template_names=catalog_names(getattr(services, "catalog", None)),
    )


def catalog_names(catalog: Any) -> tuple[str, ...]:
    names = getattr(catalog, "names", None)
    if not callable(names):
        return ()
    return tuple(sorted(str(name) for name in names()))


Ctx = Annotated[DashboardContext, Depends(get_context)]


def get_viewer(request: Request, ctx: Ctx) -> Viewer:
    return identify(request, ctx.settings)


Seen = Annotated[Viewer, Depends(get_viewer)]
