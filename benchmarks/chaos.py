#!/usr/bin/env python3
"""Fault drills at full size: the CI reliability tests (tests/reliability), scaled up and
repeated, with a summary of faults injected, requests tried and state lost.

    python benchmarks/chaos.py                 # bounded: about a minute
    python benchmarks/chaos.py --chaos         # full: more rounds, bigger loads
    python benchmarks/chaos.py --json out.json # also write the figures as JSON

Every process it starts (`scenarist serve`, `redis-server`, writers) runs on a free
loopback port in a temporary directory and is stopped by pid. The exit status is 1 when
any drill lost an acknowledged change or broke an invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.reliability.drills import CrashReport, api_kill_drill, redis_kill_drill  # noqa: E402
from tests.reliability.sqlite_drill import sqlite_kill_drill  # noqa: E402
from tests.support.live_server import ServerProcess  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


@dataclass(frozen=True)
class Size:
    api_rounds: int
    api_jobs: int
    api_in_flight: int
    redis_rounds: int
    redis_jobs: int
    sqlite_kills: int


BOUNDED = Size(api_rounds=2, api_jobs=900, api_in_flight=300, redis_rounds=2, redis_jobs=1000,
               sqlite_kills=10)  # fmt: skip
FULL = Size(api_rounds=6, api_jobs=3000, api_in_flight=400, redis_rounds=5, redis_jobs=4000,
            sqlite_kills=50)  # fmt: skip


@dataclass
class DrillTotals:
    """Sums over the rounds of one drill."""

    name: str
    faults: int = 0
    tried: int = 0
    acked: int = 0
    cut_off: int = 0
    unavailable: int = 0  # 503 answers while the store was down
    lost: int = 0
    max_lost_ack_age: float = 0.0
    problems: list[str] = field(default_factory=list)
    recovery_seconds: list[float] = field(default_factory=list)

    def add(self, report: CrashReport) -> None:
        self.faults += 1
        self.tried += report.tried
        self.acked += report.acked
        self.cut_off += report.cut_off
        self.unavailable += report.refused_statuses.get(503, 0)
        self.lost += len(report.lost)
        self.max_lost_ack_age = max([self.max_lost_ack_age, *report.lost_ack_ages])
        self.problems += report.invariant_problems
        if not report.finished_after_restart:
            self.problems.append("scenario could not be finished after the restart")
        if report.recovery_seconds is not None:
            self.recovery_seconds.append(round(report.recovery_seconds, 3))
        if set(report.refused_statuses) - {503}:
            self.problems.append(f"refusals other than 503: {report.refused_statuses}")


def api_drill(workdir: Path, size: Size, store: str) -> DrillTotals:
    totals = DrillTotals(f"API SIGKILL ({store})")
    for round_ in range(size.api_rounds):
        where = workdir / f"api-{store}-{round_}"
        redis = None
        if store == "redis":
            redis = RedisServer(where / "redis", extra_args=durable("always")).start()
            url = redis.url
        else:
            url = f"sqlite:///{where / 'scenarist.db'}"
        server = ServerProcess(where / "server", store_url=url)
        try:
            server.start()
            kill_after = size.api_jobs // 3 * (1 + round_ % 2)  # a third, or two thirds
            drill = api_kill_drill(
                server, jobs=size.api_jobs, in_flight=size.api_in_flight, kill_after=kill_after
            )
            totals.add(asyncio.run(drill))
        finally:
            server.kill()
            if redis is not None:
                redis.stop()
    return totals


def durable(fsync: str) -> tuple[str, ...]:
    return ("--appendonly", "yes", "--appendfsync", fsync)


def redis_drill(workdir: Path, size: Size, fsync: str) -> DrillTotals:
    totals = DrillTotals(f"Redis SIGKILL (appendfsync {fsync})")
    for round_ in range(size.redis_rounds):
        where = workdir / f"redis-{fsync}-{round_}"
        redis = RedisServer(where / "redis", extra_args=durable(fsync)).start()
        server = ServerProcess(where / "server", store_url=redis.url)
        try:
            server.start()
            report = asyncio.run(
                redis_kill_drill(
                    server, redis, jobs=size.redis_jobs, kill_after=size.redis_jobs // 2
                )
            )
            totals.add(report)
            if report.outage_answers != {503: 3}:
                totals.problems.append(f"outage answers {report.outage_answers}")
        finally:
            server.kill()
            redis.stop()
    return totals


def sqlite_drill(workdir: Path, size: Size) -> DrillTotals:
    report = sqlite_kill_drill(workdir / "sqlite", kills=size.sqlite_kills, seed=8)
    totals = DrillTotals("SQLite writer SIGKILL")
    totals.faults = report.kills
    totals.acked = report.acked_submissions + report.acked_completions
    totals.tried = totals.acked
    totals.lost = len(report.lost)
    totals.problems = report.torn_scenarios + report.counter_mismatches
    totals.problems += [f"integrity_check: {r}" for r in report.integrity if r != "ok"]
    return totals


def print_table(rows: list[DrillTotals]) -> None:
    header = (
        f"{'drill':38} {'faults':>6} {'tried':>7} {'acked':>7} {'in flight':>9} "
        f"{'503':>5} {'lost':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:38} {row.faults:>6} {row.tried:>7} {row.acked:>7} "
            f"{row.cut_off:>9} {row.unavailable:>5} {row.lost:>5}"
        )
        if row.lost:
            print(f"{'':38} newest lost ack {row.max_lost_ack_age:.3f} s before the kill")
        if row.recovery_seconds:
            print(f"{'':38} API healthy again {max(row.recovery_seconds):.2f} s after restart")
        for problem in row.problems[:5]:
            print(f"{'':38} PROBLEM: {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chaos", action="store_true", help="full size: more rounds, more load")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    size = FULL if args.chaos else BOUNDED
    workdir = Path(tempfile.mkdtemp(prefix="scenarist-chaos-"))
    drills: list[Callable[[], DrillTotals]] = [
        lambda: api_drill(workdir, size, "sqlite"),
        lambda: api_drill(workdir, size, "redis"),
        lambda: redis_drill(workdir, size, "always"),
        lambda: redis_drill(workdir, size, "everysec"),
        lambda: sqlite_drill(workdir, size),
    ]
    try:
        rows = [drill() for drill in drills]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    if args.json:
        figures: dict[str, Any] = {"size": asdict(size), "drills": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    broken = [r for r in rows if r.problems or (r.lost and "everysec" not in r.name)]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
