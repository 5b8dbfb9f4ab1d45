"""The plugin interface every benchmarked system implements, and the run context it gets.

A run is: `setup()` once, then per repetition `start_workers` (returns once every worker
consumes), `submit_all` (returns each scenario's submit time), `wait` (until every task
recorded or the deadline), `stop`. Task bodies must call
`benchmarks.harness.records.run_noop_task`, which is how the harness sees what ran.
"""

from __future__ import annotations

import abc
import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.processes import ManagedProcess
from benchmarks.harness.records import RecordCounter, count_ready_workers
from benchmarks.harness.workload import Workload

_POLL_S = 0.02


class SystemUnavailableError(RuntimeError):
    """The system cannot run here (for example its virtualenv was never set up)."""


class RunTimeoutError(RuntimeError):
    """A phase of a run did not finish before its deadline."""


@dataclass(frozen=True)
class RunContext:
    workload: Workload
    redis_url: str
    records_dir: Path
    workdir: Path
    repo_root: Path
    workers: int
    concurrency: int
    timeout_s: float
    # How scenarist-http submits (SUBMITTERS) and whether peers use their bulk API.
    submitter: str = "sdk"
    peer_submitter: str = "bulk"


# scenarist-http's submitters: the SDK's asyncio client one scenario at a time; a plain
# httpx.Client awaiting each POST /generate (what most backends do); 8 threads of that;
# POST /generate/batch with BULK_SIZE scenarios per request.
SUBMITTERS = ("sdk", "httpx", "httpx-8", "bulk")
PEER_SUBMITTERS = ("one", "bulk")
BULK_SIZE = 100


class System(abc.ABC):
    name: str

    @abc.abstractmethod
    def setup(self) -> None:
        """Check the system can run; raise SystemUnavailableError with a hint if not."""

    @abc.abstractmethod
    def start_workers(self, ctx: RunContext) -> None:
        """Start `ctx.workers` worker processes; return once all of them consume."""

    @abc.abstractmethod
    def submit_all(self, ctx: RunContext) -> dict[str, int]:
        """Submit every scenario; map scenario id -> time.time_ns() just before its submit."""

    @abc.abstractmethod
    def monitored_pids(self) -> list[int]:
        """Processes whose trees count towards peak RSS (workers, and any server)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop every process this system started, by pid. Safe to call twice."""

    def describe(self) -> str:
        """Version and settings, for the report."""
        return self.name

    def wait(self, ctx: RunContext, deadline: float) -> None:
        """Block until every expected task is recorded, or raise RunTimeoutError."""
        wait_for_records(ctx.records_dir, ctx.workload.total_tasks, deadline)


def wait_for_records(records_dir: Path, expected: int, deadline: float) -> None:
    counter = RecordCounter(records_dir)
    while True:
        done = counter.count()
        if done >= expected:
            return
        if time.monotonic() > deadline:
            raise RunTimeoutError(f"only {done} of {expected} tasks recorded before the deadline")
        time.sleep(_POLL_S)


def wait_for_ready_workers(records_dir: Path, expected: int, deadline: float) -> None:
    while count_ready_workers(records_dir) < expected:
        if time.monotonic() > deadline:
            ready = count_ready_workers(records_dir)
            raise RunTimeoutError(f"only {ready} of {expected} workers ready before the deadline")
        time.sleep(_POLL_S)


def run_submitter(
    name: str, ctx: RunContext, args: Sequence[str], env: Mapping[str, str], out: Path
) -> dict[str, int]:
    """Run a system's submitter, which writes `{"submitted": {scenario: submit time}}`
    to `out`, and return that mapping."""
    submitter = ManagedProcess.spawn(
        f"{name}-submit", args, ctx.workdir / "submit.log", env, ctx.repo_root
    )
    try:
        returncode = submitter.process.wait(timeout=ctx.timeout_s)
    except subprocess.TimeoutExpired as error:
        submitter.stop()
        raise RunTimeoutError(f"{name}: submit took over {ctx.timeout_s}s") from error
    if returncode != 0:
        raise RuntimeError(f"{name}: submit failed ({returncode}):\n{submitter.log_tail()}")
    submitted: dict[str, int] = json.loads(out.read_text())["submitted"]
    return submitted
