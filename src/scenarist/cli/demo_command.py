"""`scenarist demo`: the whole pipeline on this machine, ending in a real MP4.

Starts `scenarist serve` (SQLite in the output directory unless --store) and the demo
workers as child processes, submits CreateVideo, shows live progress per service, prints
the MP4's path and how many steps the step cache served (a second run with the same
inputs reuses the first one's pure steps), and stops every process it started, also on
Ctrl-C or SIGTERM.

The demo needs the `demo` extra (Pillow, imageio-ffmpeg); everything it uses is imported
inside the command, so a base install runs every other command, and `demo` there says how
to install the extra instead of failing on an import.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from scenarist.cli.watch import ScenarioOutcome
    from scenarist.demo.runner import DemoProcesses

DEMO_SCENARIO = "CreateVideo"
AUTO_SCENARIO = "CreateVideoAuto"  # --auto: the script decides how many slides
DEFAULT_DESCRIPTION = "A video about cats"
DEFAULT_SLIDES = 3
EXIT_FAILED = 1
EXIT_MISSING_EXTRA = 2
EXIT_INTERRUPTED = 130
# Top-level modules of the `demo` extra (pyproject.toml), as Python imports them.
DEMO_EXTRA_MODULES = frozenset({"PIL", "imageio_ffmpeg"})
INSTALL_HINT = (
    "error: `scenarist demo` needs the demo extra (Pillow, imageio-ffmpeg); "
    "install it with: pip install 'scenarist[demo]'"
)


def demo_extra_missing() -> bool:
    """True when the demo workers' media libraries cannot be imported.

    Imports what the demo workers import, so a broken install is found here rather than
    in a child process; any other missing module is a bug and still raises."""
    try:
        import scenarist.demo.handlers  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in DEMO_EXTRA_MODULES:
            return True
        raise
    return False


def video_path(outcome: ScenarioOutcome) -> str | None:
    for result in outcome.results:
        ref = result.get("result_ref")
        if ref and str(ref).endswith(".mp4"):
            return str(ref)
    return None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the `with DemoProcesses` block stops the children
    raise KeyboardInterrupt


def run_pipeline(
    processes: DemoProcesses,
    description: str,
    slides: int | None,
    console: Console | None,
) -> ScenarioOutcome:
    """`slides` None: CreateVideoAuto, whose script decides the slide count."""
    from scenarist.cli.watch import wait_for_scenario
    from scenarist.worker.client import ScenaristClient

    with ScenaristClient(processes.url) as client:
        name = AUTO_SCENARIO if slides is None else DEMO_SCENARIO
        params: dict[str, Any] = {"description": description}
        if slides is not None:
            params["slides_count"] = slides
        scenario_id = client.submit(name, params)["scenario_id"]
        if console is not None:
            console.print(f"submitted {name} as {scenario_id}", highlight=False)
        return wait_for_scenario(client, scenario_id, console=console)


def video_metadata(outcome: ScenarioOutcome, mp4: str | None) -> dict[str, Any]:
    """The video task's result metadata ({} when there is no video)."""
    for result in outcome.results:
        if mp4 is not None and result.get("result_ref") == mp4:
            return dict(result.get("result") or {})
    return {}


def cached_steps(outcome: ScenarioOutcome) -> tuple[int, int]:
    """(steps served from the step cache, steps) of the scenario."""
    tasks = list(outcome.scenario.get("tasks") or [])
    return sum(1 for t in tasks if t.get("cached")), len(tasks)


