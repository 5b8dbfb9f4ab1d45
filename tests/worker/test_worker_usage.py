"""A handler reports usage: `task.report_usage(...)` (sent with a failure too) and
`TaskResult(usage=...)`; the server sums every attempt."""

from __future__ import annotations

import pytest

from scenarist.worker import Retryable, TaskResult, Worker, WorkerTask
from tests.worker.server import LiveServer
from tests.worker.test_worker_live import WorkerThread, scenario, submit, task, wait_until


def test_every_attempt_reports_and_the_server_sums_them(live_server: LiveServer) -> None:
    scenario_id = submit(live_server, "Jobs", n=1)
    worker = Worker(live_server.url, wait_seconds=0.5)

    @worker.handler("test-service")
    def flaky(job: WorkerTask) -> TaskResult:
        job.report_usage(gpu_seconds=1.5)
        job.report_usage({"gpu_seconds": 0.5, "tokens": 10})
        if job.attempt == 1:
            raise Retryable("upstream timed out")
        return TaskResult("out/ok", usage={"cost_usd": 0.25})

    runner = WorkerThread(worker).start()
    wait_until(lambda: scenario(live_server, scenario_id)["status"] == "success", timeout=20)
    worker.stop()
    runner.join()
    done = task(live_server, f"{scenario_id}:job_1")
    assert done["usage"] == {"gpu_seconds": 4.0, "tokens": 20.0, "cost_usd": 0.25}
    assert scenario(live_server, scenario_id)["usage"] == done["usage"]


@pytest.mark.parametrize(
    "bad",
    [{"gpu_seconds": -1.0}, {"gpu_seconds": float("nan")}, {"GPU": 1.0}, {"tokens": True}],
)
def test_a_bad_report_raises_in_the_handler(bad: dict[str, float]) -> None:
    job = WorkerTask("s:a", "s", "a", "svc", {}, (), 1)
    with pytest.raises(ValueError, match="usage"):
        job.report_usage(bad)
    assert job.reported_usage() is None
