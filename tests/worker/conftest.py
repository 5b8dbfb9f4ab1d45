from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.server import LiveServer


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(workdir=tmp_path / "server").start()
    try:
        yield server
    finally:
        server.stop()
