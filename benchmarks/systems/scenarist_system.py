"""scenarist as a benchmarked system, in two variants on the run's Redis:

- `scenarist-http`: a `scenarist serve` process (Redis store) and `ctx.workers` worker
  processes leasing and completing in batches over HTTP;
- `scenarist-inproc`: `ctx.workers` worker processes driving the Orchestrator and the
  Redis store directly (the embedded path), no server.

Workers and submitter live in `scenarist_runner.py` and run in the project's own Python.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import httpx
from benchmarks.harness.processes import ManagedProcess
from benchmarks.harness.records import RECORDS_DIR_ENV, count_ready_workers
from benchmarks.harness.redis_proc import free_port
from benchmarks.harness.system import (
    RunContext,
    RunTimeoutError,
    System,
    SystemUnavailableError,
    run_submitter,
)
from benchmarks.peers.runner_cli import REDIS_URL_ENV
from benchmarks.systems.scenarist_runner import API_URL_ENV, BATCH_ENV, DEFAULT_BATCH

RUNNER = "benchmarks.systems.scenarist_runner"
_START_TIMEOUT_S = 60.0
_POLL_S = 0.02


@dataclass
class ScenaristSystem(System):
    name: str
    mode: str  # "http" or "inproc"
    batch: int = DEFAULT_BATCH
    server: ManagedProcess | None = None
    workers: list[ManagedProcess] = field(default_factory=list)
    api_url: str = ""

    def setup(self) -> None:
        try:
            import scenarist  # noqa: F401
        except ImportError as error:
            raise SystemUnavailableError(f"{self.name}: scenarist is not importable") from error

    def describe(self) -> str:
        from scenarist import __version__

        how = "HTTP workers" if self.mode == "http" else "in-process workers"
        return f"scenarist {__version__} ({how}, Redis store, lease/complete batch {self.batch})"

    def _env(self, ctx: RunContext) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(ctx.repo_root), str(ctx.repo_root / "src")]),
                REDIS_URL_ENV: ctx.redis_url,
                RECORDS_DIR_ENV: str(ctx.records_dir),
                API_URL_ENV: self.api_url,
                BATCH_ENV: str(self.batch),
            }
        )
        return env

    def start_workers(self, ctx: RunContext) -> None:
        if self.mode == "http":
            self._start_server(ctx)
        for index in range(ctx.workers):
            self.workers.append(
                ManagedProcess.spawn(
                    f"{self.name}-worker-{index}",
                    [sys.executable, "-m", RUNNER, "worker", "--mode", self.mode],
                    ctx.workdir / f"worker-{index}.log",
                    env=self._env(ctx),
                    cwd=ctx.repo_root,
                )
            )
        self._wait_for_workers(ctx)

    def _start_server(self, ctx: RunContext) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "scenarist", "serve", "--port", str(port)]
        # No access log: one stderr line per request is server CPU the peers do not pay.
        args += ["--store", ctx.redis_url, "--no-access-log"]
        self.server = ManagedProcess.spawn(
            f"{self.name}-server", args, ctx.workdir / "server.log", self._env(ctx), ctx.repo_root
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _healthy(self.api_url):
            if not self.server.is_running():
                raise RuntimeError(f"{self.name}: server exited:\n{self.server.log_tail()}")
            if time.monotonic() > deadline:
                raise RunTimeoutError(f"{self.name}: server not healthy in {_START_TIMEOUT_S}s")
            time.sleep(_POLL_S)

    def _wait_for_workers(self, ctx: RunContext) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while count_ready_workers(ctx.records_dir) < ctx.workers:
            for worker in self.workers:
                if not worker.is_running():
                    raise RuntimeError(f"{worker.name} exited early:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                raise RunTimeoutError(f"{self.name}: workers not ready in {_START_TIMEOUT_S}s")
            time.sleep(_POLL_S)

    def submit_all(self, ctx: RunContext) -> dict[str, int]:
        out = ctx.workdir / "submitted.json"
        args = [
            sys.executable, "-m", RUNNER, "submit", "--mode", self.mode,
            "--scenarios", str(ctx.workload.scenarios),
            "--slides", str(ctx.workload.slides),
            "--out", str(out),
            "--submitter", ctx.submitter,
        ]  # fmt: skip
        return run_submitter(self.name, ctx, args, self._env(ctx), out)

    def monitored_pids(self) -> list[int]:
        pids = [worker.pid for worker in self.workers]
        if self.server is not None:
            pids.append(self.server.pid)
        return pids

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()
        if self.server is not None:
            self.server.stop()
            self.server = None


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def scenarist_systems() -> dict[str, ScenaristSystem]:
    systems = [
        ScenaristSystem("scenarist-http", "http"),
        ScenaristSystem("scenarist-inproc", "inproc"),
    ]
    return {system.name: system for system in systems}
