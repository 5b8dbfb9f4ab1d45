"""Celery peer: the scenario as one canvas, `script | group(voice, chain(prompt_i, image_i)...)
| video`, which Celery turns into a chain whose tail is a chord (group header, video body).

Broker and result backend are the run's Redis (the chord counter needs a result backend).
Each worker is one process with the `solo` pool (concurrency 1) or, with --concurrency > 1,
the `threads` pool, so that the process count equals every other system's. `--without-mingle`
only skips a start-up synchronisation between workers; every other setting is the default.
"""

from __future__ import annotations

import os
import sys

from benchmarks.harness.records import mark_worker_ready, run_noop_task
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE, Workload, slide_image, slide_prompt
from benchmarks.peers.runner_cli import (
    QUEUE_NAME,
    bulk_submitter,
    concurrency,
    main,
    redis_url,
    submit_batches_timed,
    submit_timed,
)
from celery import Celery, chain, group
from celery.signals import worker_ready

app = Celery("bench", broker=redis_url(), backend=redis_url())
app.conf.task_default_queue = QUEUE_NAME


@app.task(name="bench.noop")
def noop(scenario_id: str, name: str) -> None:
    run_noop_task(name, scenario_id)


@worker_ready.connect
def _announce_ready(**_: object) -> None:
    mark_worker_ready()


def scenario_canvas(scenario_id: str, slides: int) -> chain:
    branches = [noop.si(scenario_id, VOICE)]
    branches.extend(
        chain(noop.si(scenario_id, slide_prompt(i)), noop.si(scenario_id, slide_image(i)))
        for i in range(1, slides + 1)
    )
    return chain(noop.si(scenario_id, SCRIPT), group(branches), noop.si(scenario_id, VIDEO))


def run_worker() -> None:
    workers = concurrency()
    pool = "solo" if workers == 1 else "threads"
    app.worker_main(
        [
            "worker",
            f"--pool={pool}",
            f"--concurrency={workers}",
            f"--hostname=bench-{os.getpid()}@%h",
            f"--queues={QUEUE_NAME}",
            "--loglevel=WARNING",
            "--without-mingle",
        ]
    )


def submit_all(workload: Workload) -> dict[str, int]:
    """One `apply_async` per scenario, or with the bulk submitter one `group` of BULK_SIZE
    scenario canvases per `apply_async`."""
    if bulk_submitter():
        return submit_batches_timed(
            workload,
            lambda ids: group(scenario_canvas(i, workload.slides) for i in ids).apply_async(),
        )
    return submit_timed(
        workload, lambda scenario_id: scenario_canvas(scenario_id, workload.slides).apply_async()
    )


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
