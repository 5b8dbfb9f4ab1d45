"""`--wait` at the edges: a timeout, a service nobody serves, `retry --wait`, and a failed
scenario's status that says what failed, why, and what it skipped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from scenarist.cli import watch
from scenarist.cli.client_commands import tasks_table
from scenarist.cli.main import app
from scenarist.worker import Fatal, Worker, WorkerTask
from tests.worker.server import LiveServer, running

runner = CliRunner()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(workdir=tmp_path / "server").start()
    try:
        yield live
    finally:
        live.stop()


class FlakyUntilFixed:
    """first-service handler that fails for good until `fixed` is set."""

    def __init__(self) -> None:
        self.fixed = threading.Event()

    def first(self, task: WorkerTask) -> str:
        if not self.fixed.is_set():
            raise Fatal("the model refused: no cats today")
        return f"out/{task.name}"


@pytest.fixture
def chain_worker(server: LiveServer) -> Iterator[FlakyUntilFixed]:
    """Serves Chain's two services: first fails for good until fixed, second succeeds."""
    flaky = FlakyUntilFixed()
    worker = Worker(server.url, wait_seconds=0.5)
    worker.add_handler("first-service", flaky.first)
    worker.add_handler("second-service", lambda task: f"out/{task.name}")
    with running(worker):
        yield flaky


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_timeout_ends_the_wait_names_the_idle_service_and_leaves_the_scenario_running(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No worker runs: the first queue check finds test-service's ready task unleased.
    monkeypatch.setattr(watch, "IDLE_NOTICE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(watch, "IDLE_CHECK_SECONDS", 0.0)
    result = invoke("submit", "Jobs", "--wait", "--timeout", "1", "--url", server.url)
    assert result.exit_code == 3, result.output
    assert "no worker is taking test-service tasks; start one with: scenarist worker" in (
        result.output
    )
    assert result.output.count("no worker is taking") == 1, "said once, not every check"
    assert "timed out after 1 s waiting for scenario" in result.output
    scenario_id = result.output.split("submitted Jobs as ")[1].split()[0]
    status = invoke("status", scenario_id, "--json", "--url", server.url)
    assert json.loads(status.stdout)["status"] == "pending", "the scenario keeps running"


def test_a_served_queue_gets_no_notice(server: LiveServer, chain_worker: FlakyUntilFixed) -> None:
    chain_worker.fixed.set()
    result = invoke("submit", "Chain", "--wait", "--timeout", "60", "--url", server.url)
    assert result.exit_code == 0, result.output
    assert "no worker" not in result.output


@pytest.mark.parametrize(
    ("queue", "idle"),
    [
        ({"ready": 2, "in_flight": 0, "oldest_ready_age": 9.0}, True),
        ({"ready": 2, "in_flight": 1, "oldest_ready_age": 9.0}, False),  # a worker is busy
        ({"ready": 2, "in_flight": 0, "oldest_ready_age": 1.0}, False),  # just released
        ({"ready": 0, "in_flight": 0, "oldest_ready_age": None}, False),  # nothing waits
    ],
)
def test_a_service_is_idle_when_ready_tasks_age_with_nothing_in_flight(
    queue: dict[str, Any], idle: bool
) -> None:
    queues = [{"service": "audio-service", **queue}, {"service": "other", **queue}]
    found = watch.idle_services(queues, ["audio-service"], min_age=5.0)
    assert found == (["audio-service"] if idle else [])


def test_status_of_a_failed_scenario_says_what_failed_why_and_what_it_skipped(
    server: LiveServer, chain_worker: FlakyUntilFixed
) -> None:
    submitted = invoke("submit", "Chain", "--wait", "--url", server.url)
    assert submitted.exit_code == 1, submitted.output
    assert "first failed for good after attempt 1 of 3 (not retryable)" in submitted.output
    assert "skipped because of it: second" in submitted.output
    scenario_id = submitted.output.split("submitted Chain as ")[1].split()[0]

    table = invoke("status", scenario_id, "--url", server.url)
    assert table.exit_code == 0, table.output
    assert "progress: 2/2 finished: 1 failed, 1 skipped" in table.output
    assert "100.0%" not in table.output
    assert "Fatal: the model refused: no cats today" in table.output
    assert "skipped because of it: second" in table.output

    document = json.loads(invoke("status", scenario_id, "--json", "--url", server.url).stdout)
    (failure,) = document["failures"]
    assert (failure["task"], failure["reason"], failure["skipped"]) == (
        "first",
        "not_retryable",
        ["second"],
    )
    second = next(t for t in document["tasks"] if t["name"] == "second")
    assert second["skipped_because"] == ["first"]


def test_retry_wait_follows_the_rerun_to_its_end(
    server: LiveServer, chain_worker: FlakyUntilFixed
) -> None:
    submitted = invoke("submit", "Chain", "--wait", "--url", server.url)
    assert submitted.exit_code == 1, submitted.output
    scenario_id = submitted.output.split("submitted Chain as ")[1].split()[0]
    chain_worker.fixed.set()
    retried = invoke("retry", scenario_id, "--wait", "--timeout", "60", "--url", server.url)
    assert retried.exit_code == 0, retried.output
    assert f"scenario {scenario_id}: success" in retried.output
    assert "out/second" in retried.output
    assert "second-service" in retried.output  # the progress bar's label


def test_retry_wait_json_reports_the_outcome(
    server: LiveServer, chain_worker: FlakyUntilFixed
) -> None:
    submitted = invoke("submit", "Chain", "--wait", "--json", "--url", server.url)
    assert submitted.exit_code == 1, submitted.output
    scenario_id = json.loads(submitted.stdout)["scenario"]["id"]
    retried = invoke("retry", scenario_id, "--wait", "--json", "--url", server.url)
    assert retried.exit_code == 1, retried.output
    document = json.loads(retried.stdout)
    assert document["scenario"]["status"] == "failed"
    assert [f["task"] for f in document["failures"]] == ["first"]


def test_quiet_submit_prints_only_the_scenario_id(server: LiveServer) -> None:
    result = invoke("submit", "Jobs", "--quiet", "--url", server.url)
    assert result.exit_code == 0, result.output
    scenario_id = result.stdout.strip()
    status = invoke("status", scenario_id, "--json", "--url", server.url)
    assert json.loads(status.stdout)["id"] == scenario_id
    refused = runner.invoke(app, ["submit", "Jobs", "-q", "--wait", "--url", server.url])
    assert refused.exit_code == 2
    assert "--quiet" in refused.output


def test_the_status_table_shows_errors_and_causes_verbatim() -> None:
    scenario = {
        "scenario": "Chain",
        "id": "s1",
        "status": "failed",
        "tasks": [
            {"name": "first", "service": "a", "level": 0, "status": "failed", "error": "[no] x"},
            {
                "name": "second",
                "service": "b",
                "level": 1,
                "status": "skipped",
                "skipped_because": ["first"],
            },
        ],
    }
    console = Console(record=True, width=200)
    console.print(tasks_table(scenario))
    text = console.export_text()
    assert "[no] x" in text, "an error is text, not rich markup"
    assert "caused by first" in text


def test_the_wait_bars_show_the_scenarios_eta() -> None:
    console = Console(record=True, width=200)
    payload: dict[str, Any] = {
        "status": "running",
        "eta_seconds": 65.4,
        "progress": {
            "total": 3,
            "finished": 1,
            "by_service": {"a": {"success": 1, "queued": 1}, "b": {"pending": 1}},
        },
    }
    with watch.ServiceBars(console) as bars:
        bars.update({**payload, "eta_seconds": None})
        bars.update(payload)
    scenario_row = next(line for line in console.export_text().splitlines() if "scenario" in line)
    assert "1/3" in scenario_row
    assert "ETA 1m05s" in scenario_row
    assert watch.eta_text(None, "running") == "ETA ?"  # no run time to go by yet
    assert watch.eta_text(12.4, "running") == "ETA 12s"
    assert watch.eta_text(3.0, "success") == ""
