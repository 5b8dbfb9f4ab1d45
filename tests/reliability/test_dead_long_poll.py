"""A worker that dies while its long-poll lease waits, and a server that stops while long
polls wait.

Before: the server leased the next task to the dead connection; the task sat
`processing` for the whole lease (60 s here), then expired and burnt an attempt. A
shutdown let long polls run into uvicorn's graceful-shutdown timeout, which cancelled
them with CancelledError tracebacks in the log and no answer for the client.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from tests.reliability.conftest import ServerFactory
from tests.reliability.long_poll_drill import dead_long_poll_round, send_long_poll
from tests.reliability.probes import read_events, task_events

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


def test_shutdown_answers_a_waiting_long_poll_with_no_tasks(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    sock = send_long_poll(server, wait_seconds=30.0)
    started = time.monotonic()
    server.stop()  # SIGTERM: uvicorn's graceful shutdown
    stopped_after = time.monotonic() - started
    answer = read_answer(sock)
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert json.loads(body) == {"tasks": []}
    # It exited by itself (uvicorn re-raises the SIGTERM it handled), not by the SIGKILL
    # `stop` falls back to.
    assert server.process is not None
    assert server.process.returncode != -signal.SIGKILL
    # uvicorn would cancel the poll after its 3 s grace; it never had to.
    assert stopped_after < 3.0
    log = server.log_text()
    for sign in ("Traceback", "CancelledError", "timeout graceful shutdown exceeded"):
        assert sign not in log, log[-3000:]
