"""Fixtures for the fault drills: `scenarist serve` and `redis-server` child processes,
each stopped by its pid at teardown whatever the test did to it.

`SCENARIST_CHAOS=1` turns on the heavier variants (more requests, more kills); CI runs
the bounded defaults. `benchmarks/chaos.py` runs the same drills at full size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import ServerProcess
from tests.support.redis_server import RedisServer

CHAOS = os.environ.get("SCENARIST_CHAOS", "") not in ("", "0")

ServerFactory = Callable[..., ServerProcess]
RedisFactory = Callable[..., RedisServer]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a fault drill (bounded unless SCENARIST_CHAOS=1)")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """`start_server(store_url, **fields)` -> a started ServerProcess."""
    started: list[ServerProcess] = []

    def start(store_url: str, **fields: Any) -> ServerProcess:
        workdir = tmp_path / f"server-{len(started)}"
        server = ServerProcess(workdir=workdir, store_url=store_url, **fields)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[RedisFactory]:
    """`start_redis(*extra_args)` -> a started private redis-server."""
    started: list[RedisServer] = []

    def start(*extra_args: str) -> RedisServer:
        server = RedisServer(workdir=tmp_path / f"redis-{len(started)}", extra_args=extra_args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, start_redis: RedisFactory) -> str:
    """The same drill against each backend (Redis with AOF fsync always, its durable mode)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scenarist.db'}"
    return start_redis("--appendonly", "yes", "--appendfsync", "always").url
