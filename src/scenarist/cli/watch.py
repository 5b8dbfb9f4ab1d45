"""Follow a scenario to its end over the SSE stream, with a rich progress bar per service.

Used by `scenarist submit --wait` and `scenarist demo`. The stream is the source of
truth for progress; when it drops, the watcher reconnects (resuming after the last event
id) and finally reads the scenario document, so a flaky connection cannot hide the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scenarist.worker.client import ScenaristClient
from scenarist.worker.errors import ServerUnreachableError

FINAL_STATUSES = frozenset({"success", "failed", "cancelled"})
FINISHED_TASK_STATUSES = ("success", "failed", "skipped", "cancelled")
RECONNECT_ATTEMPTS = 5
RECONNECT_DELAY_SECONDS = 1.0

ProgressCallback = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class ScenarioOutcome:
    """The end of a scenario: its document, the final tasks' results, failed tasks."""

    scenario: Mapping[str, Any]
    results: list[Mapping[str, Any]] = field(default_factory=list)  # leaf tasks' TaskPublic
    failures: list[Mapping[str, Any]] = field(default_factory=list)  # failed tasks' TaskPublic

    @property
    def status(self) -> str:
        return str(self.scenario.get("status"))

    @property
    def succeeded(self) -> bool:
        return self.status == "success"


def follow_events(client: ScenaristClient, scenario_id: str, on_progress: ProgressCallback) -> None:
    """Feed every `progress` payload to `on_progress` until the stream's `end` event."""
    last_id: str | None = None
    for attempt in range(RECONNECT_ATTEMPTS):
        try:
            for event in client.events(scenario_id, last_event_id=last_id):
                last_id = event.id or last_id
                if event.event in ("progress", "end") and isinstance(event.data, dict):
                    on_progress(event.data)
                if event.event == "end":
                    return
        except ServerUnreachableError:
            if attempt == RECONNECT_ATTEMPTS - 1:
                raise
        time.sleep(RECONNECT_DELAY_SECONDS)
        scenario = client.get_scenario(scenario_id)
        on_progress({"status": scenario["status"], "progress": scenario["progress"]})
        if scenario["status"] in FINAL_STATUSES:
            return


def leaf_names(tasks: list[Mapping[str, Any]]) -> list[str]:
    """Tasks nothing depends on: their results are what the scenario produced."""
    parents = {dep for task in tasks for dep in task.get("depends_on", [])}
    return [str(t["name"]) for t in tasks if t["name"] not in parents]


def collect_outcome(client: ScenaristClient, scenario_id: str) -> ScenarioOutcome:
    scenario = client.get_scenario(scenario_id)
    tasks = list(scenario.get("tasks", []))
    leaves = set(leaf_names(tasks))
    results = [client.get_task(t["id"]) for t in tasks if t["name"] in leaves]
    failures = [client.get_task(t["id"]) for t in tasks if t["status"] == "failed"]
    return ScenarioOutcome(scenario=scenario, results=results, failures=failures)


class ServiceBars:
    """One rich progress bar per service, fed with the server's progress payloads."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> ServiceBars:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def update(self, payload: Mapping[str, Any]) -> None:
        by_service = payload.get("progress", {}).get("by_service", {})
        for service, counts in sorted(by_service.items()):
            total = sum(int(n) for n in counts.values())
            finished = sum(int(counts.get(s, 0)) for s in FINISHED_TASK_STATUSES)
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
            if service not in self._bars:
                self._bars[service] = self.progress.add_task(service, total=total, detail="")
            self.progress.update(
                self._bars[service], total=total, completed=finished, detail=detail
            )


def wait_for_scenario(
    client: ScenaristClient, scenario_id: str, *, console: Console | None
) -> ScenarioOutcome:
    """Follow the scenario to its end (with bars when `console` is given)."""
    if console is None:
        follow_events(client, scenario_id, lambda _payload: None)
    else:
        with ServiceBars(console) as bars:
            follow_events(client, scenario_id, bars.update)
    return collect_outcome(client, scenario_id)
