"""Watch-and-wait in one call, for tests that only need to see a wake-up arrive."""

from __future__ import annotations

from collections.abc import Sequence

from scenarist.storage.base import Store


async def wait_for_ready(store: Store, services: Sequence[str], timeout: float) -> None:
    with await store.watch_ready(services) as watch:
        await watch.wait(timeout)


async def wait_for_events(store: Store, scenario_id: str, timeout: float) -> None:
    with await store.watch_events(scenario_id) as watch:
        await watch.wait(timeout)
