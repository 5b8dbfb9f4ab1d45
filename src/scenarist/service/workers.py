"""The workers registry's use cases: record who leases and heartbeats, list them.

Recording is a store write beside every lease, so it is throttled per process: a
sighting equal to the last one this process wrote less than `record_every_seconds` ago
is not written again (`last_seen` is then that much older at most, far below the
staleness bound of core/workers.py). A changed sighting (new labels: the worker loaded
another model) is written at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from scenarist.core.workers import (
    WorkerRecord,
    WorkerSighting,
    check_labels,
    is_stale,
    live_per_service,
)
from scenarist.storage.base import Store

MAX_REMEMBERED = 10_000  # sightings kept for the throttle; the oldest half goes beyond


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    record_every_seconds: float = 1.0
    forget_after_seconds: float = 24 * 3600.0  # a worker not seen this long is dropped


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A worker as `GET /workers` shows it."""

    record: WorkerRecord
    stale: bool


class WorkerRegistry:
    def __init__(
        self, store: Store, clock: Callable[[], float], policy: WorkerPolicy | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or WorkerPolicy()
        self._written: dict[str, tuple[WorkerSighting, float]] = {}

    async def leased(
        self,
        worker_id: str | None,
        services: Sequence[str],
        *,
        labels: Mapping[str, str] | None,
        sdk_version: str | None,
        poll_seconds: float,
    ) -> None:
        """A lease call from `worker_id` (anonymous calls are not recorded)."""
        if not worker_id:
            return
        sighting = WorkerSighting(
            worker_id=worker_id,
            services=tuple(services),
            labels=check_labels(labels or {}),
            sdk_version=sdk_version,
            poll_seconds=poll_seconds,
        )
        now = self.clock()
        last = self._written.get(worker_id)
        if (
            last is not None
            and last[0] == sighting
            and now - last[1] < self.policy.record_every_seconds
        ):
            return
        await self.store.record_worker(sighting, now=now)
        self._remember(worker_id, sighting, now)

    async def heartbeat(self, worker_id: str | None) -> None:
        if worker_id:
            await self.store.touch_worker(worker_id, now=self.clock())

    async def list(self) -> list[WorkerView]:
        now = self.clock()
        records = await self.store.list_workers(
            forget_before=now - self.policy.forget_after_seconds
        )
        return [WorkerView(r, is_stale(r, now=now)) for r in records]

    async def live_per_service(self) -> dict[str, int]:
        """For /metrics, on every scrape: no count of tasks in flight (see Store)."""
        now = self.clock()
        records = await self.store.list_workers(
            forget_before=now - self.policy.forget_after_seconds, count_in_flight=False
        )
        return live_per_service(records, now=now)

    def _remember(self, worker_id: str, sighting: WorkerSighting, now: float) -> None:
        if len(self._written) >= MAX_REMEMBERED:
            for stale_id in list(self._written)[: MAX_REMEMBERED // 2]:
                del self._written[stale_id]
        self._written.pop(worker_id, None)  # re-insert: the dict's order is by last write
        self._written[worker_id] = (sighting, now)
