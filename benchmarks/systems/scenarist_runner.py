"""scenarist's side of the comparative benchmark: worker and submitter processes.

    python -m benchmarks.systems.scenarist_runner worker --mode http|inproc
    python -m benchmarks.systems.scenarist_runner submit --mode http|inproc --scenarios N \
        --submitter sdk|httpx|httpx-8|bulk ...

The workload is the packaged `CreateVideo` template with `slides_count=K` (four services:
text, audio, image, video). Its task names are the harness's names (script, voice,
slide_prompt_i, slide_image_i, video); the harness scenario id (`s001`, ...) is passed as
the template's `description`, which every task's payload carries as `topic`, so a task
body can record under the id the verifier expects.

A worker process runs one loop over all four services. Each round leases a batch
(`max_tasks`, with one long poll for every service: best tasks first across them), runs
every task body in turn (`run_noop_task`: one task at a time, since the bodies are
synchronous and the process has one thread), then reports the whole batch with the next
lease: one request per round. Two ways to reach the orchestrator, same loop:

- `http`: POST /queues/lease (its `complete` field carries the previous batch) on a
  `scenarist serve` process, through the SDK's asyncio client (`AsyncScenaristClient`,
  `lease_services`), so the figures include the client a worker ships with. How the
  scenarios reach the server is the run's submitter (scenarist_submitters.py).
  The loop itself stays here rather than in the SDK's `Worker`: a benchmark task body is
  a synchronous no-op run in turn, with no per-task threads, heartbeats or retries;
- `inproc`: the embedded path, an `Orchestrator` over a `RedisStore` inside the worker.

Settings come from the environment the harness sets (see `scenarist_system.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from benchmarks.harness.records import mark_worker_ready, run_noop_task
from benchmarks.harness.system import BULK_SIZE, SUBMITTERS
from benchmarks.harness.workload import Workload
from benchmarks.peers.runner_cli import REDIS_URL_ENV, redis_url, write_submitted
from benchmarks.systems.scenarist_submitters import (
    THREADS,
    batches,
    submit_bulk,
    submit_httpx,
    submit_sdk,
)

from scenarist.worker.client import AsyncScenaristClient, CompletionItem

TEMPLATE = "CreateVideo"
SERVICES = ("text-service", "audio-service", "image-service", "video-service")
API_URL_ENV = "BENCH_SCENARIST_URL"
BATCH_ENV = "BENCH_SCENARIST_BATCH"
DEFAULT_BATCH = 32
WAIT_SECONDS = 5.0  # long poll: returns as soon as a task is ready
LEASE_SECONDS = 60.0

__all__ = ["REDIS_URL_ENV", "main"]


@dataclass(frozen=True, slots=True)
class Leased:
    id: str
    name: str
    benchmark_id: str  # the harness scenario id, carried as the payload's topic
    lease_token: str


class Backend(Protocol):
    async def lease(
        self, services: Sequence[str], max_tasks: int, done: Sequence[Leased]
    ) -> list[Leased]:
        """Report `done` (the previous batch) as completed, then lease the next batch."""

    async def complete(self, tasks: Sequence[Leased]) -> None: ...

    async def close(self) -> None: ...


class HttpBackend:
    """The HTTP worker protocol through the SDK client: one keep-alive connection per loop."""

    def __init__(self, url: str) -> None:
        self._client = AsyncScenaristClient(url, max_connections=2)

    async def lease(
        self, services: Sequence[str], max_tasks: int, done: Sequence[Leased]
    ) -> list[Leased]:
        tasks, outcomes = await self._client.lease_services(
            services,
            max_tasks=max_tasks,
            lease_seconds=LEASE_SECONDS,
            wait_seconds=WAIT_SECONDS,
            complete=[CompletionItem(t.id, t.lease_token, None) for t in done],
        )
        _check_outcomes(outcomes)
        return [Leased(t.id, t.name, t.payload["topic"], t.lease_token) for t in tasks]

    async def complete(self, tasks: Sequence[Leased]) -> None:
        items = [CompletionItem(t.id, t.lease_token, None) for t in tasks]
        _check_outcomes(await self._client.complete_many(items))

    async def close(self) -> None:
        await self._client.aclose()


class InProcessBackend:
    """The embedded path: the Orchestrator and the Redis store in this process."""

    def __init__(self, orchestrator: Any) -> None:
        self._orchestrator = orchestrator

    @classmethod
    async def open(cls, url: str) -> InProcessBackend:
        from scenarist.core.catalog import load_catalog
        from scenarist.service.orchestrator import Orchestrator
        from scenarist.storage.redis.store import RedisStore

        store = await RedisStore.open(url)
        return cls(Orchestrator(store, load_catalog(None)))

    async def lease(
        self, services: Sequence[str], max_tasks: int, done: Sequence[Leased]
    ) -> list[Leased]:
        if done:
            await self.complete(done)
        tasks = await self._orchestrator.lease(
            services, max_tasks=max_tasks, lease_seconds=LEASE_SECONDS, wait_seconds=WAIT_SECONDS
        )
        return [Leased(t.id, t.name, t.payload["topic"], t.lease_token) for t in tasks]

    async def complete(self, tasks: Sequence[Leased]) -> None:
        from scenarist.service.orchestrator import CompletionItem

        items = [CompletionItem(t.id, t.lease_token, None) for t in tasks]
        outcomes = await self._orchestrator.complete_many(items)
        refused = [o for o in outcomes if isinstance(o, Exception)]
        if refused:
            raise RuntimeError(f"batch completion refused: {refused[:3]}")

    async def submit(self, benchmark_id: str, slides: int) -> None:
        params = {"description": benchmark_id, "slides_count": slides}
        await self._orchestrator.submit(TEMPLATE, params)

    async def submit_many(self, workload: Workload, submitted: dict[str, int]) -> None:
        from scenarist.service.submission import Submission, SubmitRequest

        for batch in batches(list(workload.scenario_ids()), BULK_SIZE):
            submitted.update(dict.fromkeys(batch, time.time_ns()))
            requests = [
                SubmitRequest(TEMPLATE, {"description": i, "slides_count": workload.slides})
                for i in batch
            ]
            outcomes = await self._orchestrator.submit_many(requests)
            refused = [o for o in outcomes if not isinstance(o, Submission)]
            if refused:
                raise RuntimeError(f"bulk submission refused: {refused[:3]}")

    async def close(self) -> None:
        await self._orchestrator.store.close()


async def open_backend(mode: str) -> Backend:
    if mode == "http":
        return HttpBackend(os.environ[API_URL_ENV])
    return await InProcessBackend.open(redis_url())


def _check_outcomes(outcomes: list[dict[str, Any]]) -> None:
    refused = [o for o in outcomes if not o["ok"]]
    if refused:
        raise RuntimeError(f"batch completion refused: {refused[:3]}")


async def worker_loop(backend: Backend, batch: int, stop: asyncio.Event) -> None:
    """Each round reports the batch just run and leases the next one in the same call."""
    done: list[Leased] = []
    while not stop.is_set():
        leased = await backend.lease(SERVICES, batch, done)
        for task in leased:
            run_noop_task(task.name, task.benchmark_id)
        done = leased
    if done:
        await backend.complete(done)


async def run_worker(mode: str) -> None:
    batch = int(os.environ.get(BATCH_ENV, DEFAULT_BATCH))
    backend = await open_backend(mode)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    loops = [asyncio.create_task(worker_loop(backend, batch, stop))]
    mark_worker_ready()
    try:
        await asyncio.wait(
            [asyncio.create_task(stop.wait()), *loops], return_when=asyncio.FIRST_COMPLETED
        )
        for loop in loops:
            if loop.done() and loop.exception() is not None:
                raise loop.exception()  # type: ignore[misc]
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await backend.close()


async def submit_all(mode: str, workload: Workload, submitter: str) -> dict[str, int]:
    """Every scenario through `submitter` (scenarist_submitters.py); in process, `bulk`
    is Orchestrator.submit_many per BULK_SIZE and anything else one awaited submit after
    another."""
    if mode == "http":
        url = os.environ[API_URL_ENV]
        if submitter == "httpx":
            return submit_httpx(url, workload)
        if submitter == "httpx-8":
            return submit_httpx(url, workload, threads=THREADS)
        if submitter == "bulk":
            return await submit_bulk(url, workload)
        return await submit_sdk(url, workload)
    backend = await InProcessBackend.open(redis_url())
    submitted: dict[str, int] = {}
    try:
        if submitter == "bulk":
            await backend.submit_many(workload, submitted)
        else:
            for benchmark_id in workload.scenario_ids():
                submitted[benchmark_id] = time.time_ns()
                await backend.submit(benchmark_id, workload.slides)
    finally:
        await backend.close()
    return submitted


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run one worker process until SIGTERM")
    worker.add_argument("--mode", choices=["http", "inproc"], required=True)
    submit = commands.add_parser("submit", help="submit every scenario and exit")
    submit.add_argument("--mode", choices=["http", "inproc"], required=True)
    submit.add_argument("--scenarios", type=int, required=True)
    submit.add_argument("--slides", type=int, required=True)
    submit.add_argument("--out", type=Path, required=True)
    submit.add_argument("--submitter", choices=SUBMITTERS, default="sdk")
    args = parser.parse_args(argv)
    if args.command == "worker":
        asyncio.run(run_worker(args.mode))
        return
    workload = Workload(scenarios=args.scenarios, slides=args.slides)
    write_submitted(args.out, asyncio.run(submit_all(args.mode, workload, args.submitter)))


if __name__ == "__main__":
    main()
