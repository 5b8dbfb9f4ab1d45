"""BullMQ peer (the Python `bullmq` package): a `FlowProducer` tree per scenario.

A flow is a tree whose parent runs after all its children, so the fan-in maps onto it
directly: `video` is the parent, its children are `voice` and every `slide_image_i`, and each
`slide_image_i` has its `slide_prompt_i` as its only child. What a tree cannot express is a
node with several dependents (`script` precedes voice and every prompt), so `script` is a
plain job whose processor adds that flow once its body has recorded; the flow-add is
counted in the script -> child dispatch latency, as Dramatiq's group enqueue is. Every other
edge is BullMQ's own parent/child release, so the mapping neither hides nor adds work.

Each worker is one process with one `bullmq.Worker` of `--concurrency`; everything else
(job retention, locks, stalled checks) is BullMQ's default.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.harness.records import mark_worker_ready, run_noop_task
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE, Workload, slide_image, slide_prompt
from benchmarks.peers.runner_cli import (
    QUEUE_NAME,
    bulk_submitter,
    concurrency,
    main,
    redis_url,
    submit_batches_timed_async,
    submit_timed_async,
)
from bullmq import FlowProducer, Queue, Worker


def fan_out_flow(
    scenario_id: str, slides: int, queue_of: Callable[[str], str] = lambda _: QUEUE_NAME
) -> dict[str, Any]:
    """The flow below `script`; `queue_of` puts each task name on its queue (one queue
    for every task here, a queue per service on the farm)."""

    def node(name: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        made: dict[str, Any] = {"name": name, "queueName": queue_of(name)}
        made["data"] = {"sid": scenario_id}
        if children:
            made["children"] = children
        return made

    children = [node(VOICE)]
    children.extend(node(slide_image(i), [node(slide_prompt(i))]) for i in range(1, slides + 1))
    return node(VIDEO, children)


async def _serve() -> None:
    flows = FlowProducer({"connection": redis_url()})

    async def process(job: Any, _token: str) -> None:
        run_noop_task(job.name, job.data["sid"])
        if job.name == SCRIPT:
            await flows.add(fan_out_flow(job.data["sid"], job.data["slides"]))

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    worker = Worker(QUEUE_NAME, process, {"connection": redis_url(), "concurrency": concurrency()})
    mark_worker_ready()
    await stopping.wait()
    await worker.close()
    await flows.close()


async def _submit(workload: Workload) -> dict[str, int]:
    """One `Queue.add` per scenario, or with the bulk submitter one `Queue.addBulk` per
    BULK_SIZE scenarios (the workers add the rest of each flow either way)."""
    queue = Queue(QUEUE_NAME, {"connection": redis_url()})

    def root(scenario_id: str) -> dict[str, Any]:
        return {"sid": scenario_id, "slides": workload.slides}

    if bulk_submitter():
        submitted = await submit_batches_timed_async(
            workload, lambda ids: queue.addBulk([{"name": SCRIPT, "data": root(i)} for i in ids])
        )
    else:
        submitted = await submit_timed_async(
            workload, lambda scenario_id: queue.add(SCRIPT, root(scenario_id))
        )
    await queue.close()
    return submitted


def run_worker() -> None:
    asyncio.run(_serve())


def submit_all(workload: Workload) -> dict[str, int]:
    return asyncio.run(_submit(workload))


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
