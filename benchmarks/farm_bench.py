#!/usr/bin/env python3
"""The farm benchmark: a simulated GPU farm (benchmarks/farm/spec.py) run by scenarist,
BullMQ and Celery, side by side.

    benchmarks/peers/setup.sh celery bullmq        # once: the peers' own virtualenvs
    python benchmarks/farm_bench.py --quick        # well under a minute
    python benchmarks/farm_bench.py --scenarios 40 --repeat 3

Handlers sleep service-specific durations (x `--scale`), each service has a fixed pool
of slots (one worker process per service), and N CreateVideo scenarios are submitted at
once (bulk APIs: POST /generate/batch, BullMQ addBulk, a Celery group). Every run gets
its own redis-server on a free loopback port and a deadline; every process is stopped by
pid afterwards; a run whose records fail verification (each task exactly once, after
its parents) is reported FAILED, never with numbers. Repetitions are interleaved across
systems with the order rotated (decision 52), so a busy minute does not land on one.

The report is a list of sections, each a function in SECTIONS taking the options and
returning its markdown and JSON. Today: `farm` (makespan against its lower bound, time
to each video, pool utilisation). Fairness between tenants, priority lanes, caps and
rate limits, and warm-model affinity are sections to add once the scheduler has them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.farm.metrics import FarmRun, farm_table, measure, summarise  # noqa: E402
from benchmarks.farm.spec import DURATION_MS, SLOTS  # noqa: E402
from benchmarks.farm.systems import FarmSystem, farm_systems  # noqa: E402
from benchmarks.harness.records import read_records  # noqa: E402
from benchmarks.harness.redis_proc import RedisProcess  # noqa: E402
from benchmarks.harness.system import (  # noqa: E402
    RunContext,
    SystemUnavailableError,
    wait_for_records,
)
from benchmarks.harness.verify import verify_run  # noqa: E402
from benchmarks.harness.workload import Workload  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
_SETTLE_S = 0.3  # late duplicates (a redelivered task) must land before the records are read


@dataclass(frozen=True)
class Options:
    systems: tuple[str, ...]
    workload: Workload
    scale: float
    repeat: int
    timeout_s: float
    results_dir: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(farm_systems()))
    parser.add_argument("--scenarios", type=int, default=40, help="CreateVideo scenarios")
    parser.add_argument("--slides", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every duration")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="12 scenarios, scale 0.5, 1 run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.scenarios, args.scale, args.repeat = 12, 0.5, 1
        args.timeout = min(args.timeout, 20.0)
    if args.scale <= 0 or args.repeat < 1 or args.timeout <= 0:
        parser.error("--scale and --timeout must be positive, --repeat at least 1")
    systems = tuple(name.strip() for name in args.systems.split(",") if name.strip())
    unknown = sorted(set(systems) - set(farm_systems()))
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {sorted(farm_systems())}")
    try:
        workload = Workload(scenarios=args.scenarios, slides=args.slides)
    except ValueError as error:
        parser.error(str(error))
    return Options(systems, workload, args.scale, args.repeat, args.timeout, args.results_dir)


@dataclass(frozen=True)
class Outcome:
    """One run: its measurements, or why it has none."""

    system: str
    repetition: int
    run: FarmRun | None
    error: str | None = None


def run_once(system: FarmSystem, options: Options, repetition: int, run_dir: Path) -> Outcome:
    redis = RedisProcess(run_dir / "redis").start()
    ctx = RunContext(
        workload=options.workload,
        redis_url=redis.url,
        records_dir=run_dir / "records",
        workdir=run_dir,
        repo_root=REPO_ROOT,
        workers=len(SLOTS),
        concurrency=max(SLOTS.values()),
        timeout_s=options.timeout_s,
    )
    ctx.records_dir.mkdir(parents=True, exist_ok=True)
    try:
        system.start(ctx, options.scale)
        deadline = time.monotonic() + options.timeout_s
        submitted = system.submit_all(ctx, options.scale)
        wait_for_records(ctx.records_dir, options.workload.total_tasks, deadline)
        time.sleep(_SETTLE_S)
        records = read_records(ctx.records_dir)
        verification = verify_run(options.workload, submitted, records)
        if not verification.ok:
            return Outcome(system.name, repetition, None, "; ".join(verification.problems[:3]))
        run = measure(
            system.name, repetition, workload=options.workload, scale=options.scale,
            submitted=submitted, records=records,
        )  # fmt: skip
        return Outcome(system.name, repetition, run)
    except Exception as error:  # a broken run is a FAILED row, not a crashed benchmark
        return Outcome(system.name, repetition, None, str(error)[:500])
    finally:
        system.stop()
        redis.stop()


def farm_section(options: Options, systems: Sequence[FarmSystem], stamp: str) -> tuple[str, Any]:
    """Every system on the farm, repetitions interleaved with the order rotated."""
    outcomes: list[Outcome] = []
    for repetition in range(1, options.repeat + 1):
        shift = (repetition - 1) % max(len(systems), 1)
        for system in [*systems[shift:], *systems[:shift]]:
            run_dir = options.results_dir / stamp / f"farm-{system.name}-{repetition}"
            outcome = run_once(system, options, repetition, run_dir)
            shown = (
                f"makespan {outcome.run.makespan_s:.2f} s, mean time to video "
                f"{outcome.run.ttv_mean_s:.2f} s"
                if outcome.run is not None
                else f"FAILED: {outcome.error}"
            )
            print(f"  {system.name} run {repetition}/{options.repeat}: {shown}", file=sys.stderr)
            outcomes.append(outcome)
    summaries = []
    failures = []
    for system in systems:
        runs = [o.run for o in outcomes if o.system == system.name and o.run is not None]
        failures += [f"- {o.system} run {o.repetition}: {o.error}" for o in outcomes
                     if o.system == system.name and o.run is None]  # fmt: skip
        if runs:
            summaries.append(summarise(system.name, runs))
    bound = next((o.run.bound_s for o in outcomes if o.run is not None), 0.0)
    text = "## Farm: makespan, time to video, utilisation\n\n" + farm_table(summaries, bound)
    if failures:
        text += "\n\nFailures:\n" + "\n".join(failures)
    data = [o.run.to_json() if o.run else {"system": o.system, "error": o.error} for o in outcomes]
    return text, data


Section = Callable[[Options, Sequence[FarmSystem], str], tuple[str, Any]]
SECTIONS: dict[str, Section] = {"farm": farm_section}


def ready_systems(options: Options) -> tuple[list[FarmSystem], list[str]]:
    systems, missing = [], []
    for name in options.systems:
        system = farm_systems()[name]
        try:
            system.setup()
        except SystemUnavailableError as error:
            missing.append(f"- {name}: {error}")
            continue
        systems.append(system)
    return systems, missing


def describe(options: Options, systems: Sequence[FarmSystem]) -> str:
    durations = ", ".join(f"{k} {v * options.scale:g} ms" for k, v in DURATION_MS.items())
    slots = ", ".join(f"{k} {v}" for k, v in SLOTS.items())
    return (
        f"{options.workload.scenarios} CreateVideo scenarios ({options.workload.slides} slides) "
        f"submitted at once in bulk, {options.repeat} runs per system, interleaved; "
        f"durations {durations}; slots {slots}; one worker process per service.\n"
        + "Systems: " + "; ".join(f"{s.name} = {s.requirement}" for s in systems)
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    systems, missing = ready_systems(options)
    load_before = os.getloadavg()
    report: dict[str, Any] = {"options": {**options.__dict__, "workload": options.workload.__dict__,
                                          "results_dir": str(options.results_dir)}}  # fmt: skip
    print(describe(options, systems) + "\n")
    ok = not missing
    for name, section in SECTIONS.items():
        text, data = section(options, systems, stamp)
        report[name] = data
        ok = ok and not any("error" in row for row in data)
        print(text + "\n")
    load_after = os.getloadavg()
    if missing:
        print("Not run:\n" + "\n".join(missing) + "\n")
    print(f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    report["load_average"] = [load_before, load_after]
    report["elapsed_s"] = time.monotonic() - started
    options.results_dir.mkdir(parents=True, exist_ok=True)
    out = options.results_dir / f"farm-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"results: {out} ({report['elapsed_s']:.1f} s)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
