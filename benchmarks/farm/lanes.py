"""The farm's lanes section: one interactive CreateVideo submitted while a flood of
batch-lane scenarios keeps every pool busy, against the same scenario on an idle farm.

Three runs per repetition, scenarist alone (decision 77):
- `alone`: the one scenario on an idle farm, its time to video the reference;
- `lanes`: FLOOD scenarios in the batch lane, then, DELAY later (a quarter of the way
  through the video pool's work), the one scenario in the interactive lane;
- `no lanes`: the same flood and late scenario, all in the normal lane: what the late
  scenario would wait without lanes (the level order still lets it pass the flood's
  roots, not their deeper tasks).

The late scenario is the workload's last id; its time to video runs from its own submit
to the end of its video, as the farm section measures every scenario. The lanes are not
preemptive: a task already running finishes, so the late scenario can wait, at each of its
stages, for one running task of the flood per slot.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.farm.late import against_alone, submit_flood
from benchmarks.farm.spec import DURATION_MS
from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.workload import VIDEO, Workload

LANES_ENV = "BENCH_FARM_LANES"  # JSON LanePlan: how the submitter splits the workload
NS = 1e9


@dataclass(frozen=True)
class LanePlan:
    """Every scenario but the last in `flood`'s lane at once (in bulk), then after
    `delay_s` the last one in `late`'s lane."""

    flood: str
    late: str
    delay_s: float

    def to_env(self) -> str:
        return json.dumps({"flood": self.flood, "late": self.late, "delay_s": self.delay_s})

    @classmethod
    def from_env(cls) -> LanePlan | None:
        raw = os.environ.get(LANES_ENV)
        return None if raw is None else cls(**json.loads(raw))


# (name, plan, scenarios in the run): the flood's runs carry `flood` + 1 scenarios.
RUNS = ("alone", "lanes", "no lanes")


def run_plans(flood: int, scale: float) -> dict[str, tuple[LanePlan, int]]:
    delay_s = 0.25 * flood * DURATION_MS[VIDEO] * scale / 1000.0  # video: the busiest pool
    return {
        "alone": (LanePlan("normal", "interactive", 0.0), 1),
        "lanes": (LanePlan("batch", "interactive", delay_s), flood + 1),
        "no lanes": (LanePlan("normal", "normal", delay_s), flood + 1),
    }


async def submit_in_lanes(url: str, workload: Workload, plan: LanePlan) -> dict[str, int]:
    """The flood in bulk in its lane, then the late one alone (POST /generate), stamped
    just before its request."""
    from benchmarks.systems.scenarist_submitters import TEMPLATE, params

    from scenarist.worker.client import AsyncScenaristClient

    *flood, late = workload.scenario_ids()
    async with AsyncScenaristClient(url, max_connections=1) as client:
        submitted = await submit_flood(client, flood, workload.slides, priority=plan.flood)
        await asyncio.sleep(plan.delay_s)
        submitted[late] = time.time_ns()
        await client.submit(TEMPLATE, params(late, workload.slides), priority=plan.late)
    return submitted


def late_time_to_video(
    workload: Workload, submitted: Mapping[str, int], records: Sequence[ExecutionRecord]
) -> float:
    late = workload.scenario_ids()[-1]
    [end_ns] = [r.end_ns for r in records if r.scenario_id == late and r.name == VIDEO]
    return (end_ns - submitted[late]) / NS


def lanes_table(rows: Sequence[Mapping[str, float]]) -> str:
    """Markdown: the late scenario's time to video per run kind against alone."""
    return against_alone(rows, RUNS, "late scenario's time to video")
