#!/usr/bin/env python3
"""How close is `eta_seconds` to the truth? A simulated farm, measured at 25/50/75 %.

    python benchmarks/eta_accuracy.py                      # 30 scenarios, scale 1
    python benchmarks/eta_accuracy.py --scale 5 --scenarios 20

One `scenarist serve` process (SQLite store in a temporary directory) and, in this
process, one SDK worker per service with a fixed number of slots (its concurrency) whose
handlers only sleep a time per task kind: script 30 ms, voice 60 ms, slide prompt 15 ms,
slide image 80 ms, video 120 ms, all times `--scale`. CreateVideo scenarios arrive every
`--interval` seconds (times the scale), so several share the farm and queue behind each
other. A poller reads `GET /scenarios/{id}` of every running scenario in turn and keeps
(time, finished tasks, eta_seconds).

For each scenario and each progress mark (25, 50, 75 % of its tasks finished) the first
sample at or past the mark with an ETA is compared with what really remained (its
`finished_at` less the sample's time): the mean absolute error in seconds and relative to
the remaining time, with the median and the 90th percentile of the relative error. The
first scenario is a warm-up (the ETA has no run times before a service has run a task)
and is left out. Everything is bounded: the run stops after `--timeout` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness.processes import ManagedProcess, wait_until_healthy  # noqa: E402
from benchmarks.harness.redis_proc import free_port  # noqa: E402

from scenarist.worker import Worker, WorkerTask  # noqa: E402

SLEEP_SECONDS = {  # by template task id
    "script": 0.030,
    "voice": 0.060,
    "slide_prompt": 0.015,
    "slide_image": 0.080,
    "video": 0.120,
}
SLOTS = {"text-service": 2, "audio-service": 1, "image-service": 2, "video-service": 1}
MARKS = (25, 50, 75)
_START_TIMEOUT_S = 30.0


@dataclass
class Track:
    scenario_id: str
    samples: list[tuple[float, float, float | None]] = field(default_factory=list)
    finished_at: float | None = None


def start_server(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    args = [sys.executable, "-m", "scenarist", "serve", "--port", str(port)]
    args += ["--store", f"sqlite:///{workdir / 'eta.db'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    server = ManagedProcess.spawn("api", args, workdir / "server.log", env, REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(server, url, _START_TIMEOUT_S)
    return server, url


def start_workers(url: str, scale: float, slots: dict[str, int]) -> list[threading.Thread]:
    """One worker per service, `slots` tasks at once, on its own thread and event loop."""

    async def sleep_for(task: WorkerTask) -> str:
        kind = task.name.rstrip("0123456789").rstrip("_")
        await asyncio.sleep(SLEEP_SECONDS[kind] * scale)
        return f"out/{task.name}"

    threads = []
    for service, count in slots.items():
        worker = Worker(url, concurrency=count, wait_seconds=5.0, worker_id=f"farm-{service}")
        worker.add_handler(service, sleep_for)
        thread = threading.Thread(
            target=worker.run, kwargs={"install_signal_handlers": False}, daemon=True
        )
        thread.start()
        threads.append(thread)
        WORKERS.append(worker)
    return threads


WORKERS: list[Worker] = []


async def drive(url: str, scenarios: int, interval: float, timeout: float) -> list[Track]:
    tracks: list[Track] = []
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:

        async def submit_all() -> None:
            for _ in range(scenarios):
                body = {"scenario": "CreateVideo", "description": "eta", "slides_count": 3}
                response = await client.post("/generate", json=body)
                response.raise_for_status()
                tracks.append(Track(response.json()["scenario_id"]))
                await asyncio.sleep(interval)

        submitter = asyncio.create_task(submit_all())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = [t for t in tracks if t.finished_at is None]
            if submitter.done() and not active:
                break
            for track in active:
                sent = time.time()
                body: dict[str, Any] = (await client.get(f"/scenarios/{track.scenario_id}")).json()
                at = (sent + time.time()) / 2
                if body["finished_at"] is not None:
                    track.finished_at = body["finished_at"]
                else:
                    track.samples.append((at, body["progress"]["percent"], body["eta_seconds"]))
            await asyncio.sleep(0.002)
        submitter.cancel()
    return tracks


def errors_at(tracks: list[Track], mark: int) -> tuple[list[float], list[float]]:
    """Absolute (s) and relative errors of the first ETA at or past `mark` % finished."""
    absolute, relative = [], []
    for track in tracks[1:]:  # the first scenario warms the statistics up
        if track.finished_at is None:
            continue
        sample = next(
            ((at, eta) for at, pct, eta in track.samples if pct >= mark and eta is not None), None
        )
        if sample is None:
            continue
        at, eta = sample
        remaining = track.finished_at - at
        if remaining <= 0:
            continue
        absolute.append(abs(eta - remaining))
        relative.append(abs(eta - remaining) / remaining)
    return absolute, relative


def report(tracks: list[Track], scale: float) -> dict[int, float]:
    """Print one run's table; returns the mean relative error at each mark."""
    done = [t for t in tracks if t.finished_at is not None]
    print(f"{len(done)}/{len(tracks)} scenarios finished; slots {SLOTS}; scale {scale:g}")
    durations = [t.finished_at - t.samples[0][0] for t in done if t.samples and t.finished_at]
    if durations:
        print(
            f"scenario duration (first sample to end): median {statistics.median(durations):.3f} s"
        )
    print("progress  n   MAE (s)   mean rel.err  median rel.err  p90 rel.err")
    means = {}
    for mark in MARKS:
        absolute, relative = errors_at(tracks, mark)
        if not absolute:
            print(f"{mark:>5} %   0   (no samples)")
            continue
        means[mark] = statistics.mean(relative)
        p90 = statistics.quantiles(relative, n=10)[-1] if len(relative) >= 2 else relative[0]
        print(
            f"{mark:>5} %  {len(absolute):>2}  {statistics.mean(absolute):8.3f}   "
            f"{100 * statistics.mean(relative):9.1f} %   {100 * statistics.median(relative):9.1f} %"
            f"   {100 * p90:8.1f} %"
        )
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=30)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every sleep")
    parser.add_argument(
        "--interval", type=float, default=0.25, help="seconds between arrivals (times scale)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh server")
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.repeat)]
    if len(runs) > 1:
        print(f"mean relative error over {len(runs)} runs: median (min-max)")
        for mark in MARKS:
            values = [100 * run[mark] for run in runs if mark in run]
            if values:
                print(
                    f"{mark:>5} %  {statistics.median(values):5.1f} % "
                    f"({min(values):.1f}-{max(values):.1f} %)"
                )


def one_run(args: argparse.Namespace) -> dict[int, float]:
    with tempfile.TemporaryDirectory(prefix="eta-accuracy-") as tmp:
        server, url = start_server(Path(tmp))
        try:
            start_workers(url, args.scale, SLOTS)
            tracks = asyncio.run(
                drive(url, args.scenarios, args.interval * args.scale, args.timeout)
            )
        finally:
            for worker in WORKERS:
                worker.stop()
            WORKERS.clear()
            server.stop()
    return report(tracks, args.scale)


if __name__ == "__main__":
    main()
