"""Shared fixtures for the demo media tests.

Every test runs with espeak-ng hidden unless it installs its own fake, so the tone path is
what runs here whether or not the machine has espeak-ng installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scenarist.demo.artefacts import DemoResult
from scenarist.demo.handlers import handle_task

SERVICE_OF_KIND = {
    "script": "text-service",
    "slide_prompt": "text-service",
    "voice": "audio-service",
    "slide_image": "image-service",
    "video": "video-service",
}


@pytest.fixture(autouse=True)
def hide_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    _route_espeak(monkeypatch, None)


@pytest.fixture
def use_espeak(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Call with a program path to make `shutil.which("espeak-ng")` find it."""

    def install(program: Path) -> None:
        _route_espeak(monkeypatch, program)

    return install


def _route_espeak(monkeypatch: pytest.MonkeyPatch, program: Path | None) -> None:
    real_which = shutil.which

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        if name == "espeak-ng":
            return None if program is None else str(program)
        return real_which(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)


@dataclass
class DemoRun:
    """Calls the demo handlers the way a worker would, into one output directory."""

    out_dir: Path
    topic: str = "Bees"

    def run(self, kind: str, inputs: Sequence[dict[str, Any]] = (), **fields: Any) -> DemoResult:
        task_payload = {"kind": kind, "topic": self.topic, **fields}
        return handle_task(SERVICE_OF_KIND[kind], task_payload, inputs, self.out_dir)

    @staticmethod
    def as_input(task: str, result: DemoResult) -> dict[str, Any]:
        """An upstream input the way a leased task carries it."""
        return {"task": task, "result_ref": result.result_ref, "result": result.result}

    def leftover_temp_files(self) -> list[Path]:
        """Temporary files an atomic write would leave behind had it not cleaned up."""
        return [path for path in self.out_dir.iterdir() if path.name.startswith(".")]


@pytest.fixture
def demo(tmp_path: Path) -> DemoRun:
    return DemoRun(out_dir=tmp_path / "out")
