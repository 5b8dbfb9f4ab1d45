#!/usr/bin/env python3
"""Micro-benchmark of the Store backends (no HTTP): submit, lease+complete, dispatch latency,
and Redis memory per finished task.

    python benchmarks/store_bench.py --quick      # < 30 s
    python benchmarks/store_bench.py              # larger runs

Starts its own redis-server on a free loopback port (stopped by pid at the end) and uses a
temporary SQLite file. Times are wall clock on this machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(REPO_ROOT))
    sys.path.insert(0, str(REPO_ROOT / "src"))

from tests.support.redis_server import RedisServer  # noqa: E402

from scenarist.core.model import ScenarioPlan, TaskSpec  # noqa: E402
from scenarist.service.records import build_records, new_scenario_id  # noqa: E402
from scenarist.storage.base import Store  # noqa: E402

SERVICE = "bench-service"


def _spec(name: str, deps: tuple[str, ...], level: int, service: str = SERVICE) -> TaskSpec:
    return TaskSpec(name, name, None, service, {"prompt": f"task {name}"}, deps, level, 3, 60.0)


def wide_plan(n_tasks: int) -> ScenarioPlan:
    """n_tasks roots of one service: the shape that stresses submit and leasing."""
    return ScenarioPlan("Bench", {}, tuple(_spec(f"t{i}", (), 0) for i in range(n_tasks)))


MEMORY_SERVICE = "memory-service"


def video_plan(slides: int = 3) -> ScenarioPlan:
    """The CreateVideo shape: script -> voice, slide prompts -> slide images -> video."""
    svc = MEMORY_SERVICE
    specs = [_spec("script", (), 0, svc), _spec("voice", ("script",), 1, svc)]
    for i in range(1, slides + 1):
        specs.append(_spec(f"slide_prompt_{i}", ("script",), 1, svc))
        specs.append(_spec(f"slide_image_{i}", (f"slide_prompt_{i}",), 2, svc))
    images = tuple(f"slide_image_{i}" for i in range(1, slides + 1))
    specs.append(_spec("video", ("voice", *images), 3, svc))
    return ScenarioPlan("CreateVideo", {"description": "benchmark"}, tuple(specs))


def chain_plan() -> ScenarioPlan:
    return ScenarioPlan(
        "Chain", {}, (_spec("a", (), 0, "parent-service"), _spec("b", ("a",), 1, "child-service"))
    )


async def submit(store: Store, plan: ScenarioPlan) -> None:
    scenario, tasks = build_records(plan, scenario_id=new_scenario_id(), now=time.time())
    await store.create_scenario(scenario, tasks)


async def bench_submit(store: Store, n_tasks: int, repeats: int) -> float:
    """Seconds per submit of one n_tasks scenario (median of `repeats`)."""
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        await submit(store, wide_plan(n_tasks))
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


async def drain(store: Store, service: str, total: int, batch: int = 100) -> int:
    """Lease in batches and complete each batch concurrently until `total` tasks are done."""
    done = 0
    while done < total:
        leased = await store.lease(
            service, max_tasks=batch, lease_seconds=60, worker_id="bench",
            now=time.time(), nonce=secrets.token_hex(8),
        )  # fmt: skip
        if not leased:
            break
        now = time.time()
        await asyncio.gather(
            *(store.complete(t.id, t.lease_token, result_ref="r", result=None, now=now)
              for t in leased)
        )  # fmt: skip
        done += len(leased)
    return done


CYCLE_WORKERS = 4


async def bench_cycle(store: Store, n_tasks: int) -> float:
    """Tasks per second through lease(max_tasks=100) + concurrent complete, with a few
    worker loops at once (as several worker processes would), so the client's encoding
    overlaps with the server's script execution."""
    for _ in range(n_tasks // 1000):
        await submit(store, wide_plan(1000))
    start = time.perf_counter()
    share = n_tasks // CYCLE_WORKERS
    done = await asyncio.gather(*(drain(store, SERVICE, share) for _ in range(CYCLE_WORKERS)))
    return sum(done) / (time.perf_counter() - start)


async def bench_dispatch(store: Store, rounds: int) -> tuple[float, float]:
    """(p50, p99) ms from a parent's complete() call to its child leased by a waiting worker."""
    leased_at: asyncio.Queue[float] = asyncio.Queue()
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            watch = await store.watch_ready(["child-service"])
            got = await store.lease(
                "child-service", max_tasks=1, lease_seconds=60, worker_id="w",
                now=time.time(), nonce=secrets.token_hex(8),
            )  # fmt: skip
            if got:
                watch.close()
                leased_at.put_nowait(time.perf_counter())
                await store.complete(got[0].id, got[0].lease_token, result_ref="r", result=None,
                                     now=time.time())  # fmt: skip
            else:
                with watch:
                    await watch.wait(1.0)

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.05)  # let the worker subscribe
    samples = []
    for _ in range(rounds):
        await submit(store, chain_plan())
        parent = (await store.lease("parent-service", max_tasks=1, lease_seconds=60, worker_id="p",
                                    now=time.time(), nonce=secrets.token_hex(8)))[0]  # fmt: skip
        start = time.perf_counter()
        await store.complete(parent.id, parent.lease_token, result_ref="r", result=None,
                             now=time.time())  # fmt: skip
        samples.append((await asyncio.wait_for(leased_at.get(), 5.0) - start) * 1000)
    stop.set()
    task.cancel()
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def bench_memory(store: Any, scenarios: int) -> float:
    """Redis used_memory growth per task, after `scenarios` CreateVideo scenarios finished."""
    client = store.client
    await client.execute_command("MEMORY", "PURGE")
    before = (await client.info("memory"))["used_memory"]
    plan = video_plan()
    for _ in range(scenarios):
        await submit(store, plan)
    total = scenarios * len(plan.tasks)
    finished = 0
    while finished < total:
        round_done = await drain(store, MEMORY_SERVICE, total - finished)
        if round_done == 0:
            break
        finished += round_done
    await client.execute_command("MEMORY", "PURGE")
    after = (await client.info("memory"))["used_memory"]
    return (after - before) / max(finished, 1)


