"""Following a scenario's stream across a server restart: a stream that ends without its
`end` event is followed again; only failures to reach the server, in a row, give up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scenarist.cli import watch
from scenarist.worker.errors import ServerUnreachableError
from scenarist.worker.sse import ServerEvent

RUNNING = {"status": "running", "progress": {"total": 2}}
DONE = {"status": "success", "progress": {"total": 2}}


class ScriptedClient:
    """Plays the given outcomes for events() and get_scenario() in order."""

    def __init__(self, streams: list[Any], documents: list[Any]) -> None:
        self.streams = streams
        self.documents = documents
        self.resumed_after: list[str | None] = []

    def events(self, scenario_id: str, *, last_event_id: str | None = None) -> Iterator[Any]:
        self.resumed_after.append(last_event_id)
        outcome = self.streams.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        yield from outcome

    def get_scenario(self, scenario_id: str, *, with_tasks: bool = True) -> Any:
        outcome = self.documents.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "RECONNECT_DELAY_SECONDS", 0.0)


def test_a_restart_between_streams_is_followed_to_the_end() -> None:
    down = ServerUnreachableError("connection refused")
    client = ScriptedClient(
        streams=[
            [ServerEvent("progress", RUNNING, "1")],  # the server shuts its streams down
            down,
            down,
            [ServerEvent("progress", RUNNING, "2"), ServerEvent("end", DONE, "3")],
        ],
        documents=[down, RUNNING],  # the first read comes while the server is restarting
    )
    seen: list[Any] = []
    watch.follow_events(client, "s1", seen.append)  # type: ignore[arg-type]
    assert seen[-1] == DONE
    assert client.resumed_after == [None, "1", "1", "1"]


def test_a_clean_end_is_not_mistaken_for_the_scenario_ending() -> None:
    streams: list[Any] = [[] for _ in range(watch.RECONNECT_ATTEMPTS + 2)]
    streams.append([ServerEvent("end", DONE, "9")])
    client = ScriptedClient(streams=streams, documents=[RUNNING] * (len(streams) - 1))
    seen: list[Any] = []
    watch.follow_events(client, "s1", seen.append)  # type: ignore[arg-type]
    assert seen[-1] == DONE


def test_failures_in_a_row_give_up_loudly() -> None:
    down = ServerUnreachableError("connection refused")
    client = ScriptedClient(streams=[down] * watch.RECONNECT_ATTEMPTS, documents=[])
    with pytest.raises(ServerUnreachableError):
        watch.follow_events(client, "s1", lambda _: None)  # type: ignore[arg-type]
