"""`scenarist serve`: run the HTTP API with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from scenarist.api.app import create_app
from scenarist.api.logs import configure_logging
from scenarist.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 3


def build_settings(overrides: dict[str, Any]) -> Settings:
    """Environment (`SCENARIST_*`) first, then whatever was given on the command line."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc


def serve(
    *,
    host: Annotated[str | None, typer.Option(help="bind address (default: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: 8001)")] = None,
    store: Annotated[
        str | None,
        typer.Option(help="sqlite:///path.db or redis://host:port/db (default: SQLite file)"),
    ] = None,
    scenarios: Annotated[
        Path | None, typer.Option(help="scenario catalog YAML (default: built-in)")
    ] = None,
    publish_lists: Annotated[
        bool | None,
        typer.Option(
            "--publish-lists/--no-publish-lists",
            help="also push ready tasks onto per-service Redis lists (seed workers)",
        ),
    ] = None,
    insecure: Annotated[
        bool | None,
        typer.Option("--insecure", help="allow a non-loopback bind without tokens"),
    ] = None,
    log_json: Annotated[
        bool | None, typer.Option("--log-json", help="one JSON object per log line")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="one log line per HTTP request (default: on; SCENARIST_ACCESS_LOG)",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (port 8001 by default, like the original service)."""
    settings = build_settings(
        {
            "host": host,
            "port": port,
            "store": store,
            "scenarios": scenarios,
            "publish_lists": publish_lists,
            "insecure": insecure,
            "log_json": log_json,
            "access_log": access_log,
        }
    )
    problem = settings.insecure_bind_problem()
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2)
    if settings.publish_lists and not settings.store.startswith(("redis", "unix")):
        typer.echo("error: --publish-lists needs a redis:// store (--store)", err=True)
        raise typer.Exit(code=2)
    configure_logging(json_lines=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the logging configured above
        access_log=settings.access_log,
        # Named rather than "auto": a missing uvloop/httptools must fail loudly instead of
        # silently falling back to the pure-Python loop and parser (several times slower).
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        # Long-polling lease requests would otherwise hold a SIGTERM for up to their
        # wait_seconds; cut them off: a task leased by a cancelled request is requeued by
        # the reaper when its lease expires (at-least-once), never lost.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
