"""Several `scenarist serve` processes on one store, and plain-HTTP workers spread over
them: what a load-balanced deployment looks like, on loopback. Used by the multi-API test
and by `benchmarks/scale_bench.py`.

Workers speak the documented protocol only (lease with long-poll, batch complete), so
they stand for a worker in any language. Every lease and completion is recorded, so a
caller can check that no task was handed out twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.live_server import ServerProcess

SERVICES = ("test-service", "join-service")
LEASE_BATCH = 20
HTTP_TIMEOUT = 30.0


def check(response: httpx.Response) -> httpx.Response:
    """Raise with the problem body in the message (raise_for_status drops it)."""
    if response.is_error:
        raise AssertionError(
            f"{response.request.method} {response.request.url} -> "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response


@contextmanager
def api_processes(workdir: Path, store_url: str, count: int) -> Iterator[list[ServerProcess]]:
    """`count` API processes sharing `store_url`; all stopped by pid afterwards."""
    servers: list[ServerProcess] = []
    try:
        for i in range(count):
            servers.append(ServerProcess(workdir / f"api{i}", store_url=store_url).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


@dataclass
class Tally:
    leased: Counter[str] = field(default_factory=Counter)  # task id -> times handed out
    completed: Counter[str] = field(default_factory=Counter)  # task id -> acknowledged
    rejected: list[dict[str, Any]] = field(default_factory=list)  # batch items refused


async def work(
    client: httpx.AsyncClient, url: str, service: str, tally: Tally, stop: asyncio.Event
) -> None:
    """Lease (long-poll) and complete in batches until `stop` is set."""
    while not stop.is_set():
        response = await client.post(
            f"{url}/queues/{service}/lease",
            json={"max_tasks": LEASE_BATCH, "lease_seconds": 60, "wait_seconds": 0.5},
        )
        tasks = check(response).json()["tasks"]
        if not tasks:
            continue
        tally.leased.update(t["id"] for t in tasks)
        items = [
            {"id": t["id"], "lease_token": t["lease_token"], "result_ref": f"ref/{t['name']}"}
            for t in tasks
        ]
        done = await client.post(f"{url}/tasks/complete", json={"items": items})
        for outcome in check(done).json()["outcomes"]:
            if outcome["ok"]:
                tally.completed[outcome["id"]] += 1
            else:
                tally.rejected.append(outcome)


async def submit_all(
    client: httpx.AsyncClient, urls: Sequence[str], template: str, count: int
) -> list[str]:
    """Submit `count` scenarios round-robin over `urls`, a few at a time."""
    turn = itertools.cycle(urls)
    limit = asyncio.Semaphore(16)

    async def one(url: str) -> str:
        async with limit:
            response = await client.post(f"{url}/generate", json={"scenario": template})
            return str(check(response).json()["scenario_id"])

    return list(await asyncio.gather(*(one(next(turn)) for _ in range(count))))


async def wait_all_final(
    client: httpx.AsyncClient, url: str, ids: Sequence[str], timeout: float
) -> dict[str, str]:
    """scenario id -> status once every scenario is final (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        for sid in ids:
            if statuses.get(sid) not in {"success", "failed", "cancelled"}:
                response = await client.get(f"{url}/scenarios/{sid}")
                statuses[sid] = check(response).json()["status"]
        if all(s in {"success", "failed", "cancelled"} for s in statuses.values()):
            break
        await asyncio.sleep(0.1)
    return statuses


async def read_sse(client: httpx.AsyncClient, url: str, scenario_id: str) -> list[dict[str, Any]]:
    """Every SSE event (`event` name plus data) of a scenario's stream, up to `end`."""
    events: list[dict[str, Any]] = []
    async with client.stream("GET", f"{url}/scenarios/{scenario_id}/events") as response:
        check(response)
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name is not None:
                events.append({"event": name, **json.loads(line.removeprefix("data: "))})
                if name in {"end", "error"}:
                    return events
    return events


def start_workers(
    client: httpx.AsyncClient, urls: Sequence[str], per_service: int, tally: Tally
) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
    """`per_service` workers of each service, spread round-robin over the API processes."""
    stop = asyncio.Event()
    turn = itertools.cycle(urls)
    tasks = [
        asyncio.create_task(work(client, next(turn), service, tally, stop))
        for service in SERVICES
        for _ in range(per_service)
    ]
    return stop, tasks
