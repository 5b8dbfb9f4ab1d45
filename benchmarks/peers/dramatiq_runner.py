"""Dramatiq peer: `group([voice, pipeline([prompt_i, image_i])...])` with
`add_completion_callback(video)` (GroupCallbacks middleware, barrier in the run's Redis).

Dramatiq cannot make a group wait for a message: a pipeline's steps must be messages, and
a group cannot be a pipeline step. So the `script` actor, once its body has recorded, runs
the fan-out group itself; that enqueue is counted in the script -> child dispatch latency.
Pipelines pass no results (`pipe_ignore=True`), so the Results middleware is not needed.

Each worker is one process running `dramatiq.Worker` with `--concurrency` threads; every
other setting (prefetch, polling back-off, default middleware) is Dramatiq's default.
"""

from __future__ import annotations

import signal
import sys
import threading

import dramatiq
from benchmarks.harness.records import mark_worker_ready, run_noop_task
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE, Workload, slide_image, slide_prompt
from benchmarks.peers.runner_cli import QUEUE_NAME, concurrency, main, redis_url, submit_timed
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import GroupCallbacks
from dramatiq.rate_limits.backends import RedisBackend

broker = RedisBroker(url=redis_url())
broker.add_middleware(GroupCallbacks(RedisBackend(url=redis_url())))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE_NAME, actor_name="bench_noop")
def noop(scenario_id: str, name: str) -> None:
    run_noop_task(name, scenario_id)


@dramatiq.actor(queue_name=QUEUE_NAME, actor_name="bench_script")
def script(scenario_id: str, slides: int) -> None:
    run_noop_task(SCRIPT, scenario_id)
    fan_out(scenario_id, slides).run()


def _message(scenario_id: str, name: str) -> dramatiq.Message[None]:
    return noop.message_with_options(args=(scenario_id, name), pipe_ignore=True)


def fan_out(scenario_id: str, slides: int) -> dramatiq.group:
    branches: list[dramatiq.Message[None] | dramatiq.pipeline] = [_message(scenario_id, VOICE)]
    branches.extend(
        dramatiq.pipeline(
            [_message(scenario_id, slide_prompt(i)), _message(scenario_id, slide_image(i))]
        )
        for i in range(1, slides + 1)
    )
    fan_in = dramatiq.group(branches)
    fan_in.add_completion_callback(_message(scenario_id, VIDEO))
    return fan_in


def run_worker() -> None:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    worker = dramatiq.Worker(broker, worker_threads=concurrency())
    worker.start()
    mark_worker_ready()
    stopping.wait()
    worker.stop()


def submit_all(workload: Workload) -> dict[str, int]:
    return submit_timed(workload, lambda scenario_id: script.send(scenario_id, workload.slides))


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
