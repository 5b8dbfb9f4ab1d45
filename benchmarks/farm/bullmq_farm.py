"""BullMQ on the farm: the flow of bullmq_runner.py with every node on its service's
queue, one worker process per service with one `bullmq.Worker` of the pool's slots.

`script` is a plain job on the text queue whose processor adds the rest of the flow once
its body has recorded (a flow node cannot have several dependents); every other edge is
BullMQ's own parent/child release. Every other setting is BullMQ's default.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from benchmarks.farm.spec import (
    SLOTS,
    TEXT,
    run_farm_task_async,
    scale_from_env,
    service_from_env,
    service_of,
)
from benchmarks.harness.records import mark_worker_ready
from benchmarks.harness.workload import SCRIPT, Workload
from benchmarks.peers.bullmq_runner import fan_out_flow
from benchmarks.peers.runner_cli import main, redis_url, submit_batches_timed_async
from bullmq import FlowProducer, Queue, Worker


async def _serve() -> None:
    service, scale = service_from_env(), scale_from_env()
    flows = FlowProducer({"connection": redis_url()})

    async def process(job: Any, _token: str) -> None:
        await run_farm_task_async(job.name, job.data["sid"], scale)
        if job.name == SCRIPT:
            await flows.add(fan_out_flow(job.data["sid"], job.data["slides"], service_of))

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    worker = Worker(service, process, {"connection": redis_url(), "concurrency": SLOTS[service]})
    mark_worker_ready()
    await stopping.wait()
    await worker.close()
    await flows.close()


async def _submit(workload: Workload) -> dict[str, int]:
    queue = Queue(TEXT, {"connection": redis_url()})
    root = {"slides": workload.slides}
    submitted = await submit_batches_timed_async(
        workload,
        lambda ids: queue.addBulk([{"name": SCRIPT, "data": {**root, "sid": i}} for i in ids]),
    )
    await queue.close()
    return submitted


def run_worker() -> None:
    asyncio.run(_serve())


def submit_all(workload: Workload) -> dict[str, int]:
    return asyncio.run(_submit(workload))


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
