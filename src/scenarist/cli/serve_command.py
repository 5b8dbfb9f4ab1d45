"""`scenarist serve`: run the HTTP API with uvicorn.

Every mistake a user can make before the server starts (a bad setting or token list, a
bad store URL, a bad catalog, an open public bind) is checked here first and reported as
one line per problem on stderr with exit code 2, never as a traceback from inside the
server's start-up. The web stack is imported only once those checks pass, so the other
commands, and `--help`, start without it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from scenarist.core.catalog import Catalog
    from scenarist.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 3
EXIT_BAD_START = 2
log = logging.getLogger(__name__)


def fail(*lines: str) -> typer.Exit:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(code=EXIT_BAD_START)


def build_settings(overrides: dict[str, Any]) -> Settings:
    """Environment (`SCENARIST_*`) first, then whatever was given on the command line."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from scenarist.settings import Settings, describe_settings_error

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise fail(*describe_settings_error(exc, os.environ.get("SCENARIST_TOKENS"))) from None
    except SettingsError as exc:
        # Raised for a value that is not valid JSON (tokens); its text names the setting,
        # never the value.
        raise fail(f"cannot read the settings: {exc}") from None


def check_store(url: str) -> str | None:
    """What is wrong with a store URL's form, or with the place of a SQLite file, or None.
    A Redis server that is down is not a mistake in the command: the API starts and
    answers 503 until it is back (docs/reliability.md)."""
    from urllib.parse import urlsplit

    from scenarist.storage import REDIS_SCHEMES, StoreConfigError, sqlite_path

    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "sqlite":
            return sqlite_place_problem(sqlite_path(url))
        if scheme in REDIS_SCHEMES and "," not in parts.netloc:
            _ = parts.port  # reading the port checks it
        elif scheme not in REDIS_SCHEMES:
            return (
                f"unknown store URL scheme {scheme + '://' if scheme else '(none)'}: expected "
                "sqlite:///path, redis://host:port/db or redis+cluster://host:port[,host:port]"
            )
    except (StoreConfigError, ValueError) as exc:
        return f"bad --store URL: {exc}"
    return None


def sqlite_place_problem(path: Path) -> str | None:
    """Create the file's directory now (the store would) to find out whether it can be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the SQLite store {path}: {exc.strerror or exc}"
    if path.is_dir():
        return f"cannot create the SQLite store {path}: it is a directory"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"cannot create the SQLite store {path}: {path.parent} is not writable"
    return None


def load_serve_catalog(settings: Settings) -> Catalog:
    """The catalog the server will use, checked now; its errors read like `validate`'s."""
    from scenarist.core.catalog import load_catalog
    from scenarist.core.errors import CatalogError

    try:
        return load_catalog(settings.scenarios)
    except CatalogError as exc:
        raise fail(*exc.lines()) from None


def check_start(settings: Settings) -> Catalog:
    problem = settings.insecure_bind_problem()
    if problem is not None:
        raise fail(problem)
    if settings.publish_lists and not settings.store.startswith(("redis", "unix")):
        raise fail("--publish-lists needs a redis:// store (--store)")
    problem = check_store(settings.store)
    if problem is not None:
        raise fail(problem)
    return load_serve_catalog(settings)


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
    catalog = check_start(settings)
    import uvicorn

    from scenarist.api.app import create_app
    from scenarist.api.logs import configure_logging

    configure_logging(json_lines=settings.log_json)
    log.info(
        "store %s; catalog %s (%d scenarios)",
        settings.redacted_store(),
        catalog.source,
        len(catalog.scenarios),
    )
    try:
        app = create_app(settings)
    except ValueError as exc:  # OTEL_* asks for traces the install cannot export
        raise fail(str(exc)) from None
    uvicorn.run(
        app,
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
