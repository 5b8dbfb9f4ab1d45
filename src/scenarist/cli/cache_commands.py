"""`scenarist cache clear [--service S]`: empty the server's step cache (admin)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from scenarist.cli.client_commands import DEFAULT_URL, TokenOption, UrlOption, reported_errors

cache_app = typer.Typer(help="The step cache: cached task results reused across runs.")


@cache_app.command(name="clear")
def clear(
    service: Annotated[
        str | None, typer.Option("--service", help="only this service's entries")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Delete the cached results (every service unless --service); needs an admin token."""
    from scenarist.worker.client import ScenaristClient

    console = Console()
    with reported_errors(console), ScenaristClient(url, token) as client:
        client.clear_cache(service)
    what = f"service {service}" if service is not None else "every service"
    console.print(f"step cache cleared for {what}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
