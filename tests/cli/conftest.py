"""CLI fixtures: a live server (a real app on loopback with the test catalog)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.server import LiveServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(workdir=tmp_path / "server").start()
    try:
        yield live
    finally:
        live.stop()
