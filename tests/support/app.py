"""The app in-process with its lifespan (store open, background loops running)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from scenarist.api.app import create_app
from scenarist.api.tracing_config import Tracing
from scenarist.settings import Settings


def make_settings(store: str, **overrides: Any) -> Settings:
    """Settings with fast background loops, so tests do not wait on them."""
    defaults: dict[str, Any] = {
        "store": store,
        "reaper_interval": 0.05,
        "callback_interval": 0.05,
        "sse_heartbeat_seconds": 0.2,
    }
    return Settings(**{**defaults, **overrides})


@asynccontextmanager
async def serve(
    settings: Settings, *, base_url: str = "http://scenarist.test", tracing: Tracing | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan and a client talking to it over ASGI."""
    app = create_app(settings, tracing=tracing)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
