"""A Worker's labels and SDK version reach the workers registry with every lease, and
`set_labels` changes them for the next one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scenarist import __version__
from scenarist.worker import Worker, WorkerTask
from scenarist.worker.protocol import Calls
from tests.worker.server import LiveServer
from tests.worker.test_worker_live import WorkerThread, submit


def workers(server: LiveServer) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = httpx.get(f"{server.url}/workers").json()["workers"]
    return listed


def test_a_worker_reports_its_labels_and_changes_them(live_server: LiveServer) -> None:
    submit(live_server, "Jobs", n=1)
    worker = Worker(live_server.url, wait_seconds=0.5, worker_id="gpu-1", labels={"gpu": "a100"})

    @worker.handler("test-service")
    def job(task: WorkerTask) -> str:
        return "out/ok"

    WorkerThread(worker, burst=True).start().join()
    [seen] = workers(live_server)
    assert (seen["worker_id"], seen["labels"]) == ("gpu-1", {"gpu": "a100"})
    assert (seen["services"], seen["sdk_version"]) == (["test-service"], __version__)
    worker.set_labels({"gpu": "a100", "model": "flux"})
    WorkerThread(worker, burst=True).start().join()
    [seen] = workers(live_server)
    assert seen["labels"] == {"gpu": "a100", "model": "flux"}


def test_labels_out_of_bounds_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="label name"):
        Worker("http://127.0.0.1:1", labels={"bad key": "x"})
    worker = Worker("http://127.0.0.1:1", labels={"gpu": "a100"})
    with pytest.raises(ValueError, match="at most 16 labels"):
        worker.set_labels({f"k{i}": "v" for i in range(17)})
    assert worker.labels == {"gpu": "a100"}  # unchanged


def test_only_a_named_worker_sends_labels_and_its_sdk_version() -> None:
    named = Calls.lease_services(
        ["s"], max_tasks=1, lease_seconds=None, wait=0.0, worker_id="w", complete=(),
        labels={"gpu": "a100"},
    )  # fmt: skip
    assert named.body is not None
    assert (named.body["labels"], named.body["sdk_version"]) == ({"gpu": "a100"}, __version__)
    anonymous = Calls.lease_services(
        ["s"], max_tasks=1, lease_seconds=None, wait=0.0, worker_id=None, complete=()
    )
    assert anonymous.body is not None
    assert "labels" not in anonymous.body
    assert "sdk_version" not in anonymous.body
