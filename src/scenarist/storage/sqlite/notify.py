"""In-process wake-ups for long polls: a waiter parks on an asyncio.Event registered under
the keys it cares about; a committed write sets the events of the keys it touched.

Only waiters of this process (and this store object) are woken: another process writing
the same database file cannot reach them, so they fall back to their timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

Key = tuple[str, str]  # ("ready", service) or ("events", scenario_id)


def ready_key(service: str) -> Key:
    return ("ready", service)


def events_key(scenario_id: str) -> Key:
    return ("events", scenario_id)


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[Key, set[asyncio.Event]] = {}

    async def wait(self, keys: Iterable[Key], timeout: float) -> None:
        """Return when one of `keys` is notified or after `timeout` seconds."""
        if timeout <= 0:
            return
        event = asyncio.Event()
        registered = list(keys)
        for key in registered:
            self._waiters.setdefault(key, set()).add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            for key in registered:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[key]

    def notify(self, keys: Iterable[Key]) -> None:
        for key in keys:
            for event in self._waiters.get(key, ()):
                event.set()
