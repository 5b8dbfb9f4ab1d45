"""How the benchmark submits scenarios to scenarist: one function per submitter.

Each returns {harness scenario id: wall-clock ns just before the request that carried
it}, the dispatch latency's start. Every submitter waits for each answer before it counts
the scenario as submitted; a refused submission fails the run.

- `sdk`: the SDK's asyncio client (`AsyncScenaristClient.submit`), one after another;
- `httpx`: one plain `httpx.Client`, `POST /generate` one after another (what a backend
  that "just calls the API" does);
- `httpx-8`: the same from 8 threads, each with its own client;
- `bulk`: `AsyncScenaristClient.submit_many`, BULK_SIZE scenarios per `POST /generate/batch`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from benchmarks.harness.system import BULK_SIZE
from benchmarks.harness.workload import Workload

from scenarist.worker.client import AsyncScenaristClient, SubmitItem

TEMPLATE = "CreateVideo"
THREADS = 8


def params(benchmark_id: str, slides: int) -> dict[str, Any]:
    return {"description": benchmark_id, "slides_count": slides}


async def submit_sdk(url: str, workload: Workload) -> dict[str, int]:
    submitted: dict[str, int] = {}
    async with AsyncScenaristClient(url, max_connections=1) as client:
        for benchmark_id in workload.scenario_ids():
            submitted[benchmark_id] = time.time_ns()
            await client.submit(TEMPLATE, params(benchmark_id, workload.slides))
    return submitted


def submit_httpx(url: str, workload: Workload, *, threads: int = 1) -> dict[str, int]:
    submitted: dict[str, int] = {}
    ids = list(workload.scenario_ids())

    def submit_share(share: Sequence[str]) -> None:
        with httpx.Client(base_url=url, timeout=30.0) as client:
            for benchmark_id in share:
                submitted[benchmark_id] = time.time_ns()
                body = {"scenario": TEMPLATE, **params(benchmark_id, workload.slides)}
                client.post("/generate", json=body).raise_for_status()

    if threads == 1:
        submit_share(ids)
        return submitted
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Round-robin shares: every thread submits early and late scenarios alike.
        for done in [pool.submit(submit_share, ids[i::threads]) for i in range(threads)]:
            done.result()
    return submitted


async def submit_bulk(url: str, workload: Workload) -> dict[str, int]:
    submitted: dict[str, int] = {}
    async with AsyncScenaristClient(url, max_connections=1) as client:
        for batch in batches(list(workload.scenario_ids()), BULK_SIZE):
            now = time.time_ns()
            submitted.update(dict.fromkeys(batch, now))
            items = [SubmitItem(TEMPLATE, params(i, workload.slides)) for i in batch]
            outcomes = await client.submit_many(items)
            refused = [o for o in outcomes if o["status"] != 201]
            if refused:
                raise RuntimeError(f"bulk submission refused: {refused[:3]}")
    return submitted


def batches(ids: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
