"""One run of a worker: one lease loop per lease length, task execution, heartbeats,
shutdown.

`WorkerRun` lives exactly as long as `Worker.run_async`; everything mutable about a run
is here so a `Worker` (configuration and handlers) can be run again. Services that share
a lease length are leased together (`POST /queues/lease`: one long poll for all of them),
and each lease call carries the results finished since the last one (see `reporting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scenarist.worker.client import AsyncScenaristClient, LeasedTask
from scenarist.worker.errors import ApiError, LeaseLostError, NotFoundError, ServerUnreachableError
from scenarist.worker.reporting import (
    REJECTED_RESULT_STATUSES,
    PendingResult,
    Reporter,
    WorkerStats,
    task_context,
)
from scenarist.worker.support import Backoff, DaemonThreads, Slots
from scenarist.worker.task import Handler, WorkerTask
from scenarist.worker.tracing import continue_trace

__all__ = ["HandlerSpec", "LeaseGroup", "RunOptions", "WorkerRun", "WorkerStats"]

log = logging.getLogger("scenarist.worker")

BURST_RECHECK_SECONDS = 0.2
SHARED_SLOTS_MAX_WAIT = 2.0  # long-poll cap when lease loops outnumber slots (see below)
RELEASE_TIMEOUT_SECONDS = 5.0
GATHER_SECONDS = 0.02  # how long a lease call waits for running tasks to finish first


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    service: str
    function: Handler
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class LeaseGroup:
    """Services leased together: a lease call asks for one lease length."""

    services: tuple[str, ...]
    lease_seconds: float

    @property
    def label(self) -> str:
        return ", ".join(self.services)


def lease_groups(specs: Iterable[HandlerSpec]) -> list[LeaseGroup]:
    """One group per lease length, in registration order."""
    by_length: dict[float, list[str]] = {}
    for spec in specs:
        by_length.setdefault(spec.lease_seconds, []).append(spec.service)
    return [LeaseGroup(tuple(services), length) for length, services in by_length.items()]


@dataclass(frozen=True, slots=True)
class RunOptions:
    concurrency: int
    max_tasks: int
    wait_seconds: float
    grace_seconds: float
    worker_id: str
    burst: bool
    # The worker's labels, read at every lease: `Worker.set_labels` changes them in place.
    labels: Mapping[str, str] = field(default_factory=dict)


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
        lease_seconds = {s: spec.lease_seconds for s, spec in self.handlers.items()}
        self.reporter = Reporter(client, lease_seconds, options.worker_id)
        self.stats = self.reporter.stats
        self.slots = Slots(options.concurrency)
        self.threads = DaemonThreads()
        self.stopping = asyncio.Event()
        self.aborting = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.all_finished = asyncio.Event()
        self.drained: set[str] = set()
        self.fatal_error: BaseException | None = None
        self.groups = lease_groups(self.handlers.values())
        # With fewer slots than lease loops, a loop blocked on a slot must not wait behind
        # another loop's long-poll of empty queues, so polls are kept short.
        loops = max(len(self.groups), 1)
        self.per_poll = max(1, min(options.max_tasks, options.concurrency // loops))
        shared = options.concurrency < loops
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
        loops = [asyncio.create_task(self._lease_loop(group)) for group in self.groups]
        await self.stopping.wait()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        self.reporter.stop_piggybacking()
        started = time.monotonic()
        await self._drain_in_flight()
        # Results of tasks that finished late still get a few seconds to reach the server.
        left = self.options.grace_seconds - (time.monotonic() - started)
        await self.reporter.close(timeout=max(left, RELEASE_TIMEOUT_SECONDS))
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

    async def _lease_loop(self, group: LeaseGroup) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            taken = await self.slots.take(self.per_poll)
            taken, results = await self._gather_round(taken)
            try:
                leased = await self._lease_round(group, taken, results)
            except ServerUnreachableError as exc:
                self.slots.give_back(taken)
                delay = backoff.next_delay()
                log.warning("lease on %s failed (%s); retrying in %.1fs", group.label, exc, delay)
                await self._pause(delay)
                continue
            except ApiError as exc:
                self.slots.give_back(taken)
                log.error("server refused to lease %s: %s", group.label, exc)
                self.fatal_error = exc
                self.stopping.set()
                return
            backoff.reset()
            self.slots.give_back(taken - len(leased))
            for task in leased:
                self._start(task)
            if self.options.burst and not leased:
                await self._note_drained(group)
            elif leased:
                self.drained.difference_update(group.services)

    async def _gather_round(self, taken: int) -> tuple[int, list[PendingResult]]:
        """What the next lease call carries: the results finished by then, and the slots
        it asks tasks for (those freed while gathering join the `taken` ones)."""
        self.reporter.leases_coming += 1
        try:
            await self._gather_finished()
            taken += self.slots.take_free(self.per_poll - taken)
            return taken, self.reporter.take_for_lease()
        finally:
            self.reporter.lease_sent()

    async def _lease_round(
        self, group: LeaseGroup, max_tasks: int, results: list[PendingResult]
    ) -> list[LeasedTask]:
        try:
            return await self._lease(group, max_tasks, results)
        except ApiError as exc:
            if not results or exc.status_code not in REJECTED_RESULT_STATUSES:
                self.reporter.put_back(results)  # sent at stop, each then gets its verdict
                raise
            # A refused result must not cost the lease: each gets its own verdict instead.
            self.reporter.send_one_by_one(results, exc)
            return await self._lease(group, max_tasks, [])

    async def _gather_finished(self) -> None:
        """Give tasks that are about to finish a moment, so their results and slots join
        this lease call instead of costing requests of their own."""
        if not self.in_flight:
            return
        self.all_finished.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_finished.wait(), GATHER_SECONDS)

    async def _lease(
        self, group: LeaseGroup, max_tasks: int, results: Sequence[PendingResult]
    ) -> list[LeasedTask]:
        try:
            leased, outcomes = await self.client.lease_services(
                group.services,
                max_tasks=max_tasks,
                lease_seconds=group.lease_seconds,
                wait_seconds=self.poll_wait,
                worker_id=self.options.worker_id,
                complete=[r.item for r in results],
                labels=dict(self.options.labels),
            )
        except ServerUnreachableError as exc:
            self.reporter.put_back(results, exc)
            raise
        except asyncio.CancelledError:
            self.reporter.put_back(results)  # the answer is lost: send them again
            raise
        self.reporter.settle(results, outcomes)
        return leased

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the run is stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return

    async def _note_drained(self, group: LeaseGroup) -> None:
        """Burst mode ends when every service saw an empty queue after the last task
        finished and its result reached the server (a finished task may release work
        for another service) and the server has no retry waiting out its backoff for us."""
        self.drained.update(group.services)
        everything_drained = (
            self.drained >= set(self.handlers) and not self.in_flight and self.reporter.idle
        )
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
        if not self.in_flight:
            self.all_finished.set()
        self.drained.clear()
        self.slots.give_back(1)

    async def _execute(self, leased: LeasedTask) -> None:
        context = task_context(leased, self.options.worker_id)
        task = WorkerTask.from_lease(leased)
        spec = self.handlers[leased.service]
        log.info("started %s (attempt %d)", leased.id, leased.attempt, extra=context)
        function = continue_trace(spec.function, leased.traceparent)
        work = asyncio.ensure_future(_call_handler(function, task, self.threads))
        keeper = asyncio.create_task(self._keep_alive(leased, spec.lease_seconds, task, work))
        try:
            outcome = await work
        except asyncio.CancelledError:
            await self._handle_cancel(leased, task, context)
            return
        except Exception as exc:
            await self.reporter.report_failure(leased, exc, usage=task.reported_usage())
            return
        finally:
            keeper.cancel()
        await self.reporter.report_success(leased, outcome, task)

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
        release = asyncio.ensure_future(self.reporter.release(leased, RELEASE_TIMEOUT_SECONDS))
        await asyncio.shield(release)

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
        context = task_context(leased, self.options.worker_id)
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


async def _call_handler(function: Handler, task: WorkerTask, threads: DaemonThreads) -> object:
    """Async handlers run on the loop; sync handlers on a daemon thread (reused when idle)."""
    if inspect.iscoroutinefunction(function):
        return await function(task)
    value = await threads.run(function, task)
    if inspect.isawaitable(value):  # a sync callable that returned a coroutine
        return await value
    return value
