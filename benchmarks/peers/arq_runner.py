"""arq peer: arq has no dependency mechanism, so each job enqueues what it unblocks, the
pattern arq's users write by hand:

- `script` enqueues `voice` and every `slide_prompt_i`; `slide_prompt_i` enqueues
  `slide_image_i`;
- `voice` and every `slide_image_i` INCR a per-scenario counter in the same Redis; the one
  that brings it to K + 1 enqueues `video` (the fan-in).

Each worker is one process running `arq.Worker` with `max_jobs=--concurrency`. arq polls
its queue instead of blocking on it; its 0.5 s default `poll_delay` is an idle-CPU setting
that would dominate every dispatch here, so it is lowered to 10 ms (the only non-default).
Results are kept for arq's default hour, like the other peers' job records.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from arq import Worker, create_pool
from arq.connections import RedisSettings
from benchmarks.harness.records import mark_worker_ready, run_noop_task
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE, Workload, slide_image, slide_prompt
from benchmarks.peers.runner_cli import concurrency, main, redis_url, submit_timed_async

_POLL_DELAY_S = 0.01
_FAN_IN_KEY = "bench:fan-in:{scenario_id}"


def successors(name: str, slides: int) -> list[str]:
    if name == SCRIPT:
        return [VOICE, *(slide_prompt(i) for i in range(1, slides + 1))]
    if name.startswith("slide_prompt_"):
        return [slide_image(int(name.rpartition("_")[2]))]
    return []


async def step(ctx: dict[str, Any], scenario_id: str, name: str, slides: int) -> None:
    run_noop_task(name, scenario_id)
    redis = ctx["redis"]
    for successor in successors(name, slides):
        await redis.enqueue_job("step", scenario_id, successor, slides)
    if name == VOICE or name.startswith("slide_image_"):
        arrived = await redis.incr(_FAN_IN_KEY.format(scenario_id=scenario_id))
        if arrived == slides + 1:
            await redis.enqueue_job("step", scenario_id, VIDEO, slides)


async def _announce_ready(_ctx: dict[str, Any]) -> None:
    mark_worker_ready()


def run_worker() -> None:
    worker = Worker(
        functions=[step],
        redis_settings=RedisSettings.from_dsn(redis_url()),
        max_jobs=concurrency(),
        poll_delay=_POLL_DELAY_S,
        on_startup=_announce_ready,
    )
    worker.run()


async def _submit(workload: Workload) -> dict[str, int]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url()))
    submitted = await submit_timed_async(
        workload, lambda scenario_id: pool.enqueue_job("step", scenario_id, SCRIPT, workload.slides)
    )
    await pool.aclose()
    return submitted


def submit_all(workload: Workload) -> dict[str, int]:
    return asyncio.run(_submit(workload))


if __name__ == "__main__":
    main(sys.argv[1:], run_worker, submit_all)
