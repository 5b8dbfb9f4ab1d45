"""RQ peer: every task is its own job; dependencies are `depends_on=[...]` job lists, so
the fan-in job `video` lists voice and every slide image.

Workers are `SimpleWorker`s: RQ's default `Worker` forks a fresh work-horse process per job,
which would make this a benchmark of fork(); `SimpleWorker` is RQ's documented in-process
alternative and its fastest. RQ runs one job at a time per process, so --concurrency does
not apply to it. Every other setting is the default.
"""

from __future__ import annotations

import sys

from benchmarks.harness.records import mark_worker_ready, run_noop_task
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE, Workload, slide_image, slide_prompt
from benchmarks.peers.runner_cli import QUEUE_NAME, main, redis_url, submit_timed
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job


def noop(scenario_id: str, name: str) -> None:
    run_noop_task(name, scenario_id)


_NOOP = "benchmarks.peers.rq_runner.noop"


def enqueue_scenario(queue: Queue, scenario_id: str, slides: int) -> None:
    script = queue.enqueue(_NOOP, scenario_id, SCRIPT)
    voice = queue.enqueue(_NOOP, scenario_id, VOICE, depends_on=[script])
    images: list[Job] = []
    for i in range(1, slides + 1):
        prompt = queue.enqueue(_NOOP, scenario_id, slide_prompt(i), depends_on=[script])
        images.append(queue.enqueue(_NOOP, scenario_id, slide_image(i), depends_on=[prompt]))
    queue.enqueue(_NOOP, scenario_id, VIDEO, depends_on=[voice, *images])


def run_worker() -> None:
    connection = Redis.from_url(redis_url())
    worker = SimpleWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
    mark_worker_ready()
    worker.work(logging_level="WARNING")


def submit_all(workload: Workload) -> dict[str, int]:
    queue = Queue(QUEUE_NAME, connection=Redis.from_url(redis_url()))
    return submit_timed(
        workload, lambda scenario_id: enqueue_scenario(queue, scenario_id, workload.slides)
    )


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
