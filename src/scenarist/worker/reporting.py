"""Reporting what handlers did: successes ride on the next lease call, failures go alone.

A finished result waits in the outbox for the lease call the loop is about to make (the
server applies the `complete` items before it leases, so a round is one request). When no
lease call is coming soon (a long poll is already in flight, every slot is busy, the run
is stopping), the outbox is flushed with one `POST /tasks/complete` instead, so a result
never waits on a long poll: its lease would lapse, and the tasks it releases would wait.
Every item's outcome is handled as a single completion's answer would be.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scenarist.core.errors import ScenaristError
from scenarist.core.usage import add_usage, check_usage
from scenarist.worker.client import AsyncScenaristClient, CompletionItem, LeasedTask
from scenarist.worker.errors import (
    ApiError,
    Fatal,
    LeaseLostError,
    NotFoundError,
    ServerUnreachableError,
)
from scenarist.worker.support import Backoff
from scenarist.worker.task import TaskResult, WorkerTask, as_task_result

log = logging.getLogger("scenarist.worker")

MAX_ERROR_CHARS = 4000
PIGGYBACK_WAIT_SECONDS = 0.01  # how long a result waits for a lease call to carry it
MAX_COMPLETIONS_PER_REQUEST = 100
REJECTED_RESULT_STATUSES = (400, 413, 422)  # the result itself is refused: retrying cannot help
BATCH_PATH = "/tasks/complete"


@dataclass(slots=True)
class WorkerStats:
    """Counts of one run: tasks completed, failed (reported), and dropped (lease lost)."""

    completed: int = 0
    failed: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class PendingResult:
    """A handler's result on its way to the server. Past `deadline` (monotonic) the lease
    has lapsed and the server requeued the task: sending it is pointless."""

    leased: LeasedTask
    result: TaskResult
    deadline: float
    usage: Mapping[str, float] | None = None  # the handler's reports plus the result's

    @property
    def item(self) -> CompletionItem:
        leased, result = self.leased, self.result
        return CompletionItem(
            leased.id, leased.lease_token, result.result_ref, result.result, self.usage
        )


def task_context(leased: LeasedTask, worker_id: str) -> dict[str, Any]:
    return {
        "task_id": leased.id,
        "scenario_id": leased.scenario_id,
        "service": leased.service,
        "attempt": leased.attempt,
        "worker_id": worker_id,
    }


class Reporter:
    """Sends results and failures for one run and counts them in `stats`."""

    def __init__(
        self,
        client: AsyncScenaristClient,
        lease_seconds: Mapping[str, float],
        worker_id: str,
    ) -> None:
        self.client = client
        self.lease_seconds = dict(lease_seconds)
        self.worker_id = worker_id
        self.stats = WorkerStats()
        self.leases_coming = 0  # lease loops about to send a request that takes the outbox
        self._outbox: list[PendingResult] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent and nothing is being sent."""
        return not self._outbox and not self._sending

    # --- results: the outbox ------------------------------------------------------------

    async def report_success(
        self, leased: LeasedTask, outcome: object, task: WorkerTask | None = None
    ) -> None:
        reported = None if task is None else task.reported_usage()
        try:
            result = as_task_result(outcome, task_id=leased.id)
            usage = add_usage(reported, check_usage(result.usage, "TaskResult.usage"))
        except (TypeError, ScenaristError) as exc:
            await self.report_failure(leased, Fatal(str(exc)), usage=reported)
            return
        deadline = time.monotonic() + self.lease_seconds[leased.service]
        self._outbox.append(PendingResult(leased, result, deadline, usage))
        self._schedule_flush()

    def take_for_lease(self) -> list[PendingResult]:
        """The results the next lease call carries (its `complete` field)."""
        batch = self._outbox[:MAX_COMPLETIONS_PER_REQUEST]
        del self._outbox[:MAX_COMPLETIONS_PER_REQUEST]
        return batch

    def lease_sent(self) -> None:
        """A lease loop is no longer about to lease: results left behind (or added while
        it gathered) must not wait for it."""
        self.leases_coming -= 1
        if self._outbox:
            self._schedule_flush()

    def put_back(self, batch: Sequence[PendingResult], why: Exception | None = None) -> None:
        """A request carrying `batch` failed or was cut short: send the results again
        (a completion the server did apply reads as a duplicate, which is fine)."""
        if why is not None:
            batch = self._unexpired(batch, why)
        self._outbox[:0] = batch
        if self._outbox:
            self._schedule_flush()

    def stop_piggybacking(self) -> None:
        """The run is stopping: no lease call will come, so results go out at once."""
        self._stopping = True
        if self._outbox:
            self._flush_now()

    async def close(self, timeout: float) -> None:
        """Send whatever is left and wait up to `timeout` for every report's answer."""
        self.stop_piggybacking()
        deadline = time.monotonic() + timeout
        while self._sending and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._sending), timeout=left)
        if self._sending:
            log.error("gave up sending %d report(s) at shutdown", len(self._sending))
            for sender in list(self._sending):
                sender.cancel()
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _schedule_flush(self) -> None:
        if self._stopping:
            self._flush_now()
        elif self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(PIGGYBACK_WAIT_SECONDS, self._flush_unless_leasing)

    def _flush_unless_leasing(self) -> None:
        self._flush_timer = None
        if not self.leases_coming:  # otherwise `lease_sent` looks again
            self._flush_now()

    def _flush_now(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        while self._outbox:
            self.spawn(self._send_batch(self.take_for_lease()))

    def spawn(self, report: Awaitable[None]) -> None:
        """Run a report in the background; `close` waits for it."""
        sender = asyncio.ensure_future(report)
        self._sending.add(sender)
        sender.add_done_callback(self._sending.discard)

    async def _send_batch(self, batch: list[PendingResult]) -> None:
        backoff = Backoff()
        while batch:
            try:
                outcomes = await self.client.complete_many([p.item for p in batch])
            except ServerUnreachableError as exc:
                batch = self._unexpired(batch, exc)
                if batch:
                    await asyncio.sleep(backoff.next_delay())
                continue
            except ApiError as exc:
                self.send_one_by_one(batch, exc)
                return
            self.settle(batch, outcomes)
            return

    def send_one_by_one(self, batch: Sequence[PendingResult], exc: ApiError) -> None:
        """A request carrying `batch` was refused as a whole (a result too large or
        malformed, say): each result alone gets the answer a single completion gets."""
        log.warning("%d result(s) refused together (%s); sending them one by one", len(batch), exc)
        for pending in batch:
            self.spawn(self._send_one(pending))

    async def _send_one(self, pending: PendingResult) -> None:
        leased, result = pending.leased, pending.result
        await self._send(
            lambda: self.client.complete(
                leased.id, leased.lease_token, result.result_ref, result.result, usage=pending.usage
            ),
            leased,
            "complete",
            on_sent=lambda: self._completed(pending),
            on_rejected=lambda exc: self._reject_result(pending, exc),
            give_up_after=pending.deadline - time.monotonic(),
        )

    def settle(self, batch: Sequence[PendingResult], outcomes: Sequence[Any]) -> None:
        """Count and log the server's verdict on each result, in order."""
        retry: list[PendingResult] = []
        for index, pending in enumerate(batch):
            outcome = outcomes[index] if index < len(outcomes) else None
            if isinstance(outcome, Mapping) and outcome.get("ok"):
                self._completed(pending)
                continue
            refusal = _refusal(outcome)
            if isinstance(refusal, ServerUnreachableError):
                retry.append(pending)
            else:
                self._refused(pending, refusal)
        if retry:
            self.put_back(retry, ServerUnreachableError("the server could not apply it now"))

    def _completed(self, pending: PendingResult) -> None:
        self.stats.completed += 1
        context = task_context(pending.leased, self.worker_id)
        log.info("completed %s -> %s", pending.leased.id, pending.result.result_ref, extra=context)

    def _refused(self, pending: PendingResult, exc: ApiError) -> None:
        leased = pending.leased
        context = task_context(leased, self.worker_id)
        if isinstance(exc, LeaseLostError):
            self.stats.dropped += 1
            log.warning("complete of %s ignored: %s", leased.id, exc.detail, extra=context)
        elif exc.status_code in REJECTED_RESULT_STATUSES:
            self.spawn(self._reject_result(pending, exc))
        else:
            log.error("complete of %s refused: %s", leased.id, exc, extra=context)

    def _unexpired(self, batch: Sequence[PendingResult], why: Exception) -> list[PendingResult]:
        now = time.monotonic()
        for pending in batch:
            if pending.deadline <= now:
                context = task_context(pending.leased, self.worker_id)
                log.error("gave up sending complete of %s: %s", pending.leased.id, why,
                          extra=context)  # fmt: skip
        return [p for p in batch if p.deadline > now]

    # --- failures: one request each -----------------------------------------------------

    async def _reject_result(self, pending: PendingResult, exc: ApiError) -> None:
        """The server refused the result itself (too large, malformed): fail the task for
        good with the reason, rather than leaving it processing until its lease lapses."""
        leased = pending.leased
        context = task_context(leased, self.worker_id)
        log.error("server rejected the result of %s: %s", leased.id, exc, extra=context)
        ref = pending.result.result_ref
        await self.report_failure(
            leased, Fatal(f"server rejected result {ref!r}: {exc.detail}"), usage=pending.usage
        )

    async def report_failure(
        self,
        leased: LeasedTask,
        exc: BaseException,
        *,
        usage: Mapping[str, float] | None = None,
    ) -> None:
        retryable = not isinstance(exc, Fatal)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        log.warning(
            "failed %s (%s): %s", leased.id, "retryable" if retryable else "fatal", error,
            extra=task_context(leased, self.worker_id), exc_info=not isinstance(exc, Fatal),
        )  # fmt: skip
        await self._send(
            lambda: self.client.fail(
                leased.id, leased.lease_token, error, retryable=retryable, usage=usage
            ),
            leased,
            "fail",
            on_sent=self._failed,
        )

    def _failed(self) -> None:
        self.stats.failed += 1

    async def release(self, leased: LeasedTask, give_up_after: float) -> None:
        """Hand an unfinished task back at shutdown, so it need not wait for the reaper."""
        await self._send(
            lambda: self.client.fail(
                leased.id, leased.lease_token, "worker stopped before the task finished"
            ),
            leased,
            "release",
            give_up_after=give_up_after,
        )

    async def _send(
        self,
        request: Callable[[], Awaitable[Any]],
        leased: LeasedTask,
        what: str,
        *,
        on_sent: Callable[[], None] | None = None,
        on_rejected: Callable[[ApiError], Awaitable[None]] | None = None,
        give_up_after: float | None = None,
    ) -> None:
        """Send one report, retrying while the server is unreachable. Past the lease there
        is no point: the server will have requeued the task."""
        context = task_context(leased, self.worker_id)
        patience = self.lease_seconds[leased.service] if give_up_after is None else give_up_after
        deadline = time.monotonic() + patience
        backoff = Backoff()
        while True:
            try:
                await request()
            except LeaseLostError as exc:
                self.stats.dropped += 1
                log.warning("%s of %s ignored: %s", what, leased.id, exc.detail, extra=context)
            except ServerUnreachableError as exc:
                if time.monotonic() < deadline:
                    await asyncio.sleep(backoff.next_delay())
                    continue
                log.error("gave up sending %s of %s: %s", what, leased.id, exc, extra=context)
            except ApiError as exc:
                if on_rejected is not None and exc.status_code in REJECTED_RESULT_STATUSES:
                    await on_rejected(exc)
                else:
                    log.error("%s of %s refused: %s", what, leased.id, exc, extra=context)
            else:
                if on_sent is not None:
                    on_sent()
            return


def _refusal(outcome: object) -> ApiError | ServerUnreachableError:
    """A refused batch item's problem as the error a single completion would raise."""
    problem: dict[str, Any] = {"detail": "the server gave no outcome for this result"}
    if isinstance(outcome, Mapping) and isinstance(outcome.get("problem"), Mapping):
        problem = dict(outcome["problem"])
    status = int(problem.get("status") or 0)
    if status >= 500:
        return ServerUnreachableError(str(problem.get("detail") or status))
    error_class: type[ApiError] = ApiError
    if status == 409:
        error_class = LeaseLostError
    elif status == 404:
        error_class = NotFoundError
    return error_class(status, problem, method="POST", path=BATCH_PATH)
