#!/usr/bin/env python3
"""Run the comparative benchmark: every system, several repetitions, one table.

    benchmarks/peers/setup.sh                 # once: the peers' own virtualenvs
    python benchmarks/run_all.py --quick      # < 60 s, for developers
    python benchmarks/run_all.py --scenarios 200 --repeat 3

Each run gets a fresh `redis-server` on a free loopback port, `--workers` worker processes,
a bounded workload and a deadline; everything it started is stopped by pid afterwards. A
run whose execution records fail verification is reported FAILED, never with numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.metrics import timing_metrics  # noqa: E402
from benchmarks.harness.records import read_records  # noqa: E402
from benchmarks.harness.redis_proc import RedisProcess, redis_server_binary  # noqa: E402
from benchmarks.harness.rss import PeakRssSampler, tree_cpu_seconds  # noqa: E402
from benchmarks.harness.schema import RunResult, megabytes, summarise  # noqa: E402
from benchmarks.harness.system import (  # noqa: E402
    BULK_SIZE,
    PEER_SUBMITTERS,
    SUBMITTERS,
    RunContext,
    System,
    SystemUnavailableError,
)
from benchmarks.harness.table import failure_notes, markdown_table  # noqa: E402
from benchmarks.harness.verify import verify_run  # noqa: E402
from benchmarks.harness.workload import Workload  # noqa: E402
from benchmarks.peers.peer_system import peer_systems  # noqa: E402
from benchmarks.systems.scenarist_system import scenarist_systems  # noqa: E402

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
# Late duplicates (a redelivered task) must land before the records are read.
_SETTLE_S = 0.3


def available_systems() -> dict[str, Callable[[], System]]:
    """Every system plugin by name. A new system registers a factory here."""
    factories: dict[str, Callable[[], System]] = {}
    for name, own in scenarist_systems().items():
        factories[name] = _returning(own)
    for name, peer in peer_systems().items():
        factories[name] = _returning(peer)
    return factories


def _returning(system: System) -> Callable[[], System]:
    return lambda: system


@dataclass(frozen=True)
class Options:
    systems: tuple[str, ...]
    workload: Workload
    workers: int
    concurrency: int
    repeat: int
    timeout_s: float
    baseline: str | None
    submitter: str
    peer_submitter: str


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(available_systems()))
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--slides", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per system")
    parser.add_argument("--concurrency", type=int, default=1, help="tasks at once per worker")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--baseline", default="scenarist-http", help="system for the ratio column")
    parser.add_argument("--quick", action="store_true", help="50 scenarios, 1 repetition")
    parser.add_argument(
        "--submitter",
        choices=SUBMITTERS,
        default="sdk",
        help="how scenarist submits: SDK asyncio client, one httpx.Client, 8 httpx threads "
        f"(each one POST /generate at a time), or POST /generate/batch of {BULK_SIZE}",
    )
    parser.add_argument(
        "--peer-submitter",
        choices=PEER_SUBMITTERS,
        default="bulk",
        help=f"bulk: BullMQ addBulk and Celery group, {BULK_SIZE} scenarios per call (RQ, "
        "Dramatiq and arq always submit one by one); one: every peer one by one",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.scenarios, args.repeat, args.timeout = 50, 1, min(args.timeout, 20.0)
    systems = tuple(name.strip() for name in args.systems.split(",") if name.strip())
    unknown = sorted(set(systems) - set(available_systems()))
    if unknown:
        parser.error(f"unknown systems {unknown}; known: {sorted(available_systems())}")
    return Options(
        systems=systems,
        workload=Workload(scenarios=args.scenarios, slides=args.slides),
        workers=args.workers,
        concurrency=args.concurrency,
        repeat=args.repeat,
        timeout_s=args.timeout,
        baseline=args.baseline,
        submitter=args.submitter,
        peer_submitter=args.peer_submitter,
    )


def _measure(system: System, ctx: RunContext, repetition: int, redis: RedisProcess) -> RunResult:
    system.start_workers(ctx)

    def busy_pids() -> list[int]:
        return [*system.monitored_pids(), redis.pid]

    with PeakRssSampler(system.monitored_pids) as rss:
        deadline = time.monotonic() + ctx.timeout_s
        cpu_before = tree_cpu_seconds(busy_pids())
        submitted = system.submit_all(ctx)
        system.wait(ctx, deadline)
        cpu_seconds = tree_cpu_seconds(busy_pids()) - cpu_before
        time.sleep(_SETTLE_S)
    records = read_records(ctx.records_dir)
    verification = verify_run(ctx.workload, submitted, records)
    return RunResult(
        system=system.name,
        repetition=repetition,
        verified=verification.ok,
        timing=timing_metrics(ctx.workload, submitted, records) if verification.ok else None,
        peak_rss_mb=megabytes(rss.peak_bytes),
        redis_mb=megabytes(redis.used_memory_bytes()),
        problems=verification.problems,
        problem_count=verification.problem_count,
        cpu_ms_per_scenario=1000 * cpu_seconds / ctx.workload.scenarios,
    )


def run_once(system: System, options: Options, repetition: int, run_dir: Path) -> RunResult:
    redis = RedisProcess(run_dir / "redis").start()
    ctx = RunContext(
        workload=options.workload,
        redis_url=redis.url,
        records_dir=run_dir / "records",
        workdir=run_dir,
        repo_root=REPO_ROOT,
        workers=options.workers,
        concurrency=options.concurrency,
        timeout_s=options.timeout_s,
        submitter=options.submitter,
        peer_submitter=options.peer_submitter,
    )
    ctx.records_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _measure(system, ctx, repetition, redis)
    except Exception as error:  # a broken run is a FAILED row, not a crashed benchmark
        return RunResult(system.name, repetition, False, None, None, None, error=str(error))
    finally:
        system.stop()
        redis.stop()


def describe_machine() -> dict[str, Any]:
    probe = RedisProcess(RESULTS_DIR / ".probe").start()
    try:
        redis_version = probe.version()
    finally:
        probe.stop()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis_server": redis_version,
        "redis_server_binary": Path(redis_server_binary()).name,
    }


def run_all(options: Options, stamp: str) -> tuple[list[RunResult], dict[str, str]]:
    """Repetition by repetition, every system in each (interleaved, the order rotated
    each time), so that a busy minute on a shared machine does not land on one system."""
    results: list[RunResult] = []
    versions: dict[str, str] = {}
    factories = available_systems()
    ready: list[System] = []
    for name in options.systems:
        system = factories[name]()
        try:
            system.setup()
        except SystemUnavailableError as error:
            results.append(RunResult(name, 0, False, None, None, None, error=str(error)))
            continue
        versions[name] = system.describe()
        ready.append(system)
    for repetition in range(1, options.repeat + 1):
        shift = (repetition - 1) % max(len(ready), 1)
        for system in ready[shift:] + ready[:shift]:
            run_dir = RESULTS_DIR / stamp / f"{system.name}-{repetition}"
            result = run_once(system, options, repetition, run_dir)
            status = "ok" if result.verified else "FAILED"
            rate = result.timing.tasks_per_s if result.timing is not None else None
            shown = f" {rate:,.0f} tasks/s" if rate is not None else ""
            print(
                f"  {system.name} run {repetition}/{options.repeat}: {status}{shown}",
                file=sys.stderr,
            )
            results.append(result)
    return results, versions


def per_run_lines(results: Sequence[RunResult], systems: Sequence[str]) -> list[str]:
    """Each system's tasks/s run by run, and their spread (slowest-fastest)."""
    lines = []
    for name in systems:
        rates = [r.timing.tasks_per_s for r in results if r.system == name and r.timing]
        if rates:
            runs = " / ".join(f"{rate:,.0f}" for rate in rates)
            lines.append(f"- {name}: {runs} tasks/s (spread {min(rates):,.0f}-{max(rates):,.0f})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    machine = describe_machine()
    load_before = os.getloadavg()
    results, versions = run_all(options, stamp)
    load_after = os.getloadavg()
    summaries = [
        summarise(name, [run for run in results if run.system == name]) for name in options.systems
    ]
    print(
        f"submitter: scenarist {options.submitter}, peers {options.peer_submitter}; "
        f"{options.workload.scenarios} scenarios x {options.repeat} runs, interleaved; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    print(markdown_table(summaries, baseline=options.baseline))
    print("\nPer run:\n" + "\n".join(per_run_lines(results, options.systems)))
    notes = failure_notes(summaries)
    if notes:
        print("\nFailures:\n" + notes)
    report = {
        "machine": {
            **machine,
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "versions": versions,
        "options": {**options.__dict__, "workload": options.workload.__dict__},
        "elapsed_s": time.monotonic() - started,
        "summaries": [summary.to_json() for summary in summaries],
        "runs": [run.to_json() for run in results],
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(
        f"\nresults: {out.relative_to(REPO_ROOT)}  ({report['elapsed_s']:.1f} s)", file=sys.stderr
    )
    return 0 if all(summary.verified for summary in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
