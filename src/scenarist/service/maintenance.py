"""The background round every API process runs: reap expired leases, report scenarios
that ended, purge old ones, delete expired step cache entries."""

from __future__ import annotations

import asyncio
import logging

from scenarist.core.errors import StoreUnavailableError
from scenarist.service.orchestrator import Orchestrator

log = logging.getLogger(__name__)


async def run_maintenance(
    orchestrator: Orchestrator, stop: asyncio.Event, *, interval: float = 1.0
) -> None:
    """Reap expired leases, purge old scenarios and sweep the step cache until `stop` is
    set. Safe to run in several processes at once: each store step re-checks its
    preconditions."""
    while not stop.is_set():
        try:
            await orchestrator.reap_expired()
            await orchestrator.report_ended()
            await orchestrator.store.purge_finished(now=orchestrator.clock(), limit=1000)
            await orchestrator.store.sweep_cache(now=orchestrator.clock(), limit=1000)
        except StoreUnavailableError as exc:
            # The store is down; the next round retries. Requests see 503 meanwhile.
            log.warning("maintenance skipped: %s", exc)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
