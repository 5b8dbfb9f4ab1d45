"""`scenarist submit --from-file`: a JSONL file of POST /generate bodies, sent in batches,
each refused line named as file:line, against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from scenarist.cli.main import app
from scenarist.worker import ScenaristClient
from tests.worker.server import LiveServer

runner = CliRunner()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(workdir=tmp_path / "server").start()
    try:
        yield live
    finally:
        live.stop()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def jsonl(path: Path, *lines: Any) -> Path:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


def stored_count(server: LiveServer) -> int:
    listed = httpx.get(f"{server.url}/scenarios", params={"limit": 100}).json()
    return len(listed["items"])


def test_every_line_is_submitted_in_batches(server: LiveServer, tmp_path: Path) -> None:
    requests = jsonl(
        tmp_path / "requests.jsonl",
        *({"scenario": "Jobs", "n": i % 3, "idempotency_key": f"k{i}"} for i in range(7)),
        "",
    )
    result = invoke(
        "submit", "--from-file", str(requests), "--batch-size", "3", "--url", server.url
    )
    assert result.exit_code == 0, result.output
    assert "submitted 7 of 7 scenarios (7 created" in result.output
    again = invoke("submit", "--from-file", str(requests), "--url", server.url, "--json")
    assert again.exit_code == 0, again.output
    outcomes = json.loads(again.stdout)
    assert [o["line"] for o in outcomes] == list(range(1, 8))
    assert {o["status"] for o in outcomes} == {200}
    assert all(o["created"] is False for o in outcomes)


def test_refused_lines_are_named_and_the_others_submitted(
    server: LiveServer, tmp_path: Path
) -> None:
    requests = jsonl(
        tmp_path / "mixed.jsonl",
        {"scenario": "Jobs", "n": 1},
        {"scenario": "NoSuchTemplate"},
        "",
        {"scenario": "Jobs", "n": 500},
        {"scenario": "Jobs", "idempotency_key": "same"},
        {"scenario": "Jobs", "label": "other", "idempotency_key": "same"},
    )
    result = invoke("submit", "--from-file", str(requests), "--url", server.url)
    assert result.exit_code == 2, result.output
    assert f"{requests}:2: " in result.output
    assert "NoSuchTemplate" in result.output
    assert f"{requests}:4: " in result.output
    assert "(field n)" in result.output
    assert f"{requests}:6: " in result.output
    assert f"{requests}:1: " not in result.output
    assert "submitted 2 of 5 scenarios" in result.output
    assert "3 refused" in result.output
    assert stored_count(server) == 2
    assert "Traceback" not in result.output


def test_a_malformed_file_sends_nothing(server: LiveServer, tmp_path: Path) -> None:
    requests = jsonl(
        tmp_path / "bad.jsonl",
        {"scenario": "Jobs"},
        "{not json",
        '["CreateVideo"]',
        {"scenario": "Jobs"},
    )
    result = invoke("submit", "--from-file", str(requests), "--url", server.url)
    assert result.exit_code == 2, result.output
    assert f"{requests}:2: not valid JSON" in result.output
    assert f"{requests}:3: expected a JSON object" in result.output
    assert "nothing was submitted" in result.output
    assert stored_count(server) == 0
    with ScenaristClient(server.url) as client:
        assert client.submit_many([{"scenario": "Jobs"}])[0]["status"] == 201
    assert stored_count(server) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["Jobs"], "--from-file takes each request from the file"),
        (["--param", "n=2"], "--from-file takes each request from the file"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_options_that_do_not_go_with_a_file_are_refused(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    requests = jsonl(tmp_path / "r.jsonl", {"scenario": "Jobs"})
    result = invoke("submit", "--from-file", str(requests), *extra, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert message in result.output


def test_missing_file_and_unreachable_server_are_one_line(tmp_path: Path) -> None:
    missing = invoke(
        "submit", "--from-file", str(tmp_path / "nope.jsonl"), "--url", "http://127.0.0.1:9"
    )
    assert missing.exit_code == 2
    assert "nope.jsonl: cannot read" in missing.output
    requests = jsonl(tmp_path / "r.jsonl", {"scenario": "Jobs"})
    down = invoke("submit", "--from-file", str(requests), "--url", "http://127.0.0.1:9")
    assert down.exit_code == 2
    assert f"{requests}:1-1: the batch was not taken" in down.output
    assert "Traceback" not in down.output


def test_submit_without_a_template_or_file_is_refused() -> None:
    result = invoke("submit", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "name a template" in result.output
