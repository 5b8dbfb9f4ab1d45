"""Numbers derived from execution records and submit times of one verified run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.verify import group_by_scenario
from benchmarks.harness.workload import Workload

_NS_PER_MS = 1_000_000


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation): always a value that was measured."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class TimingMetrics:
    tasks: int
    wall_s: float
    tasks_per_s: float
    makespan_p50_ms: float
    makespan_p99_ms: float
    dispatch_p50_ms: float
    dispatch_p99_ms: float


def makespans_ms(
    submitted: Mapping[str, int], grouped: Mapping[str, Mapping[str, list[ExecutionRecord]]]
) -> list[float]:
    """Per scenario: from its submit call to the end of its last task."""
    spans = []
    for scenario_id, submit_ns in submitted.items():
        ends = [run.end_ns for runs in grouped[scenario_id].values() for run in runs]
        spans.append((max(ends) - submit_ns) / _NS_PER_MS)
    return spans


def dispatch_latencies_ms(
    workload: Workload, grouped: Mapping[str, Mapping[str, list[ExecutionRecord]]]
) -> list[float]:
    """Per task with parents: from the end of its last parent to its own start.

    The last parent is the one that made the task ready; measuring from an earlier parent of
    a fan-in would count the wait for its siblings, which is not dispatch.
    """
    latencies = []
    for executed in grouped.values():
        for child, parents in workload.parents_of().items():
            if not parents:
                continue
            ready_ns = max(executed[parent][0].end_ns for parent in parents)
            latencies.append((executed[child][0].start_ns - ready_ns) / _NS_PER_MS)
    return latencies


def timing_metrics(
    workload: Workload, submitted: Mapping[str, int], records: Iterable[ExecutionRecord]
) -> TimingMetrics:
    """Only meaningful for a run that `verify_run` accepted."""
    record_list = list(records)
    grouped = group_by_scenario(record_list)
    wall_ns = max(record.end_ns for record in record_list) - min(submitted.values())
    wall_s = wall_ns / 1e9
    spans = makespans_ms(submitted, grouped)
    dispatch = dispatch_latencies_ms(workload, grouped)
    return TimingMetrics(
        tasks=len(record_list),
        wall_s=wall_s,
        tasks_per_s=len(record_list) / wall_s,
        makespan_p50_ms=percentile(spans, 0.50),
        makespan_p99_ms=percentile(spans, 0.99),
        dispatch_p50_ms=percentile(dispatch, 0.50),
        dispatch_p99_ms=percentile(dispatch, 0.99),
    )
