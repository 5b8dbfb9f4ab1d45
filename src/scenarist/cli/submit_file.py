"""`scenarist submit --from-file requests.jsonl`: one POST /generate body per line, sent
in batches (POST /generate/batch) with a progress bar; every refused line is reported as
`file:line: ...`. A line that is not a JSON object stops the command before anything is
sent (the file is checked whole first); a batch the server cannot take at all stops it
after the batches already sent, saying which lines were and were not submitted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from scenarist.worker.client import ScenaristClient

EXIT_REQUEST_ERROR = 2
MAX_LISTED_LINE_ERRORS = 20  # malformed lines listed before "and N more"


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, as editors show it
    body: dict[str, Any]


def read_requests(path: Path, console: Console) -> list[Line]:
    """Every non-blank line of `path` as a JSON object, or exit 2 naming each bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(console, f"{path}: cannot read: {exc}")
    lines: list[Line] = []
    errors: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
        except ValueError as exc:
            errors.append(f"{path}:{number}: not valid JSON: {exc}")
            continue
        if not isinstance(body, dict):
            errors.append(f"{path}:{number}: expected a JSON object (a POST /generate body)")
            continue
        lines.append(Line(number, body))
    if errors:
        for error in errors[:MAX_LISTED_LINE_ERRORS]:
            console.print(f"[red]error:[/red] {escape(error)}", highlight=False, soft_wrap=True)
        if len(errors) > MAX_LISTED_LINE_ERRORS:
            console.print(f"... and {len(errors) - MAX_LISTED_LINE_ERRORS} more", highlight=False)
        fail(console, f"{path}: {len(errors)} malformed line(s); nothing was submitted")
    if not lines:
        fail(console, f"{path}: no requests (the file has no non-blank line)")
    return lines


def run_from_file(
    path: Path, batch_size: int, *, alone: bool, as_json: bool, url: str, token: str | None
) -> None:
    """The command: `alone` says no single-scenario option came with --from-file."""
    from scenarist.cli.client_commands import reported_errors
    from scenarist.worker.client import ScenaristClient

    if not alone:
        raise typer.BadParameter(
            "--from-file takes each request from the file (a line may say its priority): "
            "no SCENARIO, --param, --wait, --idempotency-key, --priority or --quiet with it"
        )
    console = Console(stderr=as_json)
    with reported_errors(console), ScenaristClient(url, token) as client:
        submit_from_file(client, path, batch_size=batch_size, console=console, as_json=as_json)


def submit_from_file(
    client: ScenaristClient, path: Path, *, batch_size: int, console: Console, as_json: bool
) -> None:
    """Send the file's requests in batches; print each refused line, then a summary (or,
    with `as_json`, every line's outcome). Exit 2 if any line was refused."""
    from scenarist.worker.errors import ClientError

    lines = read_requests(path, console)
    outcomes: list[dict[str, Any]] = []
    refused = 0
    with Progress(
        TextColumn("submitting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=as_json,
    ) as progress:
        bar = progress.add_task("submit", total=len(lines))
        for start in range(0, len(lines), batch_size):
            batch = lines[start : start + batch_size]
            try:
                answers = client.submit_many([line.body for line in batch])
            except ClientError as exc:
                progress.stop()
                sent = f"lines up to {lines[start - 1].number}" if start else "no line"
                fail(
                    console,
                    f"{path}:{batch[0].number}-{batch[-1].number}: the batch was not "
                    f"taken: {exc}; {sent} submitted, the rest not "
                    "(send them again; lines with an idempotency_key are safe to repeat)",
                )
            for line, answer in zip(batch, answers, strict=True):
                outcomes.append({"line": line.number, **answer})
                if "problem" in answer:
                    refused += 1
                    progress.console.print(refusal(path, line.number, answer["problem"]),
                                           highlight=False, soft_wrap=True)  # fmt: skip
            progress.advance(bar, len(batch))
    if as_json:
        typer.echo(json.dumps(outcomes, indent=2, sort_keys=True))
    else:
        print_summary(console, outcomes, refused)
    if refused:
        raise typer.Exit(EXIT_REQUEST_ERROR)


def refusal(path: Path, number: int, problem: Mapping[str, Any]) -> str:
    field = problem.get("field")
    where = f" (field {field})" if field else ""
    detail = problem.get("detail") or problem.get("title") or "refused"
    return f"[red]error:[/red] {escape(f'{path}:{number}: {detail}{where}')}"


def print_summary(console: Console, outcomes: list[dict[str, Any]], refused: int) -> None:
    created = sum(1 for o in outcomes if o.get("created") is True)
    replayed = sum(1 for o in outcomes if o.get("created") is False)
    console.print(
        f"submitted {created + replayed} of {len(outcomes)} scenarios "
        f"({created} created, {replayed} already submitted with their key), {refused} refused",
        highlight=False,
        soft_wrap=True,
    )


def fail(console: Console, message: str) -> Any:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_REQUEST_ERROR)
