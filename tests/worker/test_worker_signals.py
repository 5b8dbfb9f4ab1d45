"""`scenarist worker` in its own process: SIGTERM stops leasing, finishes the running task,
and exits cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from scenarist.demo.runner import CLI_BOOTSTRAP
from scenarist.worker import ScenaristClient
from tests.worker.server import LiveServer

SLOW_WORKER = """\
import time
from pathlib import Path

from scenarist.worker import Worker

worker = Worker(concurrency=1, wait_seconds=0.5)


@worker.handler("test-service")
def slow(task):
    Path(f"started-{task.name}").touch()
    time.sleep(1.5)
    return f"done/{task.name}"
"""


def test_sigterm_finishes_the_running_task_then_exits(
    live_server: LiveServer, tmp_path: Path
) -> None:
    (tmp_path / "slow_worker.py").write_text(SLOW_WORKER)
    with ScenaristClient(live_server.url) as client:
        scenario_id = client.submit("Jobs", {"n": 2})["scenario_id"]
    process = subprocess.Popen(
        [sys.executable, "-c", CLI_BOOTSTRAP, "worker", "slow_worker:worker"],
        cwd=tmp_path,
        env={"SCENARIST_URL": live_server.url, "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not list(tmp_path.glob("started-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob("started-*")), "the worker never started a task"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "stopping" in stderr
    assert "1 completed" in stderr
    with ScenaristClient(live_server.url) as client:
        tasks = client.get_scenario(scenario_id)["tasks"]
    assert sorted(t["status"] for t in tasks) == ["queued", "success"]
