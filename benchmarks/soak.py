#!/usr/bin/env python3
"""Soak: CreateVideo submissions at a steady rate against `scenarist serve`, with no-op
SDK workers draining every service, for a fixed time. Reports submit and end-to-end
latency percentiles and the server's resident memory over time, with its slope.

    python benchmarks/soak.py                       # 60 s warm-up + 60 s measured, SQLite
    python benchmarks/soak.py --store redis --duration 300 --rate 10
    python benchmarks/soak.py --json soak.json

Memory must be flat: the least-squares slope of RSS over the measured part (after the
warm-up, during which SQLite's page cache fills to its 2 MiB cap and allocator arenas
settle) is compared with --max-slope-mb-per-min; the exit status is 1 when it is steeper,
when a submission failed, or when a scenario did not succeed. Latencies cover the whole
run. Not part of CI (a short variant is: tests/reliability/test_soak_short.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.live_server import ServerProcess  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

SERVICES = ("text-service", "audio-service", "image-service", "video-service")
NOOP_WORKER = """\
import sys

from scenarist.worker import Worker

worker = Worker(sys.argv[1], concurrency=16, max_tasks=16, wait_seconds=1.0, grace_seconds=1.0)
for service in sys.argv[2:]:
    worker.add_handler(service, lambda task: f"noop://{task.name}")
worker.run()
"""


@dataclass
class SoakReport:
    duration_s: float
    rate_per_s: float
    warmup_s: float = 0.0
    submitted: int = 0
    submit_errors: int = 0
    succeeded: int = 0
    unfinished: int = 0
    submit_ms: dict[str, float] = field(default_factory=dict)
    end_to_end_ms: dict[str, float] = field(default_factory=dict)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    rss_slope_mb_per_min: float = 0.0


def percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"p50": samples[0] if samples else 0.0, "p99": samples[0] if samples else 0.0}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2), "max": round(max(samples), 2)}


def slope_per_minute(points: list[tuple[float, float]], after: float) -> float:
    """Least-squares slope of the samples taken at `after` seconds or later, per minute."""
    tail = [(t, v) for t, v in points if t >= after]
    if len(tail) < 3:
        return 0.0
    slope = statistics.linear_regression([t for t, _ in tail], [v for _, v in tail]).slope
    return round(slope * 60.0, 3)


async def submit_steadily(url: str, duration: float, rate: float, slides: int) -> list[Any]:
    """One submission every 1/rate seconds (on a fixed schedule, not after the previous
    answer, so a slow server shows as latency rather than as a lower rate)."""
    body = {"scenario": "CreateVideo", "description": "soak", "slides_count": slides}
    results: list[Any] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one() -> None:
            started = time.perf_counter()
            try:
                response = await client.post("/generate", json=body)
            except httpx.HTTPError as exc:
                results.append(exc)
                return
            results.append((response, (time.perf_counter() - started) * 1000))

        start = time.monotonic()
        pending = []
        for n in range(int(duration * rate)):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            pending.append(asyncio.create_task(one()))
        await asyncio.gather(*pending)
    return results


async def sample_rss(server: ServerProcess, report: SoakReport, stop: asyncio.Event) -> None:
    start = time.monotonic()
    while not stop.is_set():
        report.rss_mb.append(
            (round(time.monotonic() - start, 1), round(server.rss_bytes() / 1e6, 2))
        )
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            continue


def collect_outcomes(url: str, scenario_ids: list[str], report: SoakReport, wait: float) -> None:
    """Wait for the tail of the run to drain, then read each scenario's timestamps."""
    deadline = time.monotonic() + wait
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for scenario_id in scenario_ids:
            body = client.get(f"/scenarios/{scenario_id}").json()
            while body["status"] != "success" and time.monotonic() < deadline:
                time.sleep(0.2)
                body = client.get(f"/scenarios/{scenario_id}").json()
            if body["status"] == "success":
                report.succeeded += 1
                latencies.append((body["finished_at"] - body["created_at"]) * 1000)
            else:
                report.unfinished += 1
    report.end_to_end_ms = percentiles(latencies)


