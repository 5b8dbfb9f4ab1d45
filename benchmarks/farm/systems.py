"""The farm's systems: one worker process per service (spec.SLOTS slots each), driven
through a runner module (`worker` / `submit`, as the peers' runners), plus for scenarist
its `scenarist serve` process on the run's Redis. Every process is started here and
stopped by pid."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.farm.spec import SCALE_ENV, SERVICE_ENV, SERVICES
from benchmarks.harness.processes import ManagedProcess, stop_all, wait_until_healthy
from benchmarks.harness.records import RECORDS_DIR_ENV, count_ready_workers
from benchmarks.harness.redis_proc import free_port
from benchmarks.harness.system import (
    RunContext,
    RunTimeoutError,
    SystemUnavailableError,
    run_submitter,
)
from benchmarks.peers.peer_system import PEERS_DIR
from benchmarks.peers.runner_cli import REDIS_URL_ENV
from benchmarks.systems.scenarist_runner import API_URL_ENV

START_TIMEOUT_S = 60.0


@dataclass
class FarmSystem:
    name: str
    module: str
    requirement: str
    own_python: bool = False  # scenarist runs in the project's Python, peers in their venvs
    server: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)
    api_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)  # one run's settings, over env()

    @property
    def python(self) -> Path:
        return Path(sys.executable) if self.own_python else PEERS_DIR / self.name / "bin" / "python"

    def setup(self) -> None:
        if not self.python.exists():
            raise SystemUnavailableError(
                f"{self.name}: no virtualenv at {self.python.parent.parent}; "
                f"run benchmarks/peers/setup.sh {self.name}"
            )

    def env(self, ctx: RunContext, scale: float) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(ctx.repo_root)] + ([str(ctx.repo_root / "src")] if self.own_python else [])
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(paths),
                REDIS_URL_ENV: ctx.redis_url,
                RECORDS_DIR_ENV: str(ctx.records_dir),
                API_URL_ENV: self.api_url,
                SCALE_ENV: repr(scale),
                **self.extra_env,
            }
        )
        return env

    def start(
        self, ctx: RunContext, scale: float, extra_env: Mapping[str, str] | None = None
    ) -> None:
        """Start the server (scenarist) and a worker per pool; `extra_env` goes to every
        process of this run (a catalog, other pool sizes)."""
        self.extra_env = dict(extra_env or {})
        if self.server:
            port = free_port()
            self.api_url = f"http://127.0.0.1:{port}"
            args = [str(self.python), "-m", "scenarist", "serve", "--port", str(port)]
            args += ["--store", ctx.redis_url, "--no-access-log"]
            server = ManagedProcess.spawn(
                f"{self.name}-server", args, ctx.workdir / "server.log", self.env(ctx, scale),
                ctx.repo_root,
            )  # fmt: skip
            self.processes.append(server)
            wait_until_healthy(server, self.api_url, START_TIMEOUT_S)
        for service in SERVICES:
            env = {**self.env(ctx, scale), SERVICE_ENV: service}
            self.processes.append(
                ManagedProcess.spawn(
                    f"{self.name}-{service}",
                    [str(self.python), "-m", self.module, "worker"],
                    ctx.workdir / f"worker-{service}.log",
                    env,
                    ctx.repo_root,
                )
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while count_ready_workers(ctx.records_dir) < len(SERVICES):
            for process in self.processes:
                if not process.is_running():
                    raise RuntimeError(f"{process.name} exited early:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise RunTimeoutError(f"{self.name}: workers not ready in {START_TIMEOUT_S}s")
            time.sleep(0.02)

    def submit_all(self, ctx: RunContext, scale: float) -> dict[str, int]:
        out = ctx.workdir / "submitted.json"
        args = [
            str(self.python), "-m", self.module, "submit",
            "--scenarios", str(ctx.workload.scenarios),
            "--slides", str(ctx.workload.slides),
            "--out", str(out),
        ]  # fmt: skip
        return run_submitter(self.name, ctx, args, self.env(ctx, scale), out)

    def stop(self) -> None:
        # The workers all at once (each finishes what it holds), then the server.
        workers = [p for p in self.processes if not p.name.endswith("-server")]
        stop_all(workers)
        stop_all(self.processes)
        self.processes.clear()


def farm_systems() -> dict[str, FarmSystem]:
    from scenarist import __version__

    systems = [
        FarmSystem(
            "scenarist", "benchmarks.farm.scenarist_farm", f"scenarist {__version__} "
            "(Redis store, SDK Worker per pool)", own_python=True, server=True,
        ),
        FarmSystem("bullmq", "benchmarks.farm.bullmq_farm", "bullmq==3.4.4"),
        FarmSystem("celery", "benchmarks.farm.celery_farm", "celery[redis]==5.7.0"),
    ]  # fmt: skip
    return {system.name: system for system in systems}
