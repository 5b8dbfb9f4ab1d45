"""Follow a scenario to its end over the SSE stream, with a rich progress bar per service.

Used by `scenarist submit --wait`, `retry --wait` and `scenarist demo`. The stream is the
source of truth for progress; when it drops, the watcher reconnects (resuming after the
last event id) and finally reads the scenario document, so a flaky connection cannot hide
the end. The stream is read on its own thread so that the waiting thread can give up at a
timeout and say when a service has ready tasks that no worker takes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
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
TICK_SECONDS = 0.2  # how often the waiting thread looks at the clock between events
IDLE_CHECK_SECONDS = 2.0  # how often GET /queues is asked whether a service is served
# A ready task this old, with nothing in flight in its service, means no worker leases it.
IDLE_NOTICE_AFTER_SECONDS = 5.0

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
    """Feed every `progress` payload to `on_progress` until the stream's `end` event.

    A stream that ends without it (the server restarted or shut its streams down, a proxy
    cut it) is followed again after the last event id, once the scenario document says
    the scenario is not over. Only failures to reach the server count, and only in a
    row: RECONNECT_ATTEMPTS of them raise ServerUnreachableError, never a quiet return
    that would read a running scenario as finished."""
    last_id: str | None = None
    failures = 0
    while True:
        try:
            for event in client.events(scenario_id, last_event_id=last_id):
                failures = 0
                last_id = event.id or last_id
                if event.event in ("progress", "end") and isinstance(event.data, dict):
                    on_progress(event.data)
                if event.event == "end":
                    return
            scenario = client.get_scenario(scenario_id, with_tasks=False)
            failures = 0
            on_progress({"status": scenario["status"], "progress": scenario["progress"]})
            if scenario["status"] in FINAL_STATUSES:
                return
        except ServerUnreachableError:
            failures += 1
            if failures >= RECONNECT_ATTEMPTS:
                raise
        time.sleep(RECONNECT_DELAY_SECONDS)


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
    """A bar for the whole scenario with the server's ETA, then one per service, fed with
    the server's progress payloads."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TextColumn("{task.fields[eta]}"),
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
        progress = payload.get("progress", {})
        if "total" in progress:
            if SCENARIO_BAR not in self._bars:
                self._bars[SCENARIO_BAR] = self.progress.add_task(
                    SCENARIO_BAR, total=progress["total"], detail="", eta=""
                )
            self.progress.update(
                self._bars[SCENARIO_BAR],
                total=progress["total"],
                completed=progress.get("finished", 0),
                detail=str(payload.get("status", "")),
                eta=eta_text(payload.get("eta_seconds"), str(payload.get("status", ""))),
            )
        by_service = progress.get("by_service", {})
        for service, counts in sorted(by_service.items()):
            total = sum(int(n) for n in counts.values())
            finished = sum(int(counts.get(s, 0)) for s in FINISHED_TASK_STATUSES)
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n)
            if service not in self._bars:
                self._bars[service] = self.progress.add_task(
                    service, total=total, detail="", eta=""
                )
            self.progress.update(
                self._bars[service], total=total, completed=finished, detail=detail
            )


SCENARIO_BAR = "scenario"
FINAL_SCENARIO_STATUSES = ("success", "failed", "cancelled")


def eta_text(eta_seconds: object, status: str) -> str:
    """`ETA 1m05s`; `ETA ?` while the server has no run time to go by; blank once ended."""
    if status in FINAL_SCENARIO_STATUSES:
        return ""
    if not isinstance(eta_seconds, int | float):
        return "ETA ?"
    minutes, seconds = divmod(round(eta_seconds), 60)
    return f"ETA {minutes}m{seconds:02d}s" if minutes else f"ETA {seconds}s"


class WaitTimedOutError(Exception):
    """`--timeout` ran out; the scenario itself goes on."""

    def __init__(self, scenario_id: str, seconds: float, progress: Mapping[str, Any]) -> None:
        self.scenario_id = scenario_id
        self.seconds = seconds
        self.progress = progress
        summary = progress.get("summary") or f"{progress.get('finished')}/{progress.get('total')}"
        super().__init__(
            f"timed out after {seconds:g} s waiting for scenario {scenario_id} "
            f"(it keeps running; {summary}); follow it with: scenarist status {scenario_id}"
        )


