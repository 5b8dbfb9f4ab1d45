"""The orchestrator side of a peer: runs its runner module in the peer's own virtualenv.

Every peer is driven the same way: `workers` processes of `<runner> worker`, one
`<runner> submit` process, the same environment. Only the runner module differs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness.processes import ManagedProcess
from benchmarks.harness.records import RECORDS_DIR_ENV, count_ready_workers
from benchmarks.harness.system import (
    RunContext,
    RunTimeoutError,
    System,
    SystemUnavailableError,
    run_submitter,
)
from benchmarks.peers.runner_cli import CONCURRENCY_ENV, REDIS_URL_ENV, SUBMITTER_ENV

PEERS_DIR = Path(__file__).resolve().parents[1] / ".peers"
_WORKER_START_TIMEOUT_S = 60.0


@dataclass
class PeerSystem(System):
    name: str
    module: str
    requirement: str
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def python(self) -> Path:
        return PEERS_DIR / self.name / "bin" / "python"

    def setup(self) -> None:
        if not self.python.exists():
            raise SystemUnavailableError(
                f"{self.name}: no virtualenv at {self.python.parent.parent}; "
                f"run benchmarks/peers/setup.sh {self.name}"
            )

    def describe(self) -> str:
        return self.requirement

    def _env(self, ctx: RunContext) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": str(ctx.repo_root),
                REDIS_URL_ENV: ctx.redis_url,
                RECORDS_DIR_ENV: str(ctx.records_dir),
                CONCURRENCY_ENV: str(ctx.concurrency),
                SUBMITTER_ENV: ctx.peer_submitter,
            }
        )
        return env

    def start_workers(self, ctx: RunContext) -> None:
        for index in range(ctx.workers):
            self.workers.append(
                ManagedProcess.spawn(
                    f"{self.name}-worker-{index}",
                    [str(self.python), "-m", self.module, "worker"],
                    ctx.workdir / f"worker-{index}.log",
                    env=self._env(ctx),
                    cwd=ctx.repo_root,
                )
            )
        self._wait_until_ready(ctx)

    def _wait_until_ready(self, ctx: RunContext) -> None:
        deadline = time.monotonic() + _WORKER_START_TIMEOUT_S
        while count_ready_workers(ctx.records_dir) < ctx.workers:
            for worker in self.workers:
                if not worker.is_running():
                    raise RuntimeError(f"{worker.name} exited early:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                raise RunTimeoutError(
                    f"{self.name}: workers not ready in {_WORKER_START_TIMEOUT_S}s"
                )
            time.sleep(0.02)

    def submit_all(self, ctx: RunContext) -> dict[str, int]:
        out = ctx.workdir / "submitted.json"
        args = [
            str(self.python), "-m", self.module, "submit",
            "--scenarios", str(ctx.workload.scenarios),
            "--slides", str(ctx.workload.slides),
            "--out", str(out),
        ]  # fmt: skip
        return run_submitter(self.name, ctx, args, self._env(ctx), out)

    def monitored_pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


def peer_systems() -> dict[str, PeerSystem]:
    """Every peer, keyed by its --systems name; versions match setup.sh."""
    peers = [
        PeerSystem("celery", "benchmarks.peers.celery_runner", "celery[redis]==5.7.0"),
        PeerSystem("rq", "benchmarks.peers.rq_runner", "rq==2.12.0"),
        PeerSystem("dramatiq", "benchmarks.peers.dramatiq_runner", "dramatiq[redis]==2.2.1"),
        PeerSystem("bullmq", "benchmarks.peers.bullmq_runner", "bullmq==3.4.4"),
        PeerSystem("arq", "benchmarks.peers.arq_runner", "arq==0.28.0"),
    ]
    return {peer.name: peer for peer in peers}
