"""`scenarist serve` in a child process on a free loopback port, stopped (or SIGKILLed) by
its pid. Reliability tests need a real process: an in-thread server cannot be killed -9,
and its memory cannot be told apart from the test's.

    server = ServerProcess(workdir, store_url=f"sqlite:///{db}").start()
    server.url            # http://127.0.0.1:<port>
    server.kill()         # SIGKILL, nothing flushed
    server.start()        # the same port and store again
    server.rss_bytes()    # resident memory from /proc
    server.log_text()     # everything the process wrote (all starts)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.redis_server import free_port

# Small catalog for fault tests: independent jobs, a fan-in, and a diamond.
RELIABILITY_CATALOG = """\
defaults:
  max_attempts: 3
  timeout_seconds: 60

Jobs:
  description: n independent jobs
  params:
    n: {type: integer, default: 1, minimum: 0, maximum: 1000}
  tasks:
    - id: job
      service: test-service
      count: "{{ n }}"
      payload: {index: "{{ index }}"}

FanIn:
  description: n jobs, then one join that waits for all of them
  params:
    n: {type: integer, default: 2, minimum: 1, maximum: 1000}
  tasks:
    - id: job
      service: test-service
      count: "{{ n }}"
      payload: {index: "{{ index }}"}
    - id: join
      service: join-service
      depends_on: [job]

Diamond:
  description: root -> left, right -> join
  tasks:
    - id: root
      service: test-service
    - id: left
      service: test-service
      depends_on: [root]
    - id: right
      service: test-service
      depends_on: [root]
    - id: join
      service: join-service
      depends_on: [left, right]
"""

DEFAULT_ENV = {
    "SCENARIST_REAPER_INTERVAL": "0.1",
    "SCENARIST_CALLBACK_INTERVAL": "0.5",
    "SCENARIST_SSE_HEARTBEAT_SECONDS": "1",
}


def process_rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def hermetic_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment minus any SCENARIST_* (so a developer's settings do not
    leak into a test), plus the test defaults and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCENARIST_")}
    return {**env, **DEFAULT_ENV, **extra}


@dataclass
class ServerProcess:
    """One `scenarist serve` child. `start()` may be called again after `kill()`/`stop()`;
    it reuses the port and the store, which is what a restart after a crash looks like."""

    workdir: Path
    store_url: str
    catalog: str | None = RELIABILITY_CATALOG  # None: the packaged default catalog
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not started"
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "scenarist", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--store", self.store_url]
        if self.catalog is not None:
            path = self.workdir / "scenarios.yml"
            path.write_text(self.catalog, encoding="utf-8")
            argv += ["--scenarios", str(path)]
        return argv

    def start(self, *, timeout: float = 20.0, require_healthy: bool = True) -> ServerProcess:
        """Spawn and wait until /health answers (200, or any answer when
        `require_healthy` is False: a server whose store is down answers 503)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=hermetic_env(self.env),
                cwd=self.workdir,
            )
        self.starts += 1
        self._wait_answering(timeout, require_healthy)
        return self

    def _wait_answering(self, timeout: float, require_healthy: bool) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"scenarist serve exited with {self.process.returncode}:\n"
                    + self.log_text()[-3000:]
                )
            try:
                response = httpx.get(f"{self.url}/health", timeout=1.0)
                if response.status_code == 200 or not require_healthy:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"scenarist serve on {self.url} not healthy in {timeout}s:\n" + self.log_text()[-3000:]
        )

    def wait_healthy(self, timeout: float) -> float:
        """Poll /health until 200 without restarting anything; return seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.url} did not become healthy again in {timeout}s")

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_bytes(self) -> int:
        return process_rss_bytes(self.pid)

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; the store keeps only what was committed."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it hangs."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
