"""`scenarist rerun` and `scenarist history` against a live server with a worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from scenarist.cli.main import app
from scenarist.worker import Worker, WorkerTask
from tests.worker.server import LiveServer, running

runner = CliRunner()


def labelled(task: WorkerTask) -> str:
    return f"out/{task.name}/{task.payload['label']}"


@pytest.fixture
def chain_worker(server: LiveServer) -> Iterator[None]:
    worker = Worker(server.url, wait_seconds=0.5)
    worker.add_handler("first-service", labelled)
    worker.add_handler("second-service", labelled)
    with running(worker):
        yield


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def finished_chain(server: LiveServer) -> str:
    submitted = invoke("submit", "Chain", "--wait", "--timeout", "60", "--url", server.url)
    assert submitted.exit_code == 0, submitted.output
    return str(submitted.output.split("submitted Chain as ")[1].split()[0])


def test_rerun_with_a_new_value_waits_for_the_new_runs(
    server: LiveServer, chain_worker: None
) -> None:
    scenario_id = finished_chain(server)
    rerun = invoke(
        "rerun", scenario_id, "--task", "first", "--set", "first.label=noir",
        "--wait", "--timeout", "60", "--url", server.url,
    )  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    assert "again: first, second" in rerun.output
    assert f"scenario {scenario_id}: success" in rerun.output
    assert "out/second/chain" in rerun.output  # second's payload is its own: not overridden

    shown = invoke("history", f"{scenario_id}:first", "--json", "--url", server.url)
    runs = json.loads(shown.stdout)
    assert [(i["run"], i["result_ref"]) for i in runs["items"]] == [
        (2, "out/first/noir"),
        (1, "out/first/chain"),
    ]
    table = invoke("history", f"{scenario_id}:first", "--url", server.url)
    assert table.exit_code == 0, table.output
    assert "out/first/noir" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "first", "--set", "second.label=x"], "'second' is not among the --task"),
        (["--task", "first", "--set", "label=x"], "expected TASK.KEY=VALUE"),
        (["--task", "nope"], "has no task 'nope' (field tasks)"),
    ],
)
def test_rerun_mistakes_are_one_line_and_exit_2(
    server: LiveServer, args: list[str], message: str
) -> None:
    submitted = invoke("submit", "Chain", "--url", server.url)
    scenario_id = submitted.output.split("submitted Chain as ")[1].split()[0]
    result = runner.invoke(app, ["rerun", scenario_id, *args, "--url", server.url])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
