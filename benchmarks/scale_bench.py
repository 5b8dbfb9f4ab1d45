#!/usr/bin/env python3
"""Scale-out benchmark: 1 vs 3 API processes, single Redis vs a 3-master Redis Cluster.

    python benchmarks/scale_bench.py --quick    # about a minute
    python benchmarks/scale_bench.py            # larger runs

For each configuration: start the store (a redis-server, or three cluster-enabled ones),
start N `scenarist serve` processes on it, submit `scenarios` x `Jobs(n=width)` spread
over the processes, then let plain-HTTP worker loops (lease a batch with long-poll, one
batch complete) drain them, spread round-robin over the processes. Reported: tasks per
second from the first lease to the last scenario final (each task = lease + complete,
so two state changes), and the submit rate.

Honesty about the machine: everything runs on one host. With 2 cores the API
processes, the Redis processes and this load generator compete for the same CPUs, so
extra processes cannot add throughput here; the numbers show the overhead of the
topology (cluster hops, cross-process wake-ups), not its scaling. On real deployments
each API process and each Redis master gets its own cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.fleet import (  # noqa: E402
    Tally,
    api_processes,
    check,
    start_workers,
    wait_all_final,
)
from tests.support.redis_cluster import RedisCluster  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


@dataclass(frozen=True)
class Result:
    store: str
    api_processes: int
    tasks: int
    submit_per_s: float
    tasks_per_s: float


@contextmanager
def running_store(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "redis":
        server = RedisServer(workdir=workdir / "redis").start()
        try:
            yield server.url
        finally:
            server.stop()
        return
    cluster = RedisCluster(workdir=workdir / "cluster").start()
    try:
        yield f"{cluster.url}?shard_count={cluster.masters}"
    finally:
        cluster.stop()


async def submit(client: httpx.AsyncClient, urls: list[str], count: int, width: int) -> list[str]:
    limit = asyncio.Semaphore(32)

    async def one(i: int) -> str:
        async with limit:
            response = await client.post(
                f"{urls[i % len(urls)]}/generate", json={"scenario": "Jobs", "n": width}
            )
            return str(check(response).json()["scenario_id"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def measure(urls: list[str], scenarios: int, width: int, workers: int) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        started = time.perf_counter()
        ids = await submit(client, urls, scenarios, width)
        submit_rate = scenarios / (time.perf_counter() - started)
        tally = Tally()
        started = time.perf_counter()
        stop, loops = start_workers(client, urls, per_service=workers, tally=tally)
        statuses = await wait_all_final(client, urls[0], ids, timeout=300.0)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*loops)
    done = sum(1 for s in statuses.values() if s == "success")
    if done != scenarios or set(tally.completed.values()) != {1}:
        raise SystemExit(f"run incomplete: {done}/{scenarios} scenarios succeeded")
    return submit_rate, len(tally.completed) / elapsed


def run(kind: str, processes: int, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with (
            running_store(kind, workdir) as store_url,
            api_processes(workdir, store_url, processes) as servers,
        ):
            submit_rate, rate = asyncio.run(
                measure([s.url for s in servers], args.scenarios, args.width, args.workers)
            )
    return Result(kind, processes, args.scenarios * args.width, submit_rate, rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (about a minute)")
    parser.add_argument("--scenarios", type=int, default=None)
    parser.add_argument("--width", type=int, default=20, help="tasks per scenario")
    parser.add_argument("--workers", type=int, default=6, help="worker loops")
    args = parser.parse_args(argv)
    if args.scenarios is None:
        args.scenarios = 100 if args.quick else 400
    print(f"cores: {os.cpu_count()}  scenarios: {args.scenarios} x {args.width} tasks")
    print(f"{'store':<14}{'APIs':>5}{'tasks':>8}{'submit/s':>10}{'tasks/s':>10}")
    for kind in ("redis", "redis-cluster"):
        for processes in (1, 3):
            r = run(kind, processes, args)
            print(
                f"{r.store:<14}{r.api_processes:>5}{r.tasks:>8}"
                f"{r.submit_per_s:>10.0f}{r.tasks_per_s:>10.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
