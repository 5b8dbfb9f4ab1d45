"""`Worker`: register handlers per service, then `run()`.

Shutdown (SIGTERM or SIGINT, or `Worker.stop()`): the worker stops leasing at once and
lets in-flight tasks finish for up to `grace_seconds`, heartbeating them meanwhile, and
reports their results as usual. Tasks still running when the grace period ends (or when a
second signal arrives) are *released*: the worker reports them failed as retryable
("worker stopped before the task finished"), so the server requeues them immediately
instead of waiting for their leases to lapse. Async handlers are cancelled; sync handlers
run on daemon threads, see `WorkerTask.should_stop` turn true, and are abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx

from scenarist.core.errors import ScenaristError
from scenarist.core.workers import check_labels
from scenarist.worker.client import DEFAULT_URL, AsyncScenaristClient
from scenarist.worker.loop import HandlerSpec, RunOptions, WorkerRun, WorkerStats
from scenarist.worker.task import Handler

H = TypeVar("H", bound=Handler)
log = logging.getLogger("scenarist.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    """A scenarist worker: handlers by service name, leasing over HTTP.

    `concurrency` bounds the tasks running at once across all services; `max_tasks`
    bounds one lease batch (default: `concurrency`); `wait_seconds` is the long-poll;
    `lease_seconds` the lease asked for, renewed every third of it while a task runs.
    `labels` (e.g. `{"gpu": "a100", "model": "sdxl"}`) go with every lease to the
    workers registry (`GET /workers`); `set_labels` changes them for the next lease.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        max_tasks: int | None = None,
        wait_seconds: float = 20.0,
        worker_id: str | None = None,
        grace_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.url = url
        self.token = token
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.max_tasks = max_tasks or concurrency
        self.wait_seconds = wait_seconds
        self.worker_id = worker_id or default_worker_id()
        self.grace_seconds = grace_seconds
        self._labels: dict[str, str] = {}
        self.set_labels(labels or {})
        self._transport = transport
        self._handlers: dict[str, HandlerSpec] = {}
        self._run: WorkerRun | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_early = threading.Event()

    @property
    def services(self) -> list[str]:
        return list(self._handlers)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._labels)

    def set_labels(self, labels: Mapping[str, str]) -> None:
        """Replace the labels; the next lease sends them (e.g. after loading another
        model). ValueError when they break the registry's bounds."""
        try:
            checked = check_labels(labels)
        except ScenaristError as exc:
            raise ValueError(str(exc)) from exc
        self._labels.clear()  # in place: a running worker's lease loop reads this dict
        self._labels.update(checked)

    def handler(self, service: str, *, lease_seconds: float | None = None) -> Callable[[H], H]:
        """Decorator: `@worker.handler("image-service")` on a sync or async function that
        takes a `WorkerTask` and returns a `TaskResult`, a result_ref string, or None.
        Raise `Fatal` to fail for good, anything else to let the server retry."""

        def register(function: H) -> H:
            self.add_handler(service, function, lease_seconds=lease_seconds)
            return function

        return register

    def add_handler(
        self, service: str, function: Handler, *, lease_seconds: float | None = None
    ) -> None:
        if service in self._handlers:
            raise ValueError(f"service {service!r} already has a handler")
        lease = lease_seconds if lease_seconds is not None else self.lease_seconds
        self._handlers[service] = HandlerSpec(service, function, lease)

    def run(self, *, burst: bool = False, install_signal_handlers: bool = True) -> WorkerStats:
        """Block until stopped (or, with `burst`, until every queue is drained)."""
        return asyncio.run(
            self.run_async(burst=burst, install_signal_handlers=install_signal_handlers)
        )

    async def run_async(
        self, *, burst: bool = False, install_signal_handlers: bool = True
    ) -> WorkerStats:
        if not self._handlers:
            raise ValueError("the worker has no handlers; register one with @worker.handler")
        options = RunOptions(
            concurrency=self.concurrency,
            max_tasks=self.max_tasks,
            wait_seconds=self.wait_seconds,
            grace_seconds=self.grace_seconds,
            worker_id=self.worker_id,
            burst=burst,
            labels=self._labels,
        )
        loop = asyncio.get_running_loop()
        async with AsyncScenaristClient(self.url, self.token, transport=self._transport) as client:
            run = WorkerRun(client, self._handlers, options)
            self._run, self._loop = run, loop
            if self._stop_early.is_set():
                run.request_stop()
            signals = self._install_signals(loop, run) if install_signal_handlers else []
            log.info(
                "worker %s serving %s at %s (concurrency %d)",
                self.worker_id, ", ".join(self._handlers), self.url, self.concurrency,
            )  # fmt: skip
            try:
                return await run.run()
            finally:
                for sig in signals:
                    loop.remove_signal_handler(sig)
                self._run, self._loop = None, None
                self._stop_early.clear()

    def stop(self) -> None:
        """Ask a running worker to stop, from any thread. A second call stops at once."""
        run, loop = self._run, self._loop
        if run is None or loop is None:
            self._stop_early.set()
            return
        loop.call_soon_threadsafe(run.request_stop)

    @staticmethod
    def _install_signals(loop: asyncio.AbstractEventLoop, run: WorkerRun) -> list[signal.Signals]:
        if threading.current_thread() is not threading.main_thread():
            return []  # signals are only delivered to the main thread
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, run.request_stop)
        return list(STOP_SIGNALS)
