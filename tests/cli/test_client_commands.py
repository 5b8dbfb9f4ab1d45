"""submit / status / cancel / retry / worker through the real `scenarist` app, against a
live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scenarist.cli.client_commands import parse_param_value, parse_params
from scenarist.cli.main import app
from scenarist.worker import Fatal, ScenaristClient, Worker, WorkerTask
from tests.worker.server import LiveServer, running

runner = CliRunner()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(workdir=tmp_path / "server").start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def background_worker(server: LiveServer) -> Iterator[Worker]:
    """Serves test-service: label "fail" fails for good, anything else succeeds."""
    worker = Worker(server.url, wait_seconds=0.5)

    @worker.handler("test-service")
    def handle(job: WorkerTask) -> str:
        if job.payload["label"] == "fail":
            raise Fatal("the model refused: no cats today")
        return f"out/{job.name}.txt"

    with running(worker):
        yield worker


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("2.5", 2.5),
        ("true", True),
        ("False", False),
        ('["a", 1]', ["a", 1]),
        ('{"k": null}', {"k": None}),
        ("A video about cats", "A video about cats"),
        ("nan", "nan"),
        ("[not json", "[not json"),
        ("", ""),
    ],
)
def test_param_values_are_converted_when_they_parse(text: str, value: Any) -> None:
    assert parse_param_value(text) == value


def test_params_keep_everything_after_the_first_equals_sign() -> None:
    assert parse_params(["expr=a=b", "n=2"]) == {"expr": "a=b", "n": 2}


def test_submit_wait_shows_results_and_exits_zero(
    server: LiveServer, background_worker: Worker
) -> None:
    result = invoke("submit", "Jobs", "--param", "n=2", "--wait", "--url", server.url)
    assert result.exit_code == 0, result.output
    assert "success" in result.output
    assert "out/job_1.txt" in result.output
    assert "out/job_2.txt" in result.output
    assert "test-service" in result.output  # the progress bar's label


def test_submit_wait_failure_prints_the_error_and_exits_one(
    server: LiveServer, background_worker: Worker
) -> None:
    result = invoke("submit", "Jobs", "-p", "label=fail", "--wait", "--url", server.url)
    assert result.exit_code == 1, result.output
    assert "failed" in result.output
    assert "the model refused: no cats today" in result.output


def test_submit_wait_json_reports_results_for_scripts(
    server: LiveServer, background_worker: Worker
) -> None:
    result = invoke("submit", "Jobs", "-p", "n=1", "--wait", "--json", "--url", server.url)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["scenario"]["status"] == "success"
    assert document["results"] == [{"task": "job_1", "result_ref": "out/job_1.txt", "result": None}]
    assert document["failures"] == []


def test_status_cancel_and_retry_without_a_worker(server: LiveServer) -> None:
    submitted = invoke("submit", "Jobs", "-p", "n=2", "--json", "--url", server.url)
    assert submitted.exit_code == 0, submitted.output
    scenario_id = json.loads(submitted.stdout)["scenario_id"]

    status = invoke("status", scenario_id, "--json", "--url", server.url)
    assert json.loads(status.stdout)["status"] == "pending"
    table = invoke("status", scenario_id, "--url", server.url)
    assert "job_2" in table.output
    assert "progress: 0/2" in table.output

    cancelled = invoke("cancel", scenario_id, "--url", server.url)
    assert cancelled.exit_code == 0
    assert "cancelled" in cancelled.output

    retried = invoke("retry", scenario_id, "--json", "--url", server.url)
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["status"] in ("pending", "running")


def test_submit_with_a_priority_puts_the_scenario_in_that_lane(server: LiveServer) -> None:
    submitted = invoke(
        "submit", "Jobs", "-p", "n=1", "--priority", "batch", "--quiet", "--url", server.url
    )
    assert submitted.exit_code == 0, submitted.output
    status = invoke("status", submitted.stdout.strip(), "--json", "--url", server.url)
    assert json.loads(status.stdout)["priority"] == "batch"
    unknown = invoke("submit", "Jobs", "--priority", "urgent", "--url", server.url)
    assert unknown.exit_code == 2
    assert "urgent" in unknown.output


def test_refused_requests_name_the_problem_and_exit_two(server: LiveServer) -> None:
    unknown = invoke("submit", "Jobs", "-p", "colour=blue", "--url", server.url)
    assert unknown.exit_code == 2
    assert "colour" in unknown.output
    missing = invoke("status", "no-such-scenario", "--url", server.url)
    assert missing.exit_code == 2
    assert "no-such-scenario" in missing.output


def test_unreachable_server_exits_two() -> None:
    result = invoke("status", "abc", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "error" in result.output


def test_url_and_token_come_from_the_environment(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENARIST_URL", server.url)
    result = invoke("submit", "Jobs", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scenario_id"]


WORKER_MODULE = """\
from scenarist.worker import TaskResult, Worker

worker = Worker("http://127.0.0.1:9")  # the CLI's --url wins


@worker.handler("test-service")
def handle(task):
    return TaskResult(f"made/{task.name}", {"label": task.payload["label"]})
"""


def test_worker_command_runs_a_users_worker_in_burst_mode(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_workers.py").write_text(WORKER_MODULE)
    monkeypatch.chdir(tmp_path)
    with ScenaristClient(server.url) as client:
        scenario_id = client.submit("Jobs", {"n": 3})["scenario_id"]
    result = invoke(
        "worker", "my_workers:worker", "--burst", "-c", "2", "--url", server.url,
        "--label", "gpu=a100", "--label", "model=sdxl", "--label", "model=flux",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 completed" in result.output
    with ScenaristClient(server.url) as client:
        task = client.get_task(f"{scenario_id}:job_3")
        [seen] = client.workers()
    assert (task["result_ref"], task["result"]) == ("made/job_3", {"label": "job"})
    assert seen["labels"] == {"gpu": "a100", "model": "flux"}  # the last one of a name wins


@pytest.mark.parametrize(
    ("label", "message"),
    [("gpu", "expected NAME=VALUE"), ("=a100", "expected NAME=VALUE"), ("a b=c", "label name")],
)
def test_worker_command_refuses_a_malformed_label_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str, message: str
) -> None:
    (tmp_path / "my_workers.py").write_text(WORKER_MODULE)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["worker", "my_workers:worker", "--label", label])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_worker_command_rejects_what_is_not_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "not_workers.py").write_text("thing = 42\n")
    monkeypatch.chdir(tmp_path)
    for target, message in [
        ("not_workers:thing", "not a Worker"),
        ("not_workers:missing", "cannot load"),
        ("no_colon", "MODULE:ATTRIBUTE"),
    ]:
        result = runner.invoke(app, ["worker", target])
        assert result.exit_code == 2
        assert message in result.output


def test_the_cli_default_url_is_the_sdk_default() -> None:
    from scenarist.cli.client_commands import DEFAULT_URL
    from scenarist.worker.protocol import DEFAULT_URL as SDK_DEFAULT_URL

    assert DEFAULT_URL == SDK_DEFAULT_URL


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8001", "ftp://x.example", "http://h:abc", "http://h:99999", "http://a b"]
)
def test_a_bad_url_is_one_line_and_exit_two(url: str) -> None:
    for command in (["status", "01X"], ["cancel", "01X"], ["submit", "CreateVoice"]):
        result = runner.invoke(app, [*command, "--url", url])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "error:" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["submit", "CreateVoice"], ["retry", "01X"]])
def test_timeout_without_wait_is_refused(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--timeout", "5", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "--timeout bounds --wait" in result.output
