"""What one farm run measured, from its execution records and submit times, and the
medians and spreads over repetitions.

- makespan: first submit to the end of the last task; against its lower bound (the
  busiest pool's work divided by its slots, and the critical path: spec.py);
- time to video: per scenario, its submit to the end of its `video` (the moment the
  customer has the file): mean, p95, and the first one;
- utilisation: per pool, the summed task durations over slots x makespan.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from benchmarks.farm.spec import (
    SERVICES,
    SLOTS,
    flow_bound_seconds,
    makespan_lower_bound,
    service_of,
)
from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.workload import VIDEO, Workload

NS = 1e9


@dataclass(frozen=True)
class FarmRun:
    system: str
    repetition: int
    makespan_s: float
    pool_bound_s: float
    critical_path_s: float
    flow_bound_s: float  # with each pool's head and tail (spec.flow_bound_seconds)
    ttv_mean_s: float
    ttv_p95_s: float
    first_video_s: float
    utilisation: dict[str, float]

    @property
    def bound_s(self) -> float:
        return max(self.pool_bound_s, self.critical_path_s)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "bound_s": self.bound_s}


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def measure(
    system: str,
    repetition: int,
    *,
    workload: Workload,
    scale: float,
    submitted: Mapping[str, int],
    records: Sequence[ExecutionRecord],
) -> FarmRun:
    start_ns = min(submitted.values())
    end_ns = max(r.end_ns for r in records)
    makespan = (end_ns - start_ns) / NS
    videos = {r.scenario_id: r.end_ns for r in records if r.name == VIDEO}
    ttv = [(videos[sid] - submitted[sid]) / NS for sid in workload.scenario_ids()]
    busy = dict.fromkeys(SERVICES, 0.0)
    for record in records:
        busy[service_of(record.name)] += (record.end_ns - record.start_ns) / NS
    pool_bound, critical = makespan_lower_bound(workload.parents_of(), workload.scenarios, scale)
    return FarmRun(
        system=system,
        repetition=repetition,
        makespan_s=makespan,
        pool_bound_s=pool_bound,
        critical_path_s=critical,
        flow_bound_s=flow_bound_seconds(workload.parents_of(), workload.scenarios, scale),
        ttv_mean_s=statistics.fmean(ttv),
        ttv_p95_s=p95(ttv),
        first_video_s=min(ttv),
        utilisation={s: busy[s] / (SLOTS[s] * makespan) for s in SERVICES},
    )


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def show(self, unit: str = "s", digits: int = 2) -> str:
        if self.low == self.high:
            return f"{self.median:.{digits}f} {unit}".rstrip()
        return f"{self.median:.{digits}f} {unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"


@dataclass(frozen=True)
class FarmSummary:
    system: str
    runs: int
    makespan: Spread
    over_bound: Spread  # makespan / bound
    over_flow_bound: Spread  # makespan / flow bound
    ttv_mean: Spread
    ttv_p95: Spread
    first_video: Spread
    utilisation: dict[str, float]  # medians


def summarise(system: str, runs: Sequence[FarmRun]) -> FarmSummary:
    return FarmSummary(
        system=system,
        runs=len(runs),
        makespan=Spread.of([r.makespan_s for r in runs]),
        over_bound=Spread.of([r.makespan_s / r.bound_s for r in runs]),
        over_flow_bound=Spread.of([r.makespan_s / r.flow_bound_s for r in runs]),
        ttv_mean=Spread.of([r.ttv_mean_s for r in runs]),
        ttv_p95=Spread.of([r.ttv_p95_s for r in runs]),
        first_video=Spread.of([r.first_video_s for r in runs]),
        utilisation={s: statistics.median(r.utilisation[s] for r in runs) for s in SERVICES},
    )


def farm_table(summaries: Sequence[FarmSummary], bound_s: float, flow_bound_s: float) -> str:
    """Markdown, one row per system: medians with (min-max) over the repetitions."""
    pools = " / ".join(s.split("-")[0] for s in SERVICES)
    lines = [
        f"| system | runs | makespan | x bound ({bound_s:.2f} s) "
        f"| x flow bound ({flow_bound_s:.2f} s) | mean time to video "
        f"| p95 time to video | first video | utilisation {pools} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        used = " / ".join(f"{100 * s.utilisation[p]:.0f}%" for p in SERVICES)
        lines.append(
            f"| {s.system} | {s.runs} | {s.makespan.show()} | {s.over_bound.show('x')} "
            f"| {s.over_flow_bound.show('x')} "
            f"| {s.ttv_mean.show()} | {s.ttv_p95.show()} | {s.first_video.show()} | {used} |"
        )
    return "\n".join(lines)
