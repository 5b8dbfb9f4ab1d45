"""One run of a worker: lease loops per service, task execution, heartbeats, shutdown.

`WorkerRun` lives exactly as long as `Worker.run_async`; everything mutable about a run
is here so a `Worker` (configuration and handlers) can be run again.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scenarist.worker.client import AsyncScenaristClient, LeasedTask
from scenarist.worker.errors import (
    ApiError,
    Fatal,
    LeaseLostError,
    NotFoundError,
    ServerUnreachableError,
)
from scenarist.worker.support import Backoff, Slots, run_in_daemon_thread
from scenarist.worker.task import Handler, TaskResult, WorkerTask, as_task_result

log = logging.getLogger("scenarist.worker")

MAX_ERROR_CHARS = 4000
BURST_RECHECK_SECONDS = 0.2
SHARED_SLOTS_MAX_WAIT = 2.0  # long-poll cap when services outnumber slots (see below)
RELEASE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    service: str
    function: Handler
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class RunOptions:
    concurrency: int
    max_tasks: int
    wait_seconds: float
    grace_seconds: float
    worker_id: str
    burst: bool


@dataclass(slots=True)
class WorkerStats:
    """Counts of one run: tasks completed, failed (reported), and dropped (lease lost)."""

    completed: int = 0
    failed: int = 0
    dropped: int = 0


class WorkerRun:
    def __init__(
        self,
        client: AsyncScenaristClient,
        handlers: Mapping[str, HandlerSpec],
        options: RunOptions,
    ) -> None:
        self.client = client
        self.handlers = dict(handlers)
        self.options = options
        self.stats = WorkerStats()
        self.slots = Slots(options.concurrency)
        self.stopping = asyncio.Event()
        self.aborting = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.drained: set[str] = set()
        self.fatal_error: BaseException | None = None
        # With fewer slots than services, a loop blocked on a slot must not wait behind
        # another service's long-poll of an empty queue, so polls are kept short.
        services = max(len(self.handlers), 1)
        self.per_poll = max(1, min(options.max_tasks, options.concurrency // services))
        shared = options.concurrency < services
        self.poll_wait = 0.0 if options.burst else options.wait_seconds
        if shared:
            self.poll_wait = min(self.poll_wait, SHARED_SLOTS_MAX_WAIT)

    # --- lifecycle ----------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: stop leasing and let in-flight tasks finish. Second: stop now."""
        if self.stopping.is_set():
            log.warning("stopping now: in-flight tasks are released to the server")
            self.aborting.set()
            return
        log.info(
            "stopping: no new leases; waiting up to %gs for %d in-flight task(s)",
            self.options.grace_seconds,
            len(self.in_flight),
        )
        self.stopping.set()

    async def run(self) -> WorkerStats:
        loops = [asyncio.create_task(self._lease_loop(s)) for s in self.handlers]
        await self.stopping.wait()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await self._drain_in_flight()
        if self.fatal_error is not None:
            raise self.fatal_error
        return self.stats

    async def _drain_in_flight(self) -> None:
        if not self.in_flight:
            return
        abort: asyncio.Future[Any] = asyncio.ensure_future(self.aborting.wait())
        all_done: asyncio.Future[Any] = asyncio.gather(*self.in_flight, return_exceptions=True)
        await asyncio.wait(
            {abort, all_done}, timeout=self.options.grace_seconds, return_when="FIRST_COMPLETED"
        )
        abort.cancel()
        leftovers = [t for t in self.in_flight if not t.done()]
        if leftovers:
            log.warning("releasing %d unfinished task(s) to the server", len(leftovers))
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
        await asyncio.gather(all_done, return_exceptions=True)

    # --- leasing ------------------------------------------------------------------------

    async def _lease_loop(self, service: str) -> None:
        backoff = Backoff()
        spec = self.handlers[service]
        while not self.stopping.is_set():
            taken = await self.slots.take(self.per_poll)
            try:
                leased = await self.client.lease(
                    service,
                    max_tasks=taken,
                    lease_seconds=spec.lease_seconds,
                    wait_seconds=self.poll_wait,
                    worker_id=self.options.worker_id,
                )
            except ServerUnreachableError as exc:
                self.slots.give_back(taken)
                delay = backoff.next_delay()
                log.warning("lease on %s failed (%s); retrying in %.1fs", service, exc, delay)
                await self._pause(delay)
                continue
            except ApiError as exc:
                self.slots.give_back(taken)
                log.error("server refused to lease %s: %s", service, exc)
                self.fatal_error = exc
                self.stopping.set()
                return
            backoff.reset()
            self.slots.give_back(taken - len(leased))
            for task in leased:
                self._start(task)
            if self.options.burst and not leased:
                await self._note_drained(service)
            elif leased:
                self.drained.discard(service)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the run is stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def _note_drained(self, service: str) -> None:
        """Burst mode ends when every service saw an empty queue after the last task
        finished (a finished task may release work for another service) and the server
        has no retry waiting out its backoff for us."""
        self.drained.add(service)
        everything_drained = self.drained >= set(self.handlers) and not self.in_flight
        if everything_drained and await self._nothing_waiting():
            log.info("burst: every queue is drained; exiting")
            self.stopping.set()
            return
        await self._pause(BURST_RECHECK_SECONDS)

    async def _nothing_waiting(self) -> bool:
        try:
            stats = await self.client.get("/queues")
        except (NotFoundError, ServerUnreachableError):
            return True
        rows = stats.get("queues", []) if isinstance(stats, dict) else stats
        for row in rows or ():
            waiting = int(row.get("ready", 0)) + int(row.get("delayed", 0))
            if row.get("service") in self.handlers and waiting > 0:
                return False
        return True

    # --- executing ----------------------------------------------------------------------

    def _start(self, leased: LeasedTask) -> None:
        runner = asyncio.create_task(self._execute(leased), name=f"task {leased.id}")
        self.in_flight.add(runner)
        runner.add_done_callback(self._finished)

    def _finished(self, runner: asyncio.Task[None]) -> None:
        self.in_flight.discard(runner)
        self.drained.clear()
        self.slots.give_back(1)

    async def _execute(self, leased: LeasedTask) -> None:
        context = _context(leased, self.options.worker_id)
        task = WorkerTask.from_lease(leased)
        spec = self.handlers[leased.service]
        log.info("started %s (attempt %d)", leased.id, leased.attempt, extra=context)
        work = asyncio.ensure_future(_call_handler(spec.function, task))
        keeper = asyncio.create_task(self._keep_alive(leased, spec.lease_seconds, task, work))
        try:
            outcome = await work
        except asyncio.CancelledError:
            await self._handle_cancel(leased, task, context)
            return
        except Exception as exc:
            await self._report_failure(leased, exc, context)
            return
        finally:
            keeper.cancel()
        await self._report_success(leased, outcome, context)

    async def _handle_cancel(
        self, leased: LeasedTask, task: WorkerTask, context: dict[str, Any]
    ) -> None:
        current = asyncio.current_task()
        shutting_down = current is not None and current.cancelling() > 0
        task.lease_lost.set()
        if not shutting_down:
            self.stats.dropped += 1
            log.warning("dropped %s: its lease is no longer current", leased.id, extra=context)
            return
        # Shutdown ran out of grace: hand the task back now instead of letting it wait
        # for the reaper. The send runs in its own task so this cancellation cannot cut it.
        release = self._send(
            lambda: self.client.fail(
                leased.id, leased.lease_token, "worker stopped before the task finished"
            ),
            leased,
            "release",
            context,
            give_up_after=RELEASE_TIMEOUT_SECONDS,
        )
        await asyncio.shield(asyncio.ensure_future(release))

    async def _keep_alive(
        self,
        leased: LeasedTask,
        lease_seconds: float,
        task: WorkerTask,
        work: asyncio.Future[Any],
    ) -> None:
        """Heartbeat every third of the lease; on a lost lease, stop the handler."""
        interval = lease_seconds / 3
        expires = time.monotonic() + lease_seconds
        backoff = Backoff(base=0.25, cap=interval)
        delay = interval
        context = _context(leased, self.options.worker_id)
        while True:
            await asyncio.sleep(delay)
            try:
                await self.client.heartbeat(
                    leased.id, leased.lease_token, lease_seconds=lease_seconds
                )
            except LeaseLostError as exc:
                log.warning("lease of %s lost: %s", leased.id, exc.detail, extra=context)
                task.lease_lost.set()
                work.cancel()
                return
            except (ServerUnreachableError, ApiError) as exc:
                left = expires - time.monotonic()
                delay = max(0.05, min(backoff.next_delay(), left / 2))
                log.warning("heartbeat of %s failed: %s", leased.id, exc, extra=context)
                continue
            expires = time.monotonic() + lease_seconds
            backoff.reset()
            delay = interval

    # --- reporting ----------------------------------------------------------------------

    async def _report_success(
        self, leased: LeasedTask, outcome: object, context: dict[str, Any]
    ) -> None:
        try:
            result = as_task_result(outcome, task_id=leased.id)
        except TypeError as exc:
            await self._report_failure(leased, Fatal(str(exc)), context)
            return
        sent = await self._send(
            lambda: self.client.complete(
                leased.id, leased.lease_token, result.result_ref, result.result
            ),
            leased,
            "complete",
            context,
            on_rejected=lambda exc: self._reject_result(leased, result, exc, context),
        )
        if sent:
            self.stats.completed += 1
            log.info("completed %s -> %s", leased.id, result.result_ref, extra=context)

    async def _reject_result(
        self, leased: LeasedTask, result: TaskResult, exc: ApiError, context: dict[str, Any]
    ) -> None:
        """The server refused the result itself (too large, malformed): fail the task for
        good with the reason, rather than leaving it processing until its lease lapses."""
        log.error("server rejected the result of %s: %s", leased.id, exc, extra=context)
        await self._report_failure(
            leased, Fatal(f"server rejected result {result.result_ref!r}: {exc.detail}"), context
        )

    async def _report_failure(
        self, leased: LeasedTask, exc: BaseException, context: dict[str, Any]
    ) -> None:
        retryable = not isinstance(exc, Fatal)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        log.warning(
            "failed %s (%s): %s", leased.id, "retryable" if retryable else "fatal", error,
            extra=context, exc_info=not isinstance(exc, Fatal),
        )  # fmt: skip
        sent = await self._send(
            lambda: self.client.fail(leased.id, leased.lease_token, error, retryable=retryable),
            leased,
            "fail",
            context,
        )
        if sent:
            self.stats.failed += 1

    async def _send(
        self,
        request: Callable[[], Awaitable[Any]],
        leased: LeasedTask,
        what: str,
        context: dict[str, Any],
        *,
        give_up_after: float | None = None,
        on_rejected: Callable[[ApiError], Awaitable[None]] | None = None,
    ) -> bool:
        """Send a completion or failure, retrying while the server is unreachable. Past
        the lease there is no point: the server will have requeued the task."""
        deadline = time.monotonic() + (give_up_after or self.handlers[leased.service].lease_seconds)
        backoff = Backoff()
        while True:
            try:
                await request()
                return True
            except LeaseLostError as exc:
                self.stats.dropped += 1
                log.warning("%s of %s ignored: %s", what, leased.id, exc.detail, extra=context)
                return False
            except ServerUnreachableError as exc:
                if time.monotonic() >= deadline:
                    log.error("gave up sending %s of %s: %s", what, leased.id, exc, extra=context)
                    return False
                await asyncio.sleep(backoff.next_delay())
            except ApiError as exc:
                if on_rejected is not None and exc.status_code in (400, 413, 422):
                    await on_rejected(exc)
                else:
                    log.error("%s of %s refused: %s", what, leased.id, exc, extra=context)
                return False


async def _call_handler(function: Handler, task: WorkerTask) -> object:
    """Async handlers run on the loop; sync handlers on a daemon thread each."""
    if inspect.iscoroutinefunction(function):
        return await function(task)
    value = await run_in_daemon_thread(function, task)
    if inspect.isawaitable(value):  # a sync callable that returned a coroutine
        return await value
    return value


def _context(leased: LeasedTask, worker_id: str) -> dict[str, Any]:
    return {
        "task_id": leased.id,
        "scenario_id": leased.scenario_id,
        "service": leased.service,
        "attempt": leased.attempt,
        "worker_id": worker_id,
    }
