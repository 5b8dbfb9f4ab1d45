"""Result records: one per run, one summary per system, serialised to JSON as they are."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.harness.metrics import TimingMetrics

_BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True)
class RunResult:
    system: str
    repetition: int
    verified: bool
    timing: TimingMetrics | None
    peak_rss_mb: float | None
    redis_mb: float | None
    problems: tuple[str, ...] = ()
    problem_count: int = 0
    error: str | None = None
    # CPU of the workers, any server and Redis from first submit to last task, per scenario.
    cpu_ms_per_scenario: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def megabytes(value: int) -> float:
    return value / _BYTES_PER_MB


@dataclass(frozen=True)
class SystemSummary:
    """Medians over a system's runs, or no numbers at all if any run failed verification."""

    system: str
    runs: int
    verified_runs: int
    tasks_per_s: float | None = None
    makespan_p50_ms: float | None = None
    makespan_p99_ms: float | None = None
    dispatch_p50_ms: float | None = None
    dispatch_p99_ms: float | None = None
    peak_rss_mb: float | None = None
    redis_mb: float | None = None
    cpu_ms_per_scenario: float | None = None
    failures: tuple[str, ...] = field(default=())

    @property
    def verified(self) -> bool:
        return self.runs > 0 and self.verified_runs == self.runs

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verified": self.verified}


def _failure_reason(run: RunResult) -> str:
    reason = run.error or "; ".join(run.problems[:3])
    more = run.problem_count - min(len(run.problems), 3)
    return f"run {run.repetition}: {reason}" + (f" (+{more} more)" if more > 0 else "")


def summarise(system: str, runs: Sequence[RunResult]) -> SystemSummary:
    verified = [run for run in runs if run.verified and run.timing is not None]
    if len(verified) != len(runs) or not runs:
        failures = tuple(_failure_reason(run) for run in runs if not run.verified)
        return SystemSummary(system, len(runs), len(verified), failures=failures)

    def median_of(values: Sequence[float | None]) -> float | None:
        present = [value for value in values if value is not None]
        return statistics.median(present) if present else None

    timings = [run.timing for run in verified if run.timing is not None]
    return SystemSummary(
        system=system,
        runs=len(runs),
        verified_runs=len(verified),
        tasks_per_s=median_of([timing.tasks_per_s for timing in timings]),
        makespan_p50_ms=median_of([timing.makespan_p50_ms for timing in timings]),
        makespan_p99_ms=median_of([timing.makespan_p99_ms for timing in timings]),
        dispatch_p50_ms=median_of([timing.dispatch_p50_ms for timing in timings]),
        dispatch_p99_ms=median_of([timing.dispatch_p99_ms for timing in timings]),
        peak_rss_mb=median_of([run.peak_rss_mb for run in verified]),
        redis_mb=median_of([run.redis_mb for run in verified]),
        cpu_ms_per_scenario=median_of([run.cpu_ms_per_scenario for run in verified]),
    )
