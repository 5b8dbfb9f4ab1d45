"""Child processes the harness starts, and stops again by their own pid only."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class ManagedProcess:
    """One process with its output in `log_path`; `stop()` is safe to call twice."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def spawn(
        cls,
        name: str,
        args: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        return cls(name=name, process=process, log_path=log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, characters: int = 2000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (the worker's own graceful path), then SIGKILL after `grace_s`."""
        stop_all([self], grace_s)


def stop_all(processes: Sequence[ManagedProcess], grace_s: float = 10.0) -> None:
    """SIGTERM to every running process at once, then each waited for (SIGKILL after
    `grace_s`), so their graceful exits overlap instead of adding up."""
    running = [p for p in processes if p.is_running()]
    for process in running:
        os.kill(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.process.wait(timeout=grace_s)


def wait_until_healthy(server: ManagedProcess, url: str, timeout_s: float) -> None:
    """Poll `url`/health until the server answers 200; stop it and raise with its log's
    tail when it exits or does not answer in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not server.is_running() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the API server did not start:\n{server.log_tail()}")
        time.sleep(0.05)
