"""A worker that leaves its long-poll lease mid-wait, then a task arrives: how soon, and
at which attempt, does the next worker get it? Shared by test_dead_long_poll.py and the
figure in docs/reliability.md:

    python -m tests.reliability.long_poll_drill [--store redis|sqlite] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.reliability.probes import submit
from tests.support.live_server import ServerProcess
from tests.support.redis_server import RedisServer

LEASE_SECONDS = 60.0
NEXT_WORKER_WAIT_SECONDS = 10.0
SETTLE_SECONDS = 0.5  # lets the server take the request into its wait


def send_long_poll(
    server: ServerProcess, *, wait_seconds: float, service: str = "test-service"
) -> socket.socket:
    """A lease request on a raw socket, so the caller decides when its connection closes."""
    body = json.dumps(
        {"max_tasks": 1, "lease_seconds": LEASE_SECONDS, "wait_seconds": wait_seconds}
    ).encode()
    head = (
        f"POST /queues/{service}/lease HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30.0)
    sock.sendall(head + body)
    time.sleep(SETTLE_SECONDS)
    return sock


@dataclass(frozen=True)
class Round:
    scenario_id: str
    waited: float  # seconds the next worker's long poll took to answer
    tasks: list[dict[str, object]]  # what it got


def dead_long_poll_round(server: ServerProcess) -> Round:
    """One worker leaves its long poll; a task is submitted; the next worker long-polls."""
    send_long_poll(server, wait_seconds=30.0).close()
    scenario_id = submit(server.url, "Jobs", {"n": 1})["scenario_id"]
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/queues/test-service/lease",
        json={
            "max_tasks": 1,
            "lease_seconds": LEASE_SECONDS,
            "wait_seconds": NEXT_WORKER_WAIT_SECONDS,
        },
        timeout=30.0,
    )
    waited = time.monotonic() - started
    assert response.status_code == 200, response.text
    return Round(scenario_id, waited, response.json()["tasks"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir=workdir / "redis").start() if args.store == "redis" else None
        store_url = redis.url if redis else f"sqlite:///{workdir / 'scenarist.db'}"
        server = ServerProcess(workdir=workdir / "server", store_url=store_url)
        try:
            server.start()
            rounds = [dead_long_poll_round(server) for _ in range(args.rounds)]
        finally:
            server.stop()
            if redis is not None:
                redis.stop()
    served = [r for r in rounds if r.tasks]
    attempts = sorted({t["attempt"] for r in served for t in r.tasks}, key=str)
    waits = [r.waited * 1000 for r in served]
    print(
        f"{args.store}: {len(served)} of {len(rounds)} tasks went to the next worker within "
        f"{NEXT_WORKER_WAIT_SECONDS:g} s, attempts {attempts}, "
        + (
            f"answered in median {statistics.median(waits):.0f} ms, max {max(waits):.0f} ms"
            if waits
            else "none answered"
        )
    )


if __name__ == "__main__":
    main()