def report(console: Console, outcome: ScenarioOutcome, mp4: str | None) -> None:
    from scenarist.demo.speech import narration_notice

    cached, steps = cached_steps(outcome)
    console.print(f"{cached} of {steps} steps came from the step cache", highlight=False)
    if outcome.succeeded and mp4:
        meta = video_metadata(outcome, mp4)
        console.print(
            f"[green]done[/green]: {meta.get('width')}x{meta.get('height')}, "
            f"{meta.get('duration_seconds')} s, {meta.get('slides')} slides"
        )
        notice = narration_notice(meta.get("narration_engine"))
        console.print(notice, highlight=False, markup=False, soft_wrap=True)
        typer.echo(mp4)  # the one stdout line, so `$(scenarist demo)` is the path
        return
    console.print(f"[red]scenario {outcome.status}[/red]")
    for failure in outcome.failures:
        console.print(f"  {failure['name']}: {failure.get('error')}", highlight=False)


def demo(
    *,
    store: Annotated[
        str | None,
        typer.Option(
            help="store URL (default: SQLite in the output directory, so the step "
            "cache serves a second run)"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="where the artefacts go (default: ./scenarist-demo-output)"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="server port (default: a free one)")] = None,
    description: Annotated[str, typer.Option(help="what the video is about")] = (
        DEFAULT_DESCRIPTION
    ),
    slides: Annotated[int, typer.Option(min=1, max=20, help="number of slides")] = DEFAULT_SLIDES,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON")] = False,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            help="run CreateVideoAuto: the script decides the slide count (--slides ignored)",
        ),
    ] = False,
) -> None:
    """Run server + demo workers, make a video about cats, print the MP4 path, clean up."""
    if demo_extra_missing():
        typer.echo(INSTALL_HINT, err=True)
        raise typer.Exit(EXIT_MISSING_EXTRA)
    from rich.console import Console

    from scenarist.demo.runner import DemoProcesses, DemoStartError
    from scenarist.demo.workers import DEFAULT_OUT_DIR

    console = Console(stderr=True)
    out_dir = (out or Path(DEFAULT_OUT_DIR)).expanduser().resolve()
    processes = DemoProcesses(out_dir=out_dir, store=store, port=port)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        chosen = None if auto else slides
        outcome = _run_demo(processes, console, description, chosen, quiet=as_json)
    except DemoStartError as exc:
        console.print(f"[red]demo could not start[/red]: {exc}", highlight=False, markup=False)
        raise typer.Exit(EXIT_FAILED) from exc
    except KeyboardInterrupt:
        console.print("interrupted; every demo process was stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    mp4 = video_path(outcome)
    if as_json:
        document = {
            "status": outcome.status,
            "video": mp4,
            "narration_engine": video_metadata(outcome, mp4).get("narration_engine"),
            "scenario": outcome.scenario,
            "cached_steps": cached_steps(outcome)[0],
        }
        typer.echo(json.dumps(document))
    else:
        report(console, outcome, mp4)
    if not (outcome.succeeded and mp4):
        raise typer.Exit(EXIT_FAILED)


def _run_demo(
    processes: DemoProcesses,
    console: Console,
    description: str,
    slides: int | None,
    *,
    quiet: bool,
) -> ScenarioOutcome:
    """Inside the `with`, so logs can still be shown before the processes are stopped."""
    from scenarist.demo.runner import CrashWatch
    from scenarist.worker.errors import ClientError

    with processes, CrashWatch(processes) as watch:
        console.print(f"server at {processes.url}; artefacts in {processes.out_dir}")
        try:
            return run_pipeline(processes, description, slides, None if quiet else console)
        except (ClientError, KeyboardInterrupt) as exc:
            if watch.crashed is None and isinstance(exc, KeyboardInterrupt):
                raise
            what = f"{watch.crashed.name} exited unexpectedly" if watch.crashed else str(exc)
            console.print(f"[red]demo failed[/red]: {what}", highlight=False)
            _print_logs(console, processes)
            raise typer.Exit(EXIT_FAILED) from exc


def _print_logs(console: Console, processes: DemoProcesses) -> None:
    from scenarist.demo.runner import log_tail

    for child in processes.children:
        tail = log_tail(child.log_path)
        if tail:
            console.print(f"--- {child.name} log ---\n{tail}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
