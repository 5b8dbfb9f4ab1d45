"""Command line shared by every peer runner, run inside the peer's own virtualenv.

    python -m benchmarks.peers.<peer>_runner worker
    python -m benchmarks.peers.<peer>_runner submit --scenarios N --slides K --out FILE

Settings come from the environment the harness sets, because Celery and Dramatiq bind
their broker when the runner module is imported, before any argument is parsed:
BENCH_REDIS_URL, BENCH_RECORDS_DIR, BENCH_CONCURRENCY. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from benchmarks.harness.workload import Workload

REDIS_URL_ENV = "BENCH_REDIS_URL"
CONCURRENCY_ENV = "BENCH_CONCURRENCY"
SUBMITTER_ENV = "BENCH_SUBMITTER"  # "bulk": a peer with a bulk API submits in batches
BULK_SIZE = 100  # harness.system.BULK_SIZE, repeated: runners import no harness module
QUEUE_NAME = "bench"

SubmitOne = Callable[[str], None]


def redis_url() -> str:
    value = os.environ.get(REDIS_URL_ENV)
    if not value:
        raise RuntimeError(f"{REDIS_URL_ENV} is not set: the harness sets it for every runner")
    return value


def concurrency() -> int:
    return int(os.environ.get(CONCURRENCY_ENV, "1"))


def bulk_submitter() -> bool:
    return os.environ.get(SUBMITTER_ENV) == "bulk"


def submit_batches_timed(
    workload: Workload, submit_batch: Callable[[list[str]], None]
) -> dict[str, int]:
    """BULK_SIZE scenarios per call, each noted at the time its batch was sent."""
    submitted: dict[str, int] = {}
    ids = list(workload.scenario_ids())
    for start in range(0, len(ids), BULK_SIZE):
        batch = ids[start : start + BULK_SIZE]
        submitted.update(dict.fromkeys(batch, time.time_ns()))
        submit_batch(batch)
    return submitted


async def submit_batches_timed_async(
    workload: Workload, submit_batch: Callable[[list[str]], Awaitable[object]]
) -> dict[str, int]:
    """`submit_batches_timed` for asyncio clients."""
    submitted: dict[str, int] = {}
    ids = list(workload.scenario_ids())
    for start in range(0, len(ids), BULK_SIZE):
        batch = ids[start : start + BULK_SIZE]
        submitted.update(dict.fromkeys(batch, time.time_ns()))
        await submit_batch(batch)
    return submitted


def submit_timed(workload: Workload, submit_one: SubmitOne) -> dict[str, int]:
    """Submit scenarios one by one, noting the wall-clock time just before each."""
    submitted = {}
    for scenario_id in workload.scenario_ids():
        submitted[scenario_id] = time.time_ns()
        submit_one(scenario_id)
    return submitted


def write_submitted(path: Path, submitted: dict[str, int]) -> None:
    path.write_text(json.dumps({"submitted": submitted}))


def main(
    argv: Sequence[str] | None,
    run_worker: Callable[[], None],
    submit_all: Callable[[Workload], dict[str, int]],
) -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run one worker process until SIGTERM")
    submit = commands.add_parser("submit", help="submit every scenario and exit")
    submit.add_argument("--scenarios", type=int, required=True)
    submit.add_argument("--slides", type=int, required=True)
    submit.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "worker":
        run_worker()
        return
    submitted = submit_all(Workload(scenarios=args.scenarios, slides=args.slides))
    write_submitted(args.out, submitted)


async def submit_timed_async(
    workload: Workload, submit_one: Callable[[str], Awaitable[object]]
) -> dict[str, int]:
    """`submit_timed` for asyncio clients: each submit is awaited before the next starts."""
    submitted = {}
    for scenario_id in workload.scenario_ids():
        submitted[scenario_id] = time.time_ns()
        await submit_one(scenario_id)
    return submitted