@dataclass(frozen=True, slots=True)
class WaitOptions:
    """How `wait_for_scenario` watches besides the event stream.

    `timeout`: give up (WaitTimedOutError) after this many seconds; None waits to the end.
    `notice`: where one-line notices go (a service nobody serves); None checks nothing."""

    timeout: float | None = None
    notice: Callable[[str], None] | None = None


def idle_services(
    queues: Iterable[Mapping[str, Any]], services: Iterable[str], *, min_age: float
) -> list[str]:
    """Services of `services` whose queue has ready tasks, none in flight, and a ready task
    older than `min_age` seconds: no worker is leasing them (a live worker long-polls, so
    ready tasks do not age while it has free slots)."""
    wanted = set(services)
    return sorted(
        str(q["service"])
        for q in queues
        if q.get("service") in wanted
        and int(q.get("ready") or 0) > 0
        and int(q.get("in_flight") or 0) == 0
        and float(q.get("oldest_ready_age") or 0.0) >= min_age
    )


def no_worker_notice(service: str, url: str) -> str:
    return (
        f"no worker is taking {service} tasks; start one with: scenarist worker "
        f"MODULE:WORKER --url {url} (the demo's: scenarist worker "
        f"scenarist.demo.workers:from_env --url {url})"
    )


class _Stream:
    """The event stream read on a daemon thread, so the waiting thread keeps control of
    time (a timeout, queue checks) while a read blocks. Items: a progress payload, an
    exception the stream raised, or `_END`."""

    def __init__(self, client: ScenaristClient, scenario_id: str) -> None:
        self.items: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, args=(client, scenario_id), daemon=True, name="scenario-events"
        )
        self._thread.start()

    def _run(self, client: ScenaristClient, scenario_id: str) -> None:
        try:
            follow_events(client, scenario_id, self.items.put)
        except Exception as exc:  # handed to the waiting thread, which raises it
            self.items.put(exc)
        self.items.put(_END)

    def next(self, timeout: float) -> object:
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            return None


_END = object()


def _watch(
    client: ScenaristClient,
    scenario_id: str,
    on_progress: ProgressCallback,
    options: WaitOptions,
) -> None:
    stream = _Stream(client, scenario_id)
    started = time.monotonic()
    next_check = started + IDLE_CHECK_SECONDS
    latest: Mapping[str, Any] = {}
    warned: set[str] = set()
    while True:
        item = stream.next(TICK_SECONDS)
        if item is _END:
            return
        if isinstance(item, Exception):
            raise item
        if isinstance(item, Mapping):
            latest = item.get("progress", latest)
            on_progress(item)
        now = time.monotonic()
        if options.timeout is not None and now - started >= options.timeout:
            if not latest:
                latest = client.get_scenario(scenario_id, with_tasks=False)["progress"]
            raise WaitTimedOutError(scenario_id, options.timeout, latest)
        if options.notice is not None and now >= next_check:
            next_check = now + IDLE_CHECK_SECONDS
            _notice_idle_services(client, scenario_id, options.notice, warned)


def _notice_idle_services(
    client: ScenaristClient, scenario_id: str, notice: Callable[[str], None], warned: set[str]
) -> None:
    by_service = client.get_scenario(scenario_id, with_tasks=False)["progress"].get(
        "by_service", {}
    )
    waiting = [s for s, counts in by_service.items() if int(counts.get("queued", 0)) > 0]
    if not waiting:
        return
    found = idle_services(client.queues()["queues"], waiting, min_age=IDLE_NOTICE_AFTER_SECONDS)
    for service in found:
        if service not in warned:
            warned.add(service)
            notice(no_worker_notice(service, client.url))


def wait_for_scenario(
    client: ScenaristClient,
    scenario_id: str,
    *,
    console: Console | None,
    options: WaitOptions | None = None,
) -> ScenarioOutcome:
    """Follow the scenario to its end (with bars when `console` is given). Raises
    WaitTimedOutError when `options.timeout` runs out first."""
    watch_options = options or WaitOptions()
    if console is None:
        _watch(client, scenario_id, lambda _payload: None, watch_options)
    else:
        with ServiceBars(console) as bars:
            _watch(client, scenario_id, bars.update, watch_options)
    return collect_outcome(client, scenario_id)
