"""scenarist on the farm: one SDK `Worker` process per service with that pool's slots
(`concurrency`), against a `scenarist serve` process on the run's Redis.

    python -m benchmarks.farm.scenarist_farm worker      # BENCH_FARM_SERVICE picks the pool
    python -m benchmarks.farm.scenarist_farm submit --scenarios N --slides K --out FILE

The worker is the SDK's own `Worker` as a user would write it (async handler, default
batching and heartbeats), named after its pool and labelled with it. Scenarios go in with
`POST /generate/batch`, BULK_SIZE per request (the peers use their bulk APIs too). In the
affinity section's runs the image pool is benchmarks/farm/affinity_worker.py instead.
"""

from __future__ import annotations

import asyncio
import os
import sys

from benchmarks.farm.affinity import AffinityPlan, submit_with_models
from benchmarks.farm.affinity_worker import run_image_pool
from benchmarks.farm.fairness import TenantPlan, submit_by_tenant
from benchmarks.farm.lanes import LanePlan, submit_in_lanes
from benchmarks.farm.spec import (
    IMAGE,
    run_farm_task_async,
    scale_from_env,
    service_from_env,
    slots_from_env,
)
from benchmarks.harness.records import mark_worker_ready
from benchmarks.harness.workload import Workload
from benchmarks.peers.runner_cli import main
from benchmarks.systems.scenarist_runner import API_URL_ENV
from benchmarks.systems.scenarist_submitters import submit_bulk

from scenarist.worker import Worker, WorkerTask

WAIT_SECONDS = 5.0  # the long poll answers as soon as a task is ready


def run_worker() -> None:
    service, scale = service_from_env(), scale_from_env()
    affinity = AffinityPlan.from_env()  # the affinity section's runs: one-slot image workers
    if affinity is not None and service == IMAGE:
        run_image_pool(os.environ[API_URL_ENV], affinity, scale)
        return
    worker = Worker(
        os.environ[API_URL_ENV],
        concurrency=slots_from_env()[service],
        wait_seconds=WAIT_SECONDS,
        worker_id=f"farm-{service}-{os.getpid()}",
        labels={"pool": service},
    )

    @worker.handler(service)
    async def run(task: WorkerTask) -> None:
        await run_farm_task_async(task.name, task.payload["topic"], scale)

    mark_worker_ready()
    worker.run()


def submit_all(workload: Workload) -> dict[str, int]:
    lanes = LanePlan.from_env()  # the lanes section's runs
    if lanes is not None:
        return asyncio.run(submit_in_lanes(os.environ[API_URL_ENV], workload, lanes))
    tenants = TenantPlan.from_env()  # the fairness section's runs
    if tenants is not None:
        return asyncio.run(submit_by_tenant(os.environ[API_URL_ENV], workload, tenants))
    affinity = AffinityPlan.from_env()  # the affinity section's runs: a model per scenario
    if affinity is not None:
        return asyncio.run(submit_with_models(os.environ[API_URL_ENV], workload, affinity.models))
    return asyncio.run(submit_bulk(os.environ[API_URL_ENV], workload))


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
