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
returning its markdown and JSON (`--sections` picks some). `farm`: makespan against its
lower bound, time to each video, pool utilisation. `caps`: scenarist alone with a catalog
that caps the image pool below its worker slots and rate-limits the audio pool; the most
tasks in flight against the cap, the steady leases per second against the limit
(benchmarks/farm/caps.py). `lanes`: scenarist alone, one interactive scenario submitted
under a flood of batch-lane ones, against the same scenario alone and under the same flood
without lanes (benchmarks/farm/lanes.py). `affinity`: scenarist alone, each scenario
naming one of 3 models and the image pool 3 one-slot workers that pay a simulated model
load when a task's model is not theirs, with a catalog whose image task `prefers` the
worker labelled with its model, against the same without `prefers`: the share of image
leases that went to a warm worker, cold loads (avoided), makespan, time to video
(benchmarks/farm/affinity.py). `fairness`: scenarist alone, tenant A's flood and then
tenant B's few scenarios, B's p95 time to video against B alone and against the same
flood without tenants (benchmarks/farm/fairness.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.farm import affinity, caps, fairness, lanes  # noqa: E402
from benchmarks.farm.metrics import FarmRun, farm_table, measure, summarise  # noqa: E402
from benchmarks.farm.spec import DURATION_MS, SLOTS, SLOTS_ENV  # noqa: E402
from benchmarks.farm.systems import FarmSystem, farm_systems  # noqa: E402
from benchmarks.harness.records import ExecutionRecord, read_records  # noqa: E402
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
    sections: tuple[str, ...] = ("farm", "caps", "lanes", "affinity", "fairness")
    caps_scenarios: int = 30
    lanes_flood: int = 40
    affinity_scenarios: int = 24
    fairness_flood: int = 200


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(farm_systems()))
    parser.add_argument("--scenarios", type=int, default=40, help="CreateVideo scenarios")
    parser.add_argument("--slides", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every duration")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="12 scenarios (20 for caps and the lanes' flood, 12 for affinity, 40 for the "
        "fairness flood), scale 0.5, 1 run",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--sections", default="farm,caps,lanes,affinity,fairness",
        help="farm, caps, lanes, affinity, fairness (comma-separated)",
    )  # fmt: skip
    parser.add_argument(
        "--caps-scenarios", type=int, default=30,
        help="scenarios of the caps section (enough leases for a steady rate)",
    )  # fmt: skip
    parser.add_argument(
        "--lanes-flood", type=int, default=40,
        help="batch scenarios of the lanes section's flood",
    )  # fmt: skip
    parser.add_argument(
        "--affinity-scenarios", type=int, default=24,
        help="scenarios of each run of the affinity section (a model each, round-robin)",
    )  # fmt: skip
    parser.add_argument(
        "--fairness-flood", type=int, default=200,
        help="tenant A's scenarios in the fairness section's flood (B submits 5 after)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.scenarios, args.scale, args.repeat = 12, 0.5, 1
        args.caps_scenarios = min(args.caps_scenarios, 20)
        args.lanes_flood = min(args.lanes_flood, 20)
        args.affinity_scenarios = min(args.affinity_scenarios, 12)
        args.fairness_flood = min(args.fairness_flood, 40)
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
    sections = tuple(name.strip() for name in args.sections.split(",") if name.strip())
    if not sections or set(sections) - set(SECTIONS):
        parser.error(f"--sections: pick from {', '.join(SECTIONS)}; got {args.sections!r}")
    sizes = (args.caps_scenarios, args.lanes_flood, args.affinity_scenarios, args.fairness_flood)
    if min(sizes) < 1:
        parser.error(
            "--caps-scenarios, --lanes-flood, --affinity-scenarios and --fairness-flood "
            "must be >= 1"
        )
    return Options(
        systems, workload, args.scale, args.repeat, args.timeout, args.results_dir,
        sections, *sizes,
    )  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """One run: its measurements, or why it has none."""

    system: str
    repetition: int
    run: FarmRun | None
    error: str | None = None
    records: tuple[ExecutionRecord, ...] = ()
    probed: Any = None  # what `probe` returned
    submitted: Mapping[str, int] = field(default_factory=dict)  # id -> ns before its request


# Called with the running system once its records are in, before it stops (the API still
# answers); its return value is the outcome's `probed`.
Probe = Callable[[FarmSystem], Any]


def run_once(
    system: FarmSystem,
    options: Options,
    repetition: int,
    run_dir: Path,
    *,
    workload: Workload | None = None,
    extra_env: dict[str, str] | None = None,
    probe: Probe | None = None,
    on_ready: Callable[[FarmSystem], None] | None = None,
) -> Outcome:
    workload = workload or options.workload
    redis = RedisProcess(run_dir / "redis").start()
    ctx = RunContext(
        workload=workload,
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
        system.start(ctx, options.scale, extra_env)
        if on_ready is not None:
            on_ready(system)
        deadline = time.monotonic() + options.timeout_s
        submitted = system.submit_all(ctx, options.scale)
        wait_for_records(ctx.records_dir, workload.total_tasks, deadline)
        time.sleep(_SETTLE_S)
        records = read_records(ctx.records_dir)
        verification = verify_run(workload, submitted, records)
        if not verification.ok:
            return Outcome(system.name, repetition, None, "; ".join(verification.problems[:3]))
        run = measure(
            system.name, repetition, workload=workload, scale=options.scale,
            submitted=submitted, records=records,
        )  # fmt: skip
        probed = probe(system) if probe is not None else None
        return Outcome(
            system.name, repetition, run, records=tuple(records), probed=probed,
            submitted=submitted,
        )  # fmt: skip
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
    first = next((o.run for o in outcomes if o.run is not None), None)
    bounds = (first.bound_s, first.flow_bound_s) if first else (0.0, 0.0)
    text = "## Farm: makespan, time to video, utilisation\n\n" + farm_table(summaries, *bounds)
    if failures:
        text += "\n\nFailures:\n" + "\n".join(failures)
    data = [o.run.to_json() if o.run else {"system": o.system, "error": o.error} for o in outcomes]
    return text, data


def scenarist_of(systems: Sequence[FarmSystem]) -> FarmSystem | None:
    """The sections that measure scenarist alone run it only when it is among --systems."""
    return next((s for s in systems if s.name == "scenarist"), None)


def with_failures(text: str, rows: Sequence[dict[str, Any]]) -> str:
    """A section's text, with a line for each run that failed (rows with an `error`)."""
    failures = [f"- run {i}: {r['error']}" for i, r in enumerate(rows, 1) if "error" in r]
    return text + "\n\nFailures:\n" + "\n".join(failures) if failures else text


def caps_section(options: Options, systems: Sequence[FarmSystem], stamp: str) -> tuple[str, Any]:
    """scenarist alone, its catalog capping a pool below its slots and rate-limiting
    another (benchmarks/farm/caps.py); the peers' runners have no such setting yet."""
    rows: list[dict[str, Any]] = []
    system = scenarist_of(systems)
    if system is None:
        return "## Caps and rate limits\n\nNot run: scenarist is not among --systems.", rows
    workload = Workload(scenarios=options.caps_scenarios, slides=options.workload.slides)
    for repetition in range(1, options.repeat + 1):
        run_dir = options.results_dir / stamp / f"caps-{system.name}-{repetition}"
        run_dir.mkdir(parents=True, exist_ok=True)
        extra_env = {
            "SCENARIST_SCENARIOS": str(caps.write_catalog(run_dir / "catalog.yml")),
            SLOTS_ENV: json.dumps(caps.CAPS_SLOTS),
        }
        sampler = caps.QueueSampler()
        outcome = run_once(
            system, options, repetition, run_dir, workload=workload, extra_env=extra_env,
            probe=sampler.finish, on_ready=sampler.start,
        )  # fmt: skip
        sampler.stop()  # a failed run never reached `finish`
        if outcome.run is None:
            rows.append({"system": system.name, "error": outcome.error})
            continue
        (run_dir / "lease-spans.json").write_text(json.dumps(outcome.probed))
        row = caps.measure_caps(outcome.probed, outcome.records, sampler).to_json()
        print(f"  caps run {repetition}/{options.repeat}: {row}", file=sys.stderr)
        rows.append(row)
    text = (
        f"## Caps and rate limits (scenarist, {workload.scenarios} scenarios)\n\n"
        + caps.caps_table([r for r in rows if "error" not in r])
    )
    return with_failures(text, rows), rows


# A run of a late-scenario section: its workload, its environment, and what it measures.
LateRun = tuple[Workload, dict[str, str], Callable[[Workload, "Outcome"], float]]


def late_rows(
    options: Options,
    system: FarmSystem,
    stamp: str,
    *,
    section: str,
    runs: Callable[[str, Path], LateRun],
    names: Sequence[str],
) -> list[dict[str, Any]]:
    """Per repetition, every run of `names` in order, each measured into the repetition's
    row; a failed run ends its repetition with an `error` row."""
    rows: list[dict[str, Any]] = []
    for repetition in range(1, options.repeat + 1):
        row: dict[str, Any] = {}
        for name in names:
            run_dir = (
                options.results_dir / stamp / f"{section}-{name.replace(' ', '-')}-{repetition}"
            )
            run_dir.mkdir(parents=True, exist_ok=True)
            workload, extra_env, measured = runs(name, run_dir)
            outcome = run_once(
                system, options, repetition, run_dir, workload=workload, extra_env=extra_env
            )
            if outcome.run is None:
                row = {"error": f"{name}: {outcome.error}"}
                break
            row[name] = measured(workload, outcome)
        print(f"  {section} run {repetition}/{options.repeat}: {row}", file=sys.stderr)
        rows.append(row)
    return rows


def lanes_section(options: Options, systems: Sequence[FarmSystem], stamp: str) -> tuple[str, Any]:
    """scenarist alone: one late interactive scenario under a batch flood, against the
    same alone and under a flood without lanes (benchmarks/farm/lanes.py)."""
    system = scenarist_of(systems)
    if system is None:
        return "## Priority lanes\n\nNot run: scenarist is not among --systems.", []
    plans = lanes.run_plans(options.lanes_flood, options.scale)

    def run(name: str, _run_dir: Path) -> LateRun:
        plan, scenarios = plans[name]
        workload = Workload(scenarios=scenarios, slides=options.workload.slides)
        return workload, {lanes.LANES_ENV: plan.to_env()}, late_video

    rows = late_rows(options, system, stamp, section="lanes", runs=run, names=lanes.RUNS)
    flood = options.lanes_flood
    text = (
        f"## Priority lanes (scenarist, one late scenario under a flood of {flood})\n\n"
        + lanes.lanes_table([r for r in rows if "error" not in r])
    )
    return with_failures(text, rows), rows


def late_video(workload: Workload, outcome: Outcome) -> float:
    return lanes.late_time_to_video(workload, outcome.submitted, outcome.records)


def late_p95(workload: Workload, outcome: Outcome) -> float:
    return fairness.late_p95(workload, outcome.submitted, outcome.records)


def affinity_section(
    options: Options, systems: Sequence[FarmSystem], stamp: str
) -> tuple[str, Any]:
    """scenarist alone: image tasks that prefer the worker with their model loaded,
    against the same without `prefers` (benchmarks/farm/affinity.py)."""
    rows: list[dict[str, Any]] = []
    system = scenarist_of(systems)
    if system is None:
        return "## Warm-model affinity\n\nNot run: scenarist is not among --systems.", rows
    workload = Workload(scenarios=options.affinity_scenarios, slides=options.workload.slides)
    for repetition in range(1, options.repeat + 1):
        row: dict[str, Any] = {}
        for name in affinity.run_order(repetition):
            run_dir = (
                options.results_dir / stamp / f"affinity-{name.replace(' ', '-')}-{repetition}"
            )
            run_dir.mkdir(parents=True, exist_ok=True)
            extra_env = affinity.run_env(run_dir, prefers=name == "affinity", scale=options.scale)
            outcome = run_once(
                system, options, repetition, run_dir, workload=workload, extra_env=extra_env
            )
            if outcome.run is None:
                row = {"error": f"{name}: {outcome.error}"}
                break
            loads = affinity.read_loads(run_dir / affinity.LOADS_FILE)
            row[name] = {**affinity.count_loads(loads), "makespan_s": outcome.run.makespan_s,
                         "ttv_mean_s": outcome.run.ttv_mean_s}  # fmt: skip
        print(f"  affinity run {repetition}/{options.repeat}: {row}", file=sys.stderr)
        rows.append(row)
    text = (
        f"## Warm-model affinity (scenarist, {workload.scenarios} scenarios, "
        f"{affinity.MODELS} models, {affinity.IMAGE_WORKERS} one-slot image workers, "
        f"load {affinity.LOAD_MS * options.scale:g} ms, default 2 s prefer wait)\n\n"
        + affinity.affinity_table([r for r in rows if "error" not in r])
    )
    return with_failures(text, rows), rows


def fairness_section(
    options: Options, systems: Sequence[FarmSystem], stamp: str
) -> tuple[str, Any]:
    """scenarist alone: tenant B's late scenarios under tenant A's flood, against B alone
    and the same flood without tenants (benchmarks/farm/fairness.py)."""
    system = scenarist_of(systems)
    if system is None:
        return "## Tenants' fair share\n\nNot run: scenarist is not among --systems.", []
    plans = fairness.run_plans(options.fairness_flood, options.scale)

    def run(name: str, run_dir: Path) -> LateRun:
        plan, scenarios, tenants = plans[name]
        workload = Workload(scenarios=scenarios, slides=options.workload.slides)
        catalog = fairness.write_catalog(run_dir / "catalog.yml", tenants=tenants)
        extra_env = {fairness.FAIRNESS_ENV: plan.to_env(), "SCENARIST_SCENARIOS": str(catalog)}
        return workload, extra_env, late_p95

    rows = late_rows(options, system, stamp, section="fairness", runs=run, names=fairness.RUNS)
    text = (
        f"## Tenants' fair share (scenarist, tenant B's {fairness.LATE} scenarios under "
        f"tenant A's flood of {options.fairness_flood}, weights 1:1)\n\n"
        + fairness.fairness_table([r for r in rows if "error" not in r])
    )
    return with_failures(text, rows), rows


Section = Callable[[Options, Sequence[FarmSystem], str], tuple[str, Any]]
SECTIONS: dict[str, Section] = {
    "farm": farm_section,
    "caps": caps_section,
    "lanes": lanes_section,
    "affinity": affinity_section,
    "fairness": fairness_section,
}


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
    for name in options.sections:
        section = SECTIONS[name]
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
