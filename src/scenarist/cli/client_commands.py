"""Client commands: submit, status, cancel, retry, and `worker` to run a user's handlers.

Exit codes: 0 success; 1 the scenario failed or was cancelled (`--wait`); 2 the request
itself failed (server unreachable, refused, bad arguments); 3 `--timeout` ran out while
waiting (the scenario goes on).

The worker SDK (httpx) is imported inside the commands that talk to a server, so the
other commands, and `--help`, start without it.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scenarist.core.model import Lane

if TYPE_CHECKING:
    from scenarist.cli.watch import ScenarioOutcome
    from scenarist.worker.client import ScenaristClient
    from scenarist.worker.worker import Worker

EXIT_FAILED = 1
EXIT_REQUEST_ERROR = 2
EXIT_TIMED_OUT = 3
# The SDK's default (scenarist.worker.protocol.DEFAULT_URL), repeated so that declaring
# the option needs no SDK import; a test keeps the two equal.
DEFAULT_URL = "http://127.0.0.1:8001"

UrlOption = Annotated[
    str, typer.Option("--url", envvar="SCENARIST_URL", help="server URL", show_default=True)
]
TokenOption = Annotated[
    str | None, typer.Option("--token", envvar="SCENARIST_TOKEN", help="bearer token")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
ScenarioIdArg = Annotated[str, typer.Argument(help="scenario id")]
WaitFlag = Annotated[bool, typer.Option("--wait", help="follow progress until the end")]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0.0,
        help="with --wait: give up after SECONDS (exit 3; the scenario keeps running)",
    ),
]


def parse_param_value(text: str) -> Any:
    """`--param` values: bool, int, finite float, JSON array/object/string, else the
    string as given. The server validates types against the template's declaration."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            number = convert(text)
        except ValueError:
            continue
        if not (isinstance(number, float) and not math.isfinite(number)):
            return number
    if text[:1] in ("[", "{", '"'):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        params[key.strip()] = parse_param_value(value)
    return params


@contextmanager
def reported_errors(console: Console) -> Iterator[None]:
    """Turn client errors into one readable line and exit code 2."""
    from scenarist.worker.errors import ApiError, ClientError

    try:
        yield
    except ApiError as exc:
        field = exc.problem.get("field")
        where = f" (field {field})" if field else ""
        console.print(f"[red]error:[/red] {exc.detail or exc}{where}", highlight=False)
        raise typer.Exit(EXIT_REQUEST_ERROR) from exc
    except ClientError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_REQUEST_ERROR) from exc


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def outcome_json(outcome: ScenarioOutcome) -> dict[str, Any]:
    return {
        "scenario": outcome.scenario,
        "results": [
            {"task": r["name"], "result_ref": r.get("result_ref"), "result": r.get("result")}
            for r in outcome.results
        ],
        "failures": list(outcome.scenario.get("failures", [])),
    }


def print_outcome(console: Console, outcome: ScenarioOutcome) -> None:
    scenario_id = outcome.scenario["id"]
    colour = "green" if outcome.succeeded else "red"
    console.print(f"scenario {scenario_id}: [{colour}]{outcome.status}[/{colour}]")
    for result in outcome.results:
        if result.get("result_ref"):
            console.print(f"  {result['name']}: {result['result_ref']}", highlight=False)
    print_failures(console, outcome.scenario)


def print_failures(console: Console, scenario: Mapping[str, Any]) -> None:
    """Each failed task: why it was not retried, its error, and what it caused to be
    skipped; then any skip whose cause is not a failure (a cancelled upstream task)."""
    explained: set[str] = set()
    for failure in scenario.get("failures", []):
        console.print(
            f"  [red]{escape(failure['task'])}[/red] {failure['description']}: "
            f"{escape(str(failure['error']))}",
            highlight=False,
            soft_wrap=True,  # an error message stays one line that grep can find
        )
        if failure["skipped"]:
            console.print(
                f"    skipped because of it: {', '.join(failure['skipped'])}",
                soft_wrap=True,
                markup=False,
            )
        explained.update(failure["skipped"])
    for task in scenario.get("tasks", []):
        causes = task.get("skipped_because") or []
        if causes and task["name"] not in explained:
            console.print(
                f"  {task['name']} skipped because {', '.join(causes)} did not succeed",
                soft_wrap=True,
                markup=False,
            )


