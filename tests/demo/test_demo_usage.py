"""The demo workers report the CPU each attempt really used, failed attempts too."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarist.demo.workers import run_demo_task
from scenarist.worker import Fatal, WorkerTask


def test_an_attempt_reports_the_cpu_of_its_thread_and_of_child_programs(tmp_path: Path) -> None:
    payload = {"kind": "script", "topic": "cats", "parts": "3"}
    task = WorkerTask("s:script", "s", "script", "text-service", payload, (), 1)
    run_demo_task(task, out_dir=tmp_path)
    usage = task.reported_usage()
    assert usage is not None
    assert set(usage) == {"cpu_seconds", "child_cpu_seconds"}
    assert usage["cpu_seconds"] > 0
    assert usage["child_cpu_seconds"] >= 0


def test_a_failed_attempt_reports_too(tmp_path: Path) -> None:
    task = WorkerTask("s:script", "s", "script", "text-service", {}, (), 1)
    with pytest.raises(Fatal):
        run_demo_task(task, out_dir=tmp_path)
    usage = task.reported_usage()
    assert usage is not None
    assert usage["cpu_seconds"] >= 0
