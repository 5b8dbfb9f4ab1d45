"""Bursts of concurrent requests against a live server: ordinary reads and failures all at
once, and many Server-Sent Event streams at once. Shared by tests/reliability/test_bursts.py
and by the figures in docs/reliability.md:

    python -m tests.reliability.bursts [--store redis|sqlite] [--requests 300] [--streams 200]
                                       [--pool-size N]

Every request goes out on its own connection (one client, no connection limit, no
keep-alive), so the server really has them all in flight at the same time: the point is
to exceed the store's connection pool, not the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.probes import lease, submit
from tests.support.live_server import ServerProcess
from tests.support.redis_server import RedisServer

REQUEST_KINDS = ("task", "scenario", "health", "fail")
UNPOOLED = httpx.Limits(max_connections=None, max_keepalive_connections=0)
TERMINAL_SSE_EVENTS = frozenset({"end", "error"})
STREAM_DEADLINE_SECONDS = 60.0
LEASE_ROUNDS = 20


@dataclass
class BurstResult:
    """What a burst saw: answers by kind and status, errors (anything but the expected
    2xx, or a broken connection) with a sample, and the latency of each request."""

    answers: dict[str, dict[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, kind: str, status: int, latency: float) -> None:
        by_status = self.answers.setdefault(kind, {})
        by_status[status] = by_status.get(status, 0) + 1
        self.latencies.append(latency)

    def percentile(self, p: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1]


def prepare_burst(url: str, requests: int) -> list[tuple[str, dict[str, Any]]]:
    """`requests` requests, the four kinds in turn; each `fail` gets a task leased for it
    (one Jobs scenario holds them all)."""
    kinds = [REQUEST_KINDS[i % len(REQUEST_KINDS)] for i in range(requests)]
    failures = kinds.count("fail")
    scenario_id = submit(url, "Jobs", {"n": max(failures, 1)})["scenario_id"]
    leased = lease(url, "test-service", max_tasks=max(failures, 1), lease_seconds=600.0)
    assert len(leased) == max(failures, 1), leased
    plan: list[tuple[str, dict[str, Any]]] = []
    for i, kind in enumerate(kinds):
        plan.append((kind, {"scenario_id": scenario_id, "task": leased[i % len(leased)]}))
    return plan


def unpooled_client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=60.0, limits=UNPOOLED)


async def send_request(
    client: httpx.AsyncClient, kind: str, target: dict[str, Any], result: BurstResult
) -> None:
    task = target["task"]
    started = time.monotonic()
    try:
        if kind == "task":
            response = await client.get(f"/tasks/{task['id']}")
        elif kind == "scenario":
            response = await client.get(f"/scenarios/{target['scenario_id']}")
        elif kind == "health":
            response = await client.get("/health")
        else:
            response = await client.post(
                f"/tasks/{task['id']}/fail",
                json={"lease_token": task["lease_token"], "error": "burst"},
            )
    except httpx.TransportError as exc:
        result.errors.append(f"{kind}: {exc!r}")
        return
    result.record(kind, response.status_code, time.monotonic() - started)
    if response.status_code != 200:
        result.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")


async def request_burst(url: str, requests: int) -> BurstResult:
    """All requests sent at once; each kind must answer 200."""
    plan = prepare_burst(url, requests)
    result = BurstResult()
    async with unpooled_client(url) as client:
        began = time.monotonic()
        await asyncio.gather(*(send_request(client, kind, target, result) for kind, target in plan))
        result.seconds = time.monotonic() - began
    return result


async def follow_stream(
    client: httpx.AsyncClient,
    scenario_id: str,
    result: BurstResult,
    connected: asyncio.Queue[None],
) -> None:
    """One SSE client: it must see the stream open (200), then an `end` event. Its
    latency is the time to its first event."""
    started = time.monotonic()
    first_event_after = 0.0
    last_event = ""
    try:
        async with client.stream("GET", f"/scenarios/{scenario_id}/events") as response:
            if response.status_code != 200:
                result.errors.append(f"stream: {response.status_code}")
                await connected.put(None)
                return
            announced = False
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    last_event = line.removeprefix("event: ")
                    if not announced:  # the stored events arrived: the stream is live
                        announced = True
                        first_event_after = time.monotonic() - started
                        await connected.put(None)
                    if last_event in TERMINAL_SSE_EVENTS:
                        break
    except httpx.TransportError as exc:
        result.errors.append(f"stream: {exc!r}")
        await connected.put(None)
        return
    result.record("stream", 200, first_event_after)
    if last_event != "end":
        result.errors.append(f"stream ended with {last_event or 'nothing'!r}, not 'end'")


async def stream_burst(url: str, streams: int, *, scenarios: int = 10) -> BurstResult:
    """`streams` SSE clients spread over `scenarios` one-task scenarios, all connected
    at once; then every task is completed and each stream must end with `end`."""
    ids = [submit(url, "Jobs", {"n": 1})["scenario_id"] for _ in range(scenarios)]
    result = BurstResult()
    connected: asyncio.Queue[None] = asyncio.Queue()
    async with unpooled_client(url) as streaming, httpx.AsyncClient(base_url=url) as client:
        began = time.monotonic()
        followers = [
            asyncio.create_task(follow_stream(streaming, ids[i % scenarios], result, connected))
            for i in range(streams)
        ]
        for _ in range(streams):
            await asyncio.wait_for(connected.get(), timeout=STREAM_DEADLINE_SECONDS)
        await complete_scenarios(client, ids, result)
        _, stuck = await asyncio.wait(followers, timeout=STREAM_DEADLINE_SECONDS)
        result.seconds = time.monotonic() - began
        for follower in stuck:
            follower.cancel()
            result.errors.append(f"stream: no end within {STREAM_DEADLINE_SECONDS:g} s")
    return result


async def complete_scenarios(
    client: httpx.AsyncClient, scenario_ids: list[str], result: BurstResult
) -> None:
    """Complete the one task of each scenario (tasks of other scenarios that the same
    lease hands out stay leased: they belong to an earlier burst)."""
    waiting = set(scenario_ids)
    for _ in range(LEASE_ROUNDS):
        if not waiting:
            return
        leased = await client.post(
            "/queues/test-service/lease",
            json={"max_tasks": 1000, "lease_seconds": 600, "wait_seconds": 5},
        )
        if leased.status_code != 200:
            result.errors.append(f"lease: {leased.status_code}")
            continue
        for task in leased.json()["tasks"]:
            if task["scenario_id"] not in waiting:
                continue
            done = await client.post(
                f"/tasks/{task['id']}/complete",
                json={"lease_token": task["lease_token"], "result_ref": "ref"},
            )
            if done.status_code != 200:
                result.errors.append(f"complete: {done.status_code}")
            waiting.discard(task["scenario_id"])
    result.errors.append(f"complete: {len(waiting)} scenarios found no task to complete")


def summary(name: str, result: BurstResult) -> str:
    count = sum(sum(by.values()) for by in result.answers.values()) + len(
        [e for e in result.errors if "Error(" in e]
    )
    return (
        f"{name}: {count} requests, {len(result.errors)} errors, "
        f"p50 {result.percentile(50) * 1000:.0f} ms, p99 {result.percentile(99) * 1000:.0f} ms, "
        f"{result.seconds:.1f} s; answers {json.dumps(result.answers)}"
        + (f"; first error {result.errors[0]}" if result.errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--pool-size", type=int, help="SCENARIST_REDIS_MAX_CONNECTIONS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir=workdir / "redis").start() if args.store == "redis" else None
        store_url = redis.url if redis else f"sqlite:///{workdir / 'scenarist.db'}"
        server = ServerProcess(workdir=workdir / "server", store_url=store_url)
        server.env["SCENARIST_ACCESS_LOG"] = "false"
        if args.pool_size:
            server.env["SCENARIST_REDIS_MAX_CONNECTIONS"] = str(args.pool_size)
        try:
            server.start()
            if args.requests:
                print(summary("requests", asyncio.run(request_burst(server.url, args.requests))))
            if args.streams:
                print(summary("streams", asyncio.run(stream_burst(server.url, args.streams))))
            log = server.log_text()
            print(f"server log: {log.count('Traceback')} tracebacks, "
                  f"{log.count('maintenance skipped')} skipped maintenance rounds")  # fmt: skip
        finally:
            server.stop()
            if redis is not None:
                redis.stop()


if __name__ == "__main__":
    main()
