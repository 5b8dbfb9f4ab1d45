"""Celery on the farm: the scenario canvas of celery_runner.py with every task routed to
its service's queue, one worker process per service consuming only that queue with the
pool's slots (`solo` for one slot, `threads` above).

Broker and result backend are the run's Redis (the chord counter needs a backend); every
other setting is Celery's default, `--without-mingle` aside (a start-up exchange).
"""

from __future__ import annotations

import os
import sys

from benchmarks.farm.spec import SLOTS, run_farm_task, scale_from_env, service_from_env, service_of
from benchmarks.harness.records import mark_worker_ready
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE, Workload, slide_image, slide_prompt
from benchmarks.peers.runner_cli import main, redis_url, submit_batches_timed
from celery import Celery, chain, group
from celery.canvas import Signature
from celery.signals import worker_ready

app = Celery("farm", broker=redis_url(), backend=redis_url())
SCALE = scale_from_env()


@app.task(name="farm.run")
def run(scenario_id: str, name: str) -> None:
    run_farm_task(name, scenario_id, SCALE)


@worker_ready.connect
def _announce_ready(**_: object) -> None:
    mark_worker_ready()


def step(scenario_id: str, name: str) -> Signature:
    return run.si(scenario_id, name).set(queue=service_of(name))


def scenario_canvas(scenario_id: str, slides: int) -> chain:
    branches = [step(scenario_id, VOICE)]
    branches.extend(
        chain(step(scenario_id, slide_prompt(i)), step(scenario_id, slide_image(i)))
        for i in range(1, slides + 1)
    )
    return chain(step(scenario_id, SCRIPT), group(branches), step(scenario_id, VIDEO))


def run_worker() -> None:
    service = service_from_env()
    slots = SLOTS[service]
    app.worker_main(
        [
            "worker",
            f"--pool={'solo' if slots == 1 else 'threads'}",
            f"--concurrency={slots}",
            f"--hostname=farm-{service}-{os.getpid()}@%h",
            f"--queues={service}",
            "--loglevel=WARNING",
            "--without-mingle",
        ]
    )


def submit_all(workload: Workload) -> dict[str, int]:
    return submit_batches_timed(
        workload,
        lambda ids: group(scenario_canvas(i, workload.slides) for i in ids).apply_async(),
    )


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
