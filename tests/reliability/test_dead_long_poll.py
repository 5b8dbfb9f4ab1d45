"""A worker that dies while its long-poll lease waits, and a server that stops while long
polls wait.

Before: the server leased the next task to the dead connection; the task sat
`processing` for the whole lease (60 s here), then expired and burnt an attempt. A
shutdown let long polls and event streams run into uvicorn's graceful-shutdown timeout,
which cancelled them with CancelledError tracebacks in the log (a 500 for the poll, a
cut-off body for the stream).
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from tests.reliability.conftest import ServerFactory
from tests.reliability.long_poll_drill import dead_long_poll_round, send_long_poll
from tests.reliability.probes import read_events, submit, task_events
from tests.support.live_server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


def read_answer(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_task_submitted_after_a_worker_left_its_long_poll_goes_to_the_next_worker(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    drill = dead_long_poll_round(server)
    [leased] = drill.tasks
    assert (leased["id"], leased["attempt"]) == (f"{drill.scenario_id}:job_1", 1)
    # Well inside the next worker's 10 s poll: the task was never held for the 60 s lease.
    assert drill.waited < 5.0
    # Either the dead poll never leased it, or it handed the lease back at once.
    events = task_events(await read_events(store_url, drill.scenario_id), "job_1")
    assert events in ([("processing", 1)], [("processing", 1), ("queued", 0), ("processing", 1)])
    assert "Traceback" not in server.log_text()


def open_event_stream(server: ServerProcess, scenario_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30.0)
    sock.sendall(
        f"GET /scenarios/{scenario_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    )
    return sock


def test_shutdown_answers_a_waiting_long_poll_and_ends_event_streams(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    # The join waits for its job, so join-service has nothing to lease and the scenario
    # stays open: the poll waits and the stream stays idle until the shutdown.
    scenario_id = submit(server.url, "FanIn", {"n": 1})["scenario_id"]
    stream = open_event_stream(server, scenario_id)
    poll = send_long_poll(server, wait_seconds=30.0, service="join-service")
    started = time.monotonic()
    server.stop()  # SIGTERM: uvicorn's graceful shutdown
    stopped_after = time.monotonic() - started
    answer = read_answer(poll)
    streamed = read_answer(stream)
    poll.close()
    stream.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert json.loads(body) == {"tasks": []}
    assert streamed.startswith(b"HTTP/1.1 200"), streamed
    assert streamed.endswith(b"\r\n0\r\n\r\n"), streamed  # the last chunk: a clean end
    # It exited by itself (uvicorn re-raises the SIGTERM it handled), not by the SIGKILL
    # `stop` falls back to.
    assert server.process is not None
    assert server.process.returncode != -signal.SIGKILL
    # uvicorn would cancel the poll and the stream after its 3 s grace; it never had to.
    assert stopped_after < 3.0
    log = server.log_text()
    for sign in ("Traceback", "CancelledError", "timeout graceful shutdown exceeded"):
        assert sign not in log, log[-3000:]