def start_workers(url: str, workdir: Path, count: int) -> list[subprocess.Popen[bytes]]:
    script = workdir / "noop_worker.py"
    script.write_text(NOOP_WORKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIST_")}
    log = (workdir / "workers.log").open("ab")
    return [
        subprocess.Popen(
            [sys.executable, str(script), url, *SERVICES], stdout=log, stderr=log, env=env
        )
        for _ in range(count)
    ]


async def soak(
    server: ServerProcess, *, duration: float, rate: float, slides: int, warmup: float
) -> SoakReport:
    report = SoakReport(duration_s=duration, rate_per_s=rate, warmup_s=warmup)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, report, stop))
    results = await submit_steadily(server.url, warmup + duration, rate, slides)
    ids = []
    submit_ms = []
    for result in results:
        if isinstance(result, tuple) and result[0].status_code == 201:
            ids.append(result[0].json()["scenario_id"])
            submit_ms.append(result[1])
        else:
            report.submit_errors += 1
    report.submitted = len(results)
    report.submit_ms = percentiles(submit_ms)
    await asyncio.to_thread(collect_outcomes, server.url, ids, report, 30.0)
    stop.set()
    await sampler
    report.rss_slope_mb_per_min = slope_per_minute(report.rss_mb, after=warmup)
    return report


def run_soak(
    workdir: Path,
    *,
    store: str,
    duration: float,
    rate: float,
    warmup: float = 0.0,
    slides: int = 3,
    workers: int = 2,
) -> SoakReport:
    """Start a store (Redis: a private server), the API and the workers; soak; stop all."""
    redis = None
    if store == "redis":
        redis = RedisServer(workdir / "redis", extra_args=("--appendonly", "yes")).start()
        url = redis.url
    else:
        url = f"sqlite:///{workdir / 'soak.db'}"
    server = ServerProcess(workdir / "server", store_url=url, catalog=None)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        server.start()
        processes = start_workers(server.url, workdir, workers)
        drill = soak(server, duration=duration, rate=rate, slides=slides, warmup=warmup)
        return asyncio.run(drill)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)
        server.stop()
        if redis is not None:
            redis.stop()


def print_report(report: SoakReport) -> None:
    rss = [mb for _, mb in report.rss_mb]
    total = report.warmup_s + report.duration_s
    print(f"submitted {report.submitted} CreateVideo in {total:g} s "
          f"({report.rate_per_s:g}/s), {report.submit_errors} errors")  # fmt: skip
    print(f"succeeded {report.succeeded}, unfinished {report.unfinished}")
    print(f"submit latency ms      {report.submit_ms}")
    print(f"end-to-end latency ms  {report.end_to_end_ms}")
    if rss:
        print(f"server RSS MB: start {rss[0]}, end {rss[-1]}, max {max(rss)}; "
              f"slope after the {report.warmup_s:g} s warm-up "
              f"{report.rss_slope_mb_per_min} MB/min")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before measuring")
    parser.add_argument("--rate", type=float, default=5.0, help="CreateVideo submissions/s")
    parser.add_argument("--slides", type=int, default=3, help="slides_count of each scenario")
    parser.add_argument("--workers", type=int, default=2, help="no-op worker processes")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--max-slope-mb-per-min", type=float, default=1.0)
    parser.add_argument("--json", type=Path, help="write the report to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scenarist-soak-") as workdir:
        report = run_soak(
            Path(workdir),
            store=args.store,
            duration=args.duration,
            rate=args.rate,
            warmup=args.warmup,
            slides=args.slides,
            workers=args.workers,
        )
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    healthy = report.submit_errors == 0 and report.unfinished == 0
    return 0 if healthy and report.rss_slope_mb_per_min <= args.max_slope_mb_per_min else 1


if __name__ == "__main__":
    sys.exit(main())
