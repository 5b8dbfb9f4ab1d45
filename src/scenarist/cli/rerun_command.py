"""`scenarist rerun` (run tasks again, with new payload values) and `scenarist history`
(a task's runs), decision 60. Exit codes as the other client commands."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scenarist.cli.client_commands import (
    DEFAULT_URL,
    JsonFlag,
    ScenarioIdArg,
    TimeoutOption,
    TokenOption,
    UrlOption,
    WaitFlag,
    check_timeout_needs_wait,
    parse_param_value,
    print_json,
    reported_errors,
    wait_and_report,
)

TaskOption = Annotated[
    list[str],
    typer.Option("--task", "-t", help="a task to run again (repeatable); its dependents follow"),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="TASK.KEY=VALUE: a new payload value for a named task (repeatable)",
    ),
]


def parse_overrides(pairs: list[str], tasks: list[str]) -> dict[str, dict[str, Any]]:
    """`slide_prompt_2.style=noir` -> {"slide_prompt_2": {"style": "noir"}}; values as
    `--param` reads them."""
    overrides: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, value = pair.partition("=")
        task, dot, key = target.strip().rpartition(".")
        if not sep or not dot or not task or not key:
            raise typer.BadParameter(f"expected TASK.KEY=VALUE, got {pair!r}", param_hint="--set")
        if task not in tasks:
            raise typer.BadParameter(
                f"{task!r} is not among the --task names ({', '.join(tasks)})", param_hint="--set"
            )
        overrides.setdefault(task, {})[key] = parse_param_value(value)
    return overrides


def rerun(
    scenario_id: ScenarioIdArg,
    task: TaskOption,
    *,
    set_: SetOption = None,
    cancel_running: Annotated[
        bool, typer.Option("--cancel-running", help="cancel processing tasks of the rerun first")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="the new runs may not come from a cache")
    ] = False,
    wait: WaitFlag = False,
    timeout: TimeoutOption = None,
    as_json: JsonFlag = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Run the named tasks and every task below them again (other results are kept); with
    --wait, follow the scenario to its end as `submit --wait` does."""
    from scenarist.worker.client import ScenaristClient

    check_timeout_needs_wait(wait, timeout)
    overrides = parse_overrides(set_ or [], task)
    console = Console(stderr=as_json and wait)
    with reported_errors(console), ScenaristClient(url, token) as client:
        answer = client.rerun(
            scenario_id, task, payload=overrides, cancel_running=cancel_running, no_cache=no_cache
        )
        if as_json and not wait:
            print_json(answer)
            return
        again = ", ".join(answer["rerun"])
        console.print(
            f"scenario {answer['id']}: {answer['status']}; again: {again}", highlight=False
        )
        if wait:
            wait_and_report(client, scenario_id, console, as_json=as_json, timeout=timeout)


def history(
    task_id: Annotated[str, typer.Argument(help="task id: SCENARIO_ID:NAME")],
    as_json: JsonFlag = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """A task's runs, newest first: status, attempts, worker, result."""
    from scenarist.worker.client import ScenaristClient

    console = Console()
    with reported_errors(console), ScenaristClient(url, token) as client:
        runs = client.history(task_id)
    if as_json:
        print_json(runs)
        return
    table = Table("run", "status", "attempts", "worker", "result", "error")
    for item in runs["items"]:
        table.add_row(
            str(item["run"]),
            item["status"],
            str(item["attempt"]),
            item["worker_id"] or "",
            item["result_ref"] or "",
            item["error"] or "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command(name="rerun")(rerun)
    app.command(name="history")(history)
