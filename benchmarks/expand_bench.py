#!/usr/bin/env python3
"""Micro-benchmark of the submit-time CPU work before the store call: `Catalog.plan`
(parameter validation + expansion + leaf rendering) and `build_records`.

    python benchmarks/expand_bench.py            # 2000 iterations per case
    python benchmarks/expand_bench.py -n 500

Two cases: the packaged CreateVideo (3 slides, 9 tasks) and a 100-task fan-out (a root,
98 templated copies, a fan-in). Prints CPU nanoseconds (process time, not wall clock) per
call, the best of a few rounds; it asserts nothing, compare runs before and after a change.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "src") not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT / "src"))

from scenarist.core.catalog import Catalog, load_catalog, parse_catalog  # noqa: E402
from scenarist.core.model import JSON  # noqa: E402
from scenarist.service.records import build_records  # noqa: E402

FAN_OUT = """
FanOut:
  params:
    description: {type: string, required: true}
    width: {type: integer, default: 98, minimum: 1, maximum: 1000}
  tasks:
    - id: split
      service: text-service
      payload: {kind: split, topic: "{{ description }}", parts: "{{ width }}"}
    - id: work
      service: image-service
      count: "{{ width }}"
      depends_on: [split]
      payload:
        kind: work
        topic: "{{ description }}"
        part: "{{ index }}"
        parts: "{{ count }}"
        label: "part {{ index }} of {{ count }}"
        options: {quality: high, retries: 2}
    - id: join
      service: video-service
      depends_on: [work]
      payload: {kind: join, topic: "{{ description }}"}
"""


@dataclass(frozen=True)
class Case:
    label: str
    make_catalog: Callable[[], Catalog]
    scenario: str
    params: Mapping[str, JSON]
    cost: int  # relative size: the case runs iterations // cost times per round


CASES = [
    Case(
        "CreateVideo",
        lambda: load_catalog(None),
        "CreateVideo",
        {"description": "a short film about cats", "slides_count": 3},
        cost=1,
    ),
    Case(
        "FanOut",
        lambda: parse_catalog(FAN_OUT, "fan_out.yml"),
        "FanOut",
        {"description": "a short film about cats"},
        cost=10,
    ),
]


def cpu_ns_per_call(call: Callable[[], object], iterations: int, rounds: int) -> float:
    """The best round's CPU time per call: the least disturbed by other processes."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time_ns()
        for _ in range(iterations):
            call()
        best = min(best, (time.process_time_ns() - started) / iterations)
    return best


def run_case(case: Case, iterations: int, rounds: int) -> None:
    catalog = case.make_catalog()
    plan = catalog.plan(case.scenario, case.params)
    tasks = len(plan.tasks)

    def plan_once() -> object:
        return catalog.plan(case.scenario, case.params)

    def records_once() -> object:
        return build_records(plan, scenario_id="01J0000000000000000000000", now=1.0)

    plan_ns = cpu_ns_per_call(plan_once, iterations, rounds)
    records_ns = cpu_ns_per_call(records_once, iterations, rounds)
    print(f"{case.label}: {tasks} tasks, {iterations} iterations x {rounds} rounds (best round)")
    print(f"  plan           {plan_ns:>12,.0f} ns  ({plan_ns / tasks:,.0f} ns/task)")
    print(f"  build_records  {records_ns:>12,.0f} ns  ({records_ns / tasks:,.0f} ns/task)")
    total = plan_ns + records_ns
    print(f"  together       {total:>12,.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--iterations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for case in CASES:
        run_case(case, max(args.iterations // case.cost, 1), args.rounds)


if __name__ == "__main__":
    main()
