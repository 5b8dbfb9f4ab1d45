"""The affinity section's image pool: AffinityPlan.workers SDK `Worker`s of one slot
each, in one process, each with its own worker id, labels and loaded model.

A task whose `model` (payload) is not the loaded one first sleeps the plan's load time,
then the worker sets its label `model` to it (`Worker.set_labels`: the next lease sends
it). Every task appends one JSON line to the plan's log with a single `os.write` on an
O_APPEND descriptor (as the execution records): worker, scenario, task, model, the model
loaded before, warm or not, and when it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

from benchmarks.farm.affinity import AffinityPlan, model_of
from benchmarks.farm.spec import IMAGE, run_farm_task_async
from benchmarks.harness.records import mark_worker_ready

from scenarist.worker import Worker, WorkerTask


def append_line(descriptor: int, entry: dict[str, object]) -> None:
    os.write(descriptor, (json.dumps(entry) + "\n").encode())


def image_worker(url: str, number: int, plan: AffinityPlan, scale: float, log: int) -> Worker:
    """Worker `number` (0-based), starting with model `number` loaded."""
    loaded = {"model": model_of(number, plan.models)}
    worker = Worker(
        url,
        concurrency=1,
        wait_seconds=5.0,
        worker_id=f"farm-image-{number + 1}-{os.getpid()}",
        labels={"pool": IMAGE, "model": loaded["model"]},
    )

    @worker.handler(IMAGE)
    async def run(task: WorkerTask) -> None:
        model, before = task.payload["model"], loaded["model"]
        started_ns = time.time_ns()
        if model != before:
            await asyncio.sleep(plan.load_s)  # the simulated model load
            loaded["model"] = model
            worker.set_labels({"pool": IMAGE, "model": model})
        entry = {"worker": worker.worker_id, "scenario": task.payload["topic"],
                 "task": task.name, "model": model, "before": before,
                 "warm": model == before, "start_ns": started_ns}  # fmt: skip
        append_line(log, entry)
        await run_farm_task_async(task.name, task.payload["topic"], scale)

    return worker


async def serve_image_pool(url: str, plan: AffinityPlan, scale: float) -> None:
    log = os.open(plan.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    workers = [image_worker(url, n, plan, scale, log) for n in range(plan.workers)]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: [w.stop() for w in workers])
    mark_worker_ready()
    try:
        await asyncio.gather(*(w.run_async(install_signal_handlers=False) for w in workers))
    finally:
        os.close(log)


def run_image_pool(url: str, plan: AffinityPlan, scale: float) -> None:
    asyncio.run(serve_image_pool(url, plan, scale))
