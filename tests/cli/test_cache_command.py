"""`scenarist cache clear` against a live server: it empties the step cache (all of it or
one service's), and a refused request is one line with exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scenarist.worker import ScenaristClient
from tests.cli.test_client_commands import invoke
from tests.worker.server import LiveServer

CACHED = """\
Note:
  tasks:
    - id: note
      service: text-service
      cache: true
      payload: {kind: note}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(workdir=tmp_path / "server", catalog=CACHED).start()
    try:
        yield live
    finally:
        live.stop()


def run_note(client: ScenaristClient) -> dict[str, Any]:
    """Submit Note and finish it if it was not served from the cache; its task."""
    scenario_id = client.submit("Note", {})["scenario_id"]
    for task in client.lease("text-service", max_tasks=1):
        client.complete(task.id, task.lease_token, result_ref="out/note.txt")
    note: dict[str, Any] = client.get_task(f"{scenario_id}:note")
    return note


def test_clear_empties_the_cache_of_a_service_or_all(server: LiveServer) -> None:
    with ScenaristClient(server.url) as client:
        assert run_note(client)["cached"] is False
        assert run_note(client)["cached"] is True
        other = invoke("cache", "clear", "--service", "image-service", "--url", server.url)
        assert other.exit_code == 0, other.output
        assert "service image-service" in other.output
        assert run_note(client)["cached"] is True
        cleared = invoke("cache", "clear", "--url", server.url)
        assert cleared.exit_code == 0, cleared.output
        assert "every service" in cleared.output
        assert run_note(client)["cached"] is False


def test_a_refused_clear_is_one_line_and_exit_two(server: LiveServer) -> None:
    empty = invoke("cache", "clear", "--service", "", "--url", server.url)
    assert empty.exit_code == 2
    assert "service" in empty.output
    assert "Traceback" not in empty.output
    unreachable = invoke("cache", "clear", "--url", "http://127.0.0.1:9")
    assert unreachable.exit_code == 2
