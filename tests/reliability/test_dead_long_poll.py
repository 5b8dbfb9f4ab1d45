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

import httpx
import pytest

from tests.reliability.conftest import ServerFactory
from tests.reliability.probes import read_events, submit, task_events
from tests.support.live_server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

LEASE_SECONDS = 60.0
SETTLE_SECONDS = 0.5  # lets the server take the request into its wait


def send_long_poll(server: ServerProcess, *, wait_seconds: float) -> socket.socket:
    """A lease request on a raw socket, so the test decides when its connection closes."""
    body = json.dumps(
        {"max_tasks": 1, "lease_seconds": LEASE_SECONDS, "wait_seconds": wait_seconds}
    ).encode()
    head = (
        "POST /queues/test-service/lease HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30.0)
    sock.sendall(head + body)
    time.sleep(SETTLE_SECONDS)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_task_submitted_after_a_worker_left_its_long_poll_goes_to_the_next_worker(
    start_server: ServerFactory, store_url: str
) -> None:
    server = start_server(store_url)
    send_long_poll(server, wait_seconds=30.0).close()  # the worker is gone mid-wait
    scenario_id = submit(server.url, "Jobs", {"n": 1})["scenario_id"]
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/queues/test-service/lease",
        json={"max_tasks": 1, "lease_seconds": LEASE_SECONDS, "wait_seconds": 10},
        timeout=30.0,
    )
    waited = time.monotonic() - started
    assert response.status_code == 200, response.text
    [leased] = response.json()["tasks"]
    assert (leased["id"], leased["attempt"]) == (f"{scenario_id}:job_1", 1)
    # Well inside the 10 s poll: the task was never held for the 60 s lease.
    assert waited < 5.0
    # Either the dead poll never leased it, or it handed the lease back at once.
    events = task_events(await read_events(store_url, scenario_id), "job_1")
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