def tasks_table(scenario: Mapping[str, Any]) -> Table:
    table = Table(title=f"{scenario['scenario']} {scenario['id']}: {scenario['status']}")
    for column in ("task", "service", "level", "status", "why"):
        table.add_column(column)
    for task in scenario.get("tasks", []):
        table.add_row(
            task["name"], task["service"], str(task["level"]), task["status"], task_reason(task)
        )
    return table


def task_reason(task: Mapping[str, Any]) -> str:
    """The table's short `why` column: a failure's error, a skip's cause (escaped: a
    cell is rich markup, an error message is plain text)."""
    if task.get("skipped_because"):
        return escape("caused by " + ", ".join(task["skipped_because"]))
    if task["status"] == "failed":
        return escape(str(task.get("error") or ""))
    return ""


def progress_line(scenario: Mapping[str, Any]) -> str:
    progress = scenario["progress"]
    if scenario["status"] == "success" or "summary" not in progress:
        return f"progress: {progress['finished']}/{progress['total']} ({progress['percent']}%)"
    return f"progress: {progress['summary']}"


def submit(
    scenario: Annotated[str | None, typer.Argument(help="template name, e.g. CreateVideo")] = None,
    *,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE, repeatable")
    ] = None,
    wait: WaitFlag = False,
    timeout: TimeoutOption = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    priority: Annotated[
        Lane | None,
        typer.Option(
            "--priority",
            help="the scenario's lane: a lease takes interactive tasks first, batch last "
            "(default: normal)",
        ),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="the tenant whose fair share the scenario takes (the catalog's tenants; "
            "default: the token's name when it is one, else default)",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="print only the scenario id (for $(...))")
    ] = False,
    as_json: JsonFlag = False,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="submit every line of a JSONL file (one POST /generate body per line, "
            "optionally with idempotency_key) in batches, instead of one SCENARIO",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1000, help="with --from-file")
    ] = 100,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Submit a scenario (or a file of them); with --wait, show progress and exit 1 if it
    fails."""
    from scenarist.worker.client import ScenaristClient

    if from_file is not None:
        from scenarist.cli.submit_file import run_from_file

        alone = scenario is None and not (
            param or wait or idempotency_key or quiet or priority or tenant
        )
        run_from_file(from_file, batch_size, alone=alone, as_json=as_json, url=url, token=token)
        return
    if scenario is None:
        raise typer.BadParameter("name a template (e.g. CreateVideo), or give --from-file FILE")
    if quiet and (wait or as_json):
        raise typer.BadParameter("--quiet prints only the id: not with --wait or --json")
    check_timeout_needs_wait(wait, timeout)
    console = Console(stderr=as_json)
    params = parse_params(param or [])
    with reported_errors(console), ScenaristClient(url, token) as client:
        created = client.submit(
            scenario,
            params,
            idempotency_key=idempotency_key,
            priority=None if priority is None else priority.value,
            tenant=tenant,
        )
        scenario_id = created["scenario_id"]
        if not wait:
            if as_json:
                print_json(created)
            elif quiet:
                typer.echo(scenario_id)
            else:
                console.print(f"submitted {scenario} as {scenario_id}", highlight=False)
            return
        console.print(f"submitted {scenario} as {scenario_id}", highlight=False)
        wait_and_report(client, scenario_id, console, as_json=as_json, timeout=timeout)


def check_timeout_needs_wait(wait: bool, timeout: float | None) -> None:
    """--timeout bounds a --wait; alone it would be ignored without a word."""
    if timeout is not None and not wait:
        raise typer.BadParameter("--timeout bounds --wait: add --wait, or leave --timeout out")


def wait_and_report(
    client: ScenaristClient,
    scenario_id: str,
    console: Console,
    *,
    as_json: bool,
    timeout: float | None,
) -> None:
    """`--wait`: live progress, a notice for a service no worker serves, the outcome;
    exit 1 when the scenario did not succeed, 3 when `timeout` ran out first."""
    from scenarist.cli.watch import WaitOptions, WaitTimedOutError, wait_for_scenario

    notices = Console(stderr=True) if as_json else console

    def notice(line: str) -> None:
        notices.print(f"[yellow]{escape(line)}[/yellow]", highlight=False, soft_wrap=True)

    options = WaitOptions(timeout=timeout, notice=notice)
    try:
        outcome = wait_for_scenario(
            client, scenario_id, console=None if as_json else console, options=options
        )
    except WaitTimedOutError as exc:
        notices.print(f"[red]{escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_TIMED_OUT) from exc
    if as_json:
        print_json(outcome_json(outcome))
    else:
        print_outcome(console, outcome)
    if not outcome.succeeded:
        raise typer.Exit(EXIT_FAILED)


def status(
    scenario_id: ScenarioIdArg,
    as_json: JsonFlag = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show a scenario's status, progress and tasks."""
    from scenarist.worker.client import ScenaristClient

    console = Console()
    with reported_errors(console), ScenaristClient(url, token) as client:
        scenario = client.get_scenario(scenario_id)
    if as_json:
        print_json(scenario)
        return
    console.print(tasks_table(scenario))
    console.print(progress_line(scenario), highlight=False)
    print_failures(console, scenario)


