"""The demo workers: one `Worker` serving text-, audio-, image- and video-service with the
offline media handlers of `scenarist.demo.handlers`.

Artefacts go to `<out_dir>/<scenario_id>/`, so scenarios never overwrite each other's
`script.txt` or `video.mp4`. Run them with

    scenarist worker scenarist.demo.workers:from_env     # SCENARIST_URL, SCENARIST_DEMO_OUT
    python -m scenarist.demo.workers --url URL --out DIR [--burst]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from scenarist.demo.errors import DemoPayloadError
from scenarist.demo.handlers import HANDLED_SERVICES, handle_task
from scenarist.worker import Fatal, TaskResult, Worker, WorkerTask
from scenarist.worker.client import DEFAULT_URL
from scenarist.worker.logs import configure_logging

DEFAULT_OUT_DIR = "scenarist-demo-output"
LEASE_SECONDS = 60.0
VIDEO_LEASE_SECONDS = 600.0  # encoding may take minutes on a slow machine
DEFAULT_CONCURRENCY = 8  # two slots per service: slide images render in parallel


def run_demo_task(task: WorkerTask, *, out_dir: Path) -> TaskResult:
    """Adapter from the SDK's task to the pure handler. A payload the handler cannot use
    is fatal (no retry can fix it); a media tool failure is left retryable. Either way the
    attempt reports the CPU it really used (see `report_cpu`)."""
    started = cpu_clocks()
    try:
        produced = handle_task(task.service, task.payload, task.inputs, out_dir / task.scenario_id)
    except DemoPayloadError as exc:
        raise Fatal(str(exc)) from exc
    finally:
        report_cpu(task, started)
    return TaskResult(result_ref=produced.result_ref, result=produced.result)


def cpu_clocks() -> tuple[float, float]:
    """(CPU seconds of this thread, CPU seconds of reaped child processes so far)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time(), children.ru_utime + children.ru_stime


def report_cpu(task: WorkerTask, started: tuple[float, float]) -> None:
    """`cpu_seconds`: the handler's own thread (sync handlers run on one thread each, so
    concurrent handlers do not count each other, as process_time would); and
    `child_cpu_seconds`: the media programs (ffmpeg, espeak-ng) the attempt ran, counted
    when they were reaped, so with several handlers running programs at once a child
    may be counted by whichever attempt was running when it ended."""
    thread_now, children_now = cpu_clocks()
    task.report_usage(
        cpu_seconds=max(0.0, thread_now - started[0]),
        child_cpu_seconds=max(0.0, children_now - started[1]),
    )


def build_demo_worker(
    url: str = DEFAULT_URL,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    *,
    token: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    services: Sequence[str] = HANDLED_SERVICES,
    wait_seconds: float = 20.0,
) -> Worker:
    out = Path(out_dir).expanduser().resolve()
    worker = Worker(
        url,
        token,
        concurrency=concurrency,
        lease_seconds=LEASE_SECONDS,
        wait_seconds=wait_seconds,
    )
    for service in services:
        if service not in HANDLED_SERVICES:
            raise ValueError(f"no demo handler for {service!r}; known: {HANDLED_SERVICES}")
        lease = VIDEO_LEASE_SECONDS if service == "video-service" else LEASE_SECONDS
        worker.add_handler(service, partial(run_demo_task, out_dir=out), lease_seconds=lease)
    return worker


def from_env() -> Worker:
    """Factory for `scenarist worker scenarist.demo.workers:from_env`."""
    return build_demo_worker(
        os.environ.get("SCENARIST_URL", DEFAULT_URL),
        os.environ.get("SCENARIST_DEMO_OUT", DEFAULT_OUT_DIR),
        token=os.environ.get("SCENARIST_TOKEN") or None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the four scenarist demo workers.")
    parser.add_argument("--url", default=os.environ.get("SCENARIST_URL", DEFAULT_URL))
    parser.add_argument("--out", default=os.environ.get("SCENARIST_DEMO_OUT", DEFAULT_OUT_DIR))
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--wait-seconds", type=float, default=20.0, help="lease long-poll")
    parser.add_argument("--burst", action="store_true", help="drain the queues, then exit")
    args = parser.parse_args(argv)
    configure_logging()
    worker = build_demo_worker(
        args.url,
        args.out,
        token=os.environ.get("SCENARIST_TOKEN") or None,
        concurrency=args.concurrency,
        wait_seconds=args.wait_seconds,
    )
    worker.run(burst=args.burst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
