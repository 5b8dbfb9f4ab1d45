"""Worker processes for the crash drills: SDK workers in child processes, so the test can
SIGKILL one mid-task exactly as an OOM killer or a lost machine would.

Modes (first argument):
- `block`: record the start, then never return (heartbeats keep the lease alive until
  the process dies: only the kill can make the lease lapse);
- `finish`: record the attempt and succeed at once.
Markers are files in the working directory: `started-<name>-<attempt>` and
`done-<name>-<attempt>`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WORKER_SCRIPT = """\
import sys
import time
from pathlib import Path

from scenarist.worker import TaskResult, Worker

mode, url, service = sys.argv[1], sys.argv[2], sys.argv[3]
worker = Worker(url, concurrency=1, lease_seconds=1.0, wait_seconds=0.5, grace_seconds=0.5)


@worker.handler(service)
def handle(task):
    if mode == "block":
        Path(f"started-{task.name}-{task.attempt}").touch()
        while True:
            time.sleep(0.05)
    Path(f"done-{task.name}-{task.attempt}").touch()
    return TaskResult(result_ref=f"ref/{task.name}", result={"attempt": task.attempt})


worker.run()
"""


def spawn_worker(workdir: Path, mode: str, url: str, service: str) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "crash_worker.py"
    script.write_text(WORKER_SCRIPT, encoding="utf-8")
    log = (workdir / f"worker-{mode}.log").open("ab")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIST_")}
    return subprocess.Popen(
        [sys.executable, str(script), mode, url, service],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_for_marker(workdir: Path, pattern: str, timeout: float) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(workdir.glob(pattern))
        if found:
            return found
        time.sleep(0.05)
    log = "\n".join(p.read_text(errors="replace")[-2000:] for p in workdir.glob("worker-*.log"))
    raise AssertionError(f"no {pattern} in {workdir} after {timeout}s; worker logs:\n{log}")


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL one child we started, by its pid, and reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_process(process)