def cancel(
    scenario_id: ScenarioIdArg,
    as_json: JsonFlag = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Cancel every unfinished task of a scenario."""
    from scenarist.worker.client import ScenaristClient

    control_scenario(ScenaristClient.cancel, scenario_id, as_json=as_json, url=url, token=token)


def retry(
    scenario_id: ScenarioIdArg,
    *,
    wait: WaitFlag = False,
    timeout: TimeoutOption = None,
    as_json: JsonFlag = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Requeue a scenario's failed, skipped and cancelled tasks; with --wait, follow it
    to the end as `submit --wait` does."""
    from scenarist.worker.client import ScenaristClient

    check_timeout_needs_wait(wait, timeout)
    if not wait:
        control_scenario(ScenaristClient.retry, scenario_id, as_json=as_json, url=url, token=token)
        return
    console = Console(stderr=as_json)
    with reported_errors(console), ScenaristClient(url, token) as client:
        retried = client.retry(scenario_id)
        console.print(f"scenario {retried['id']}: {retried['status']}", highlight=False)
        wait_and_report(client, scenario_id, console, as_json=as_json, timeout=timeout)


def control_scenario(
    action: Callable[[ScenaristClient, str], Any],
    scenario_id: str,
    *,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    from scenarist.worker.client import ScenaristClient

    console = Console()
    with reported_errors(console), ScenaristClient(url, token) as client:
        scenario = action(client, scenario_id)
    if as_json:
        print_json(scenario)
    else:
        console.print(f"scenario {scenario['id']}: {scenario['status']}", highlight=False)


def load_worker(target: str) -> Worker:
    """`package.module:attr` -> a Worker (an instance, or a factory returning one)."""
    from scenarist.worker.worker import Worker

    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise typer.BadParameter(f"expected MODULE:ATTRIBUTE, got {target!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: the user's modules are here
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot load {target!r}: {exc}") from exc
    if not isinstance(found, Worker) and callable(found):
        found = found()
    if not isinstance(found, Worker):
        raise typer.BadParameter(f"{target!r} is a {type(found).__name__}, not a Worker")
    return found


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """`--label gpu=a100 --label model=sdxl` -> {"gpu": "a100", "model": "sdxl"}."""
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--label")
        labels[name] = value
    return labels


def worker(
    target: Annotated[str, typer.Argument(help="MODULE:ATTRIBUTE of a Worker")],
    *,
    burst: Annotated[bool, typer.Option("--burst", help="drain the queues, then exit")] = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1)] = None,
    url: Annotated[str | None, typer.Option("--url", envvar="SCENARIST_URL")] = None,
    token: TokenOption = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="NAME=VALUE",
            help="a label the worker reports with every lease (repeatable), e.g. gpu=a100",
        ),
    ] = None,
) -> None:
    """Run a Worker object's handlers until SIGTERM/SIGINT (or, with --burst, until idle).
    --url, --token and --concurrency override what the Worker was built with; --label
    adds to its labels (and replaces a label of the same name)."""
    from scenarist.worker.logs import configure_logging

    configure_logging(log_level.upper())
    labels = parse_labels(label or [])
    instance = load_worker(target)
    if labels:
        try:
            instance.set_labels({**instance.labels, **labels})
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--label") from exc
    if url is not None:
        instance.url = url
    if token is not None:
        instance.token = token
    if concurrency is not None:
        instance.concurrency = concurrency
        instance.max_tasks = min(instance.max_tasks, concurrency)
    console = Console(stderr=True)
    with reported_errors(console):
        stats = instance.run(burst=burst)
    console.print(
        f"worker stopped: {stats.completed} completed, {stats.failed} failed, "
        f"{stats.dropped} dropped",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command(name="submit")(submit)
    app.command(name="status")(status)
    app.command(name="cancel")(cancel)
    app.command(name="retry")(retry)
    app.command(name="worker")(worker)
