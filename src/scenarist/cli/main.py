"""The `scenarist` command. Each command group lives in its own module and registers here."""

from __future__ import annotations

import typer

from scenarist.cli import (
    cache_commands,
    catalog_commands,
    client_commands,
    demo_command,
    rerun_command,
    serve_command,
)

app = typer.Typer(
    name="scenarist",
    help="Scenarios in, task graphs out: a small DAG orchestrator with an HTTP worker protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

cache_commands.register(app)
catalog_commands.register(app)
client_commands.register(app)
demo_command.register(app)
rerun_command.register(app)
serve_command.register(app)


def main() -> None:
    app()
