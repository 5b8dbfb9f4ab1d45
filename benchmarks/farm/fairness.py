"""The farm's fairness section: tenant A floods the farm, tenant B submits a few scenarios
a moment later (decision 79).

Three runs per repetition, scenarist alone:
- `alone`: B's LATE scenarios on an idle farm, their p95 time to video the reference;
- `tenants`: FLOOD scenarios of tenant A at once (in bulk), then, DELAY later (a quarter
  of the way through the video pool's work), B's LATE scenarios; the catalog names both
  tenants with weight 1;
- `no tenants`: the same flood and late scenarios with a catalog without `tenants:`, all
  in the default tenant: what B would wait without fair share (the level order still
  lets B's roots pass the flood's, not its deeper tasks).

B's scenarios are the workload's last LATE ids; each one's time to video runs from its own
submit to the end of its video, as the farm section measures every scenario.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from benchmarks.farm.late import against_alone, submit_flood
from benchmarks.farm.spec import DURATION_MS
from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.workload import VIDEO, Workload

import scenarist

FAIRNESS_ENV = "BENCH_FARM_FAIRNESS"  # JSON TenantPlan: how the submitter splits the work
NS = 1e9
LATE = 5
RUNS = ("alone", "tenants", "no tenants")
TENANTS = {"a": {"weight": 1}, "b": {"weight": 1}}


@dataclass(frozen=True)
class TenantPlan:
    """All but the last `late` scenarios as tenant `flood` at once (None: no tenant
    named), then after `delay_s` the last `late` ones as tenant `late_tenant`."""

    flood: str | None
    late_tenant: str | None
    late: int
    delay_s: float

    def to_env(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_env(cls) -> TenantPlan | None:
        raw = os.environ.get(FAIRNESS_ENV)
        return None if raw is None else cls(**json.loads(raw))


def run_plans(flood: int, scale: float) -> dict[str, tuple[TenantPlan, int, bool]]:
    """Per run: its plan, the scenarios in it and whether its catalog has tenants."""
    delay_s = 0.25 * flood * DURATION_MS[VIDEO] * scale / 1000.0  # video: the busiest pool
    return {
        "alone": (TenantPlan("a", "b", LATE, 0.0), LATE, True),
        "tenants": (TenantPlan("a", "b", LATE, delay_s), flood + LATE, True),
        "no tenants": (TenantPlan(None, None, LATE, delay_s), flood + LATE, False),
    }


def write_catalog(path: Path, *, tenants: bool) -> Path:
    """The packaged catalog, with `tenants:` for the runs that share by tenant."""
    packaged = Path(scenarist.__file__).parent / "scenarios.yml"
    catalog = yaml.safe_load(packaged.read_text())
    if tenants:
        catalog = {"tenants": TENANTS, **catalog}
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return path


async def submit_by_tenant(url: str, workload: Workload, plan: TenantPlan) -> dict[str, int]:
    """The flood in bulk as its tenant, then the late ones one by one (POST /generate),
    each stamped just before its request."""
    from benchmarks.systems.scenarist_submitters import TEMPLATE, params

    from scenarist.worker.client import AsyncScenaristClient

    ids = workload.scenario_ids()
    flood, late = ids[: -plan.late], ids[-plan.late :]
    async with AsyncScenaristClient(url, max_connections=1) as client:
        submitted = await submit_flood(client, flood, workload.slides, tenant=plan.flood)
        await asyncio.sleep(plan.delay_s)
        for i in late:
            submitted[i] = time.time_ns()
            await client.submit(TEMPLATE, params(i, workload.slides), tenant=plan.late_tenant)
    return submitted


def late_p95(
    workload: Workload, submitted: Mapping[str, int], records: Sequence[ExecutionRecord]
) -> float:
    """The p95 (nearest rank) of the late scenarios' times to video, in seconds."""
    late = set(workload.scenario_ids()[-LATE:])
    times = sorted(
        (r.end_ns - submitted[r.scenario_id]) / NS
        for r in records
        if r.scenario_id in late and r.name == VIDEO
    )
    if len(times) != len(late):
        raise RuntimeError(f"{len(times)} of {len(late)} late videos were recorded")
    return times[max(0, math.ceil(0.95 * len(times)) - 1)]


def fairness_table(rows: Sequence[Mapping[str, float]]) -> str:
    """Markdown: B's p95 time to video per run kind against alone."""
    return against_alone(rows, RUNS, "B's p95 time to video")
