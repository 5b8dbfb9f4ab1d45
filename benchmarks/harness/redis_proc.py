"""A dedicated `redis-server` per benchmark run, on a free loopback port, stopped by pid.

No benchmark ever touches a shared Redis: each run starts from an empty instance, so its
memory figure belongs to the system under test alone.
"""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.processes import ManagedProcess

_HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not on PATH (apt-get install -y redis-server)")
    return found


def _command(port: int, line: bytes, timeout_s: float = 2.0) -> bytes:
    """Send one inline command and return the raw reply (small replies only)."""
    with socket.create_connection((_HOST, port), timeout=timeout_s) as sock:
        sock.sendall(line + b"\r\n")
        reply = b""
        while True:
            chunk = sock.recv(65536)
            reply += chunk
            if not chunk or _reply_complete(reply):
                return reply


def _reply_complete(reply: bytes) -> bool:
    if not reply.endswith(b"\r\n"):
        return False
    if not reply.startswith(b"$"):
        return True
    header, _, body = reply.partition(b"\r\n")
    return len(body) >= int(header[1:]) + 2


def parse_info(reply: bytes) -> dict[str, str]:
    """Fields of an INFO bulk reply (`$<len>\\r\\nkey:value\\r\\n...`)."""
    _, _, body = reply.partition(b"\r\n")
    fields = {}
    for line in body.decode(errors="replace").splitlines():
        key, separator, value = line.partition(":")
        if separator and not key.startswith("#"):
            fields[key] = value
    return fields


@dataclass
class RedisProcess:
    workdir: Path
    port: int = 0
    managed: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        if self.managed is None:
            raise RuntimeError("redis-server is not started")
        return self.managed.pid

    def start(self, timeout_s: float = 10.0) -> RedisProcess:
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--bind", _HOST,
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        self.managed = ManagedProcess.spawn("redis-server", args, self.workdir / "redis.log")
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.managed is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.managed.is_running():
                raise RuntimeError(f"redis-server exited: {self.managed.log_tail()}")
            try:
                if _command(self.port, b"PING", timeout_s=0.2).startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout_s}s")

    def used_memory_bytes(self) -> int:
        return int(parse_info(_command(self.port, b"INFO memory"))["used_memory"])

    def version(self) -> str:
        return parse_info(_command(self.port, b"INFO server")).get("redis_version", "unknown")

    def stop(self) -> None:
        if self.managed is not None:
            self.managed.stop()
