"""Check that a run executed the workload: every task exactly once, in dependency order.

No number from a run is reported as valid unless `verify_run` finds no problem.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.workload import Workload

# Enough to diagnose a broken runner without flooding the report.
_MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Verification:
    ok: bool
    problems: tuple[str, ...]
    problem_count: int


def group_by_scenario(
    records: Iterable[ExecutionRecord],
) -> dict[str, dict[str, list[ExecutionRecord]]]:
    grouped: dict[str, dict[str, list[ExecutionRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        grouped[record.scenario_id][record.name].append(record)
    return grouped


def _count_problems(
    scenario_id: str, executed: Mapping[str, list[ExecutionRecord]], expected: Iterable[str]
) -> list[str]:
    counts = Counter({name: len(runs) for name, runs in executed.items()})
    problems = []
    for name in expected:
        if counts[name] != 1:
            problems.append(f"{scenario_id}/{name}: ran {counts[name]} times, expected once")
    problems.extend(
        f"{scenario_id}/{name}: not part of the workload"
        for name in sorted(set(counts) - set(expected))
    )
    return problems


def _order_problems(
    scenario_id: str,
    executed: Mapping[str, list[ExecutionRecord]],
    parents_of: Mapping[str, tuple[str, ...]],
) -> list[str]:
    problems = []
    for child, parents in parents_of.items():
        for child_run in executed.get(child, []):
            for parent in parents:
                latest_end = max((run.end_ns for run in executed.get(parent, [])), default=None)
                if latest_end is None or child_run.start_ns < latest_end:
                    problems.append(
                        f"{scenario_id}/{child}: started before its parent {parent} ended"
                    )
    return problems


def verify_run(
    workload: Workload, submitted: Mapping[str, int], records: Iterable[ExecutionRecord]
) -> Verification:
    parents_of = workload.parents_of()
    expected_ids = set(workload.scenario_ids())
    grouped = group_by_scenario(records)
    problems: list[str] = [
        f"{scenario_id}: never submitted" for scenario_id in sorted(expected_ids - set(submitted))
    ]
    problems.extend(
        f"{scenario_id}: executed but not part of the workload"
        for scenario_id in sorted(set(grouped) - expected_ids)
    )
    for scenario_id in sorted(expected_ids):
        executed = grouped.get(scenario_id, {})
        problems.extend(_count_problems(scenario_id, executed, parents_of))
        problems.extend(_order_problems(scenario_id, executed, parents_of))
    return Verification(
        ok=not problems,
        problems=tuple(problems[:_MAX_LISTED_PROBLEMS]),
        problem_count=len(problems),
    )