@asynccontextmanager
async def redis_store(workdir: Path) -> AsyncIterator[Store]:
    from scenarist.storage.redis.store import RedisStore

    server = RedisServer(workdir=workdir / "redis").start()
    try:
        store = await RedisStore.open(server.url)
        try:
            yield store
        finally:
            await store.close()
    finally:
        server.stop()


@asynccontextmanager
async def sqlite_store(workdir: Path) -> AsyncIterator[Store]:
    from scenarist.storage.sqlite.store import SqliteStore

    store = await SqliteStore.open(workdir / "bench.db")
    try:
        yield store
    finally:
        await store.close()


async def run_backend(name: str, opener: Callable[[Path], Any], quick: bool) -> None:
    sizes = {"submit_repeats": 5 if quick else 20, "cycle": 5000 if quick else 20000,
             "dispatch": 200 if quick else 1000, "memory": 300 if quick else 1000}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scenarist-bench-") as tmp:
        async with opener(Path(tmp)) as store:
            one_k = await bench_submit(store, 1000, sizes["submit_repeats"])
            print(f"{name:7} submit 1k-task scenario: {1 / one_k:8.1f} scenarios/s "
                  f"({one_k * 1000:.1f} ms each)")  # fmt: skip
            ten_k = await bench_submit(store, 10_000, 1 if quick else 3)
            print(f"{name:7} submit 10k-task scenario: {ten_k * 1000:8.1f} ms")
            rate = await bench_cycle(store, sizes["cycle"])
            print(f"{name:7} lease+complete (batch 100): {rate:8.0f} tasks/s")
            p50, p99 = await bench_dispatch(store, sizes["dispatch"])
            print(f"{name:7} dispatch latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            if name == "redis":
                per_task = await bench_memory(store, sizes["memory"])
                print(f"{name:7} memory per finished task: {per_task:8.0f} bytes")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 30 s")
    parser.add_argument("--backend", choices=["redis", "sqlite", "all"], default="all")
    args = parser.parse_args()
    backends: list[tuple[str, Callable[[Path], Any]]] = []
    if args.backend in ("redis", "all"):
        backends.append(("redis", redis_store))
    if args.backend in ("sqlite", "all"):
        backends.append(("sqlite", sqlite_store))
    for name, opener in backends:
        await asyncio.wait_for(run_backend(name, opener, args.quick), timeout=300)


if __name__ == "__main__":
    asyncio.run(main())
