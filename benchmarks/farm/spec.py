"""The simulated GPU farm: which service each task runs on, how long it takes, how many
slots each service's pool has, and the bounds no scheduler can beat.

Every system runs the same CreateVideo graph (harness/workload.py) on the same pools:

    service         tasks                 duration (x scale)   slots
    text-service    script, slide_prompt  30 ms, 15 ms          2
    audio-service   voice                 60 ms                 1
    image-service   slide_image           80 ms                 2
    video-service   video                 120 ms                1

A task body sleeps its duration (the GPU or paid API at work: the process is idle
meanwhile) and appends one execution record (harness/records.py) with its start and end.

Standard library only: the peer runners import this inside their own virtualenvs.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping

from benchmarks.harness.records import ExecutionRecord, write_record
from benchmarks.harness.workload import SCRIPT, VIDEO, VOICE

TEXT, AUDIO, IMAGE, VIDEO_SERVICE = (
    "text-service",
    "audio-service",
    "image-service",
    "video-service",
)
SERVICES = (TEXT, AUDIO, IMAGE, VIDEO_SERVICE)
SLOTS: Mapping[str, int] = {TEXT: 2, AUDIO: 1, IMAGE: 2, VIDEO_SERVICE: 1}
# Milliseconds at scale 1, by the task name's kind.
DURATION_MS: Mapping[str, float] = {
    SCRIPT: 30.0,
    VOICE: 60.0,
    "slide_prompt": 15.0,
    "slide_image": 80.0,
    VIDEO: 120.0,
}
SERVICE_OF_KIND: Mapping[str, str] = {
    SCRIPT: TEXT,
    VOICE: AUDIO,
    "slide_prompt": TEXT,
    "slide_image": IMAGE,
    VIDEO: VIDEO_SERVICE,
}

SCALE_ENV = "BENCH_FARM_SCALE"
SERVICE_ENV = "BENCH_FARM_SERVICE"
SLOTS_ENV = "BENCH_FARM_SLOTS"  # JSON {service: slots} over SLOTS (the caps section's pools)


def kind(name: str) -> str:
    """`slide_image_3` -> `slide_image`; `voice` -> `voice`."""
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def service_of(name: str) -> str:
    return SERVICE_OF_KIND[kind(name)]


def seconds_of(name: str, scale: float) -> float:
    return DURATION_MS[kind(name)] * scale / 1000.0


def scale_from_env() -> float:
    return float(os.environ.get(SCALE_ENV, "1"))


def slots_from_env() -> dict[str, int]:
    return {**SLOTS, **json.loads(os.environ.get(SLOTS_ENV, "{}"))}


def service_from_env() -> str:
    service = os.environ.get(SERVICE_ENV, "")
    if service not in SERVICES:
        raise RuntimeError(f"{SERVICE_ENV} must be one of {SERVICES}, got {service!r}")
    return service


def run_farm_task(name: str, scenario_id: str, scale: float) -> None:
    """A synchronous task body: sleep the task's duration, then record it."""
    start_ns = time.time_ns()
    time.sleep(seconds_of(name, scale))
    write_record(ExecutionRecord(name, scenario_id, start_ns, time.time_ns()))


async def run_farm_task_async(name: str, scenario_id: str, scale: float) -> None:
    """The asyncio task body: the same, without blocking the event loop."""
    start_ns = time.time_ns()
    await asyncio.sleep(seconds_of(name, scale))
    write_record(ExecutionRecord(name, scenario_id, start_ns, time.time_ns()))


def pool_work_seconds(
    parents: Mapping[str, tuple[str, ...]], scenarios: int, scale: float
) -> dict[str, float]:
    """Each pool's total busy time for `scenarios` scenarios of the graph `parents`."""
    work = dict.fromkeys(SERVICES, 0.0)
    for name in parents:
        work[service_of(name)] += seconds_of(name, scale) * scenarios
    return work


def critical_path_seconds(parents: Mapping[str, tuple[str, ...]], scale: float) -> float:
    """The longest chain of durations through the graph (one scenario alone, no queueing)."""
    finish: dict[str, float] = {}
    for name in parents:  # parents come before their children in the workload's order
        start = max((finish[p] for p in parents[name]), default=0.0)
        finish[name] = start + seconds_of(name, scale)
    return max(finish.values())


def makespan_lower_bound(
    parents: Mapping[str, tuple[str, ...]], scenarios: int, scale: float
) -> tuple[float, float]:
    """(busiest pool's work / its slots, critical path): no schedule finishes before
    either (the larger one is the bound)."""
    work = pool_work_seconds(parents, scenarios, scale)
    busiest = max(work[s] / SLOTS[s] for s in SERVICES)
    return busiest, critical_path_seconds(parents, scale)


def flow_bound_seconds(
    parents: Mapping[str, tuple[str, ...]], scenarios: int, scale: float
) -> float:
    """A tighter bound no schedule can beat either: a pool cannot start before the
    shortest chain leading to any of its tasks (head), needs its work over its slots, and
    its last task is followed by at least the shortest chain below any of its tasks
    (tail). The video pool, as loaded as the image pool here, cannot start before the
    first scenario's script, prompt and image are done: the busiest pool alone ignores it."""
    start: dict[str, float] = {}
    for name in parents:  # parents come before their children in the workload's order
        start[name] = max((start[p] + seconds_of(p, scale) for p in parents[name]), default=0.0)
    after: dict[str, float] = dict.fromkeys(parents, 0.0)
    for name in reversed(list(parents)):
        for parent in parents[name]:
            after[parent] = max(after[parent], seconds_of(name, scale) + after[name])
    work = pool_work_seconds(parents, scenarios, scale)
    bounds = [critical_path_seconds(parents, scale)]
    for service in SERVICES:
        tasks = [name for name in parents if service_of(name) == service]
        if tasks:
            head = min(start[name] for name in tasks)
            tail = min(after[name] for name in tasks)
            bounds.append(head + work[service] / SLOTS[service] + tail)
    return max(bounds)
