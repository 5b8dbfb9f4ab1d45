"""A real scenarist API (SQLite store in a temp dir) served by uvicorn on a free loopback
port, in a background thread. Used by the worker SDK, CLI and demo tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from scenarist.api.app import create_app
from scenarist.settings import Settings
from scenarist.worker import Worker

# A small catalog for the SDK tests: a fan-out of independent jobs, and a two-service
# chain so burst mode has work released by another service's completion.
TEST_CATALOG = """\
defaults:
  max_attempts: 3
  timeout_seconds: 30

Jobs:
  description: n independent jobs
  params:
    n: {type: integer, default: 1, minimum: 0, maximum: 50}
    label: {type: string, default: "job"}
  tasks:
    - id: job
      service: test-service
      count: "{{ n }}"
      payload: {label: "{{ label }}", index: "{{ index }}"}

Chain:
  description: first -> second on another service
  params:
    label: {type: string, default: "chain"}
  tasks:
    - id: first
      service: first-service
      payload: {label: "{{ label }}"}
    - id: second
      service: second-service
      depends_on: [first]
      payload: {label: "{{ label }}"}
"""


@dataclass
class LiveServer:
    """`start()` serves the app; `url` is then its base URL; `stop()` shuts it down."""

    workdir: Path
    catalog: str | None = TEST_CATALOG
    reaper_interval: float = 0.2
    url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _socket: socket.socket | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def settings(self) -> Settings:
        self.workdir.mkdir(parents=True, exist_ok=True)
        scenarios = None
        if self.catalog is not None:
            scenarios = self.workdir / "scenarios.yml"
            scenarios.write_text(self.catalog, encoding="utf-8")
        return Settings(
            host="127.0.0.1",
            store=f"sqlite:///{self.workdir / 'scenarist.db'}",
            scenarios=scenarios,
            reaper_interval=self.reaper_interval,
            sse_heartbeat_seconds=1.0,
            **self.extra,  # type: ignore[arg-type]
        )

    def start(self) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(self.settings()), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        self._wait_healthy()
        return self

    def _wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"test server at {self.url} did not become healthy")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """`worker` serving on a background thread until the block ends, then stopped."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(10)
